"""Email operations: send through a connected box (then file the Sent copy), and list emails."""

import logging
from dataclasses import dataclass

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from crmmail.config import Settings
from crmmail.connector import facade as connector
from crmmail.errors import CrmmailError, Hint, NotFound, UserInputError
from crmmail.services.mail_views import EmailView, email_fields
from crmmail.services.templates import render_for
from crmmail.services.validation import checked_email
from crmmail.storage.database import Database
from crmmail.storage.models import Mailbox, MailboxCredential, MailboxKind, MailboxStatus
from crmmail.storage.repositories.accounts import AccountRepository
from crmmail.storage.repositories.emails import EmailRepository
from crmmail.storage.repositories.mailboxes import MailboxRepository

log = logging.getLogger(__name__)


class SentNotRecorded(CrmmailError):
    """The server took the message, but the database did not take the record of it."""


@dataclass(frozen=True, eq=False)
class SentEmail(EmailView):
    """An email just sent, and what became of its copy in the box's Sent folder."""

    sent_copy: str  # found, appended or pending (crmmail.connector.sent_copy.SentCopy)


@dataclass(frozen=True)
class SendRequest:
    """What sending an email needs: the box, the sender, and the message or its template."""

    mailbox_id: int
    as_user: str
    to: list[str]
    cc: list[str]
    subject: str = ""
    body: str = ""
    is_html: bool = False
    template: "TemplateChoice | None" = None


@dataclass(frozen=True)
class TemplateChoice:
    """Subject and body from a template, filled in for a contact (and a lead)."""

    name: str
    contact_id: int
    lead_id: int | None = None


def send_email(db: Database, settings: Settings, request: SendRequest) -> SentEmail:
    """Send, store it as a Sent email linked to the recipients' cards, then file the Sent copy.

    Submission comes first: a message is recorded as sent only once the server took it. If
    recording then fails, the Sent copy is still filed on the server, from where the next sync
    imports it; the user is told so in one line.
    """
    keys = connector.load_key_ring(settings)
    recipients = _addresses(request.to), _addresses(request.cc)
    with db.read() as session:
        mailbox, credential, sender_name = _sender(session, request)
        access = connector.open_access(mailbox, credential, keys)
        subject, body, is_html = request.subject, request.body, request.is_html
        if request.template is not None:
            subject, body, is_html, contact_addresses = _from_template(
                session, mailbox.account_id, request
            )
            if not recipients[0] and contact_addresses:
                recipients = [contact_addresses[0]], recipients[1]
    draft = connector.Draft(sender_name, access.email, *recipients, subject, body, is_html)
    message = connector.compose_message(draft, settings)
    try:
        connector.submit_message(access, settings, message, [*recipients[0], *recipients[1]])
    except connector.AuthFailed as error:
        raise UserInputError(
            f"{error}: set the mailbox's password again; nothing was sent",
            hint=Hint("update_password", {"reason": str(error), "mailbox_id": access.id}),
        ) from None
    except connector.ConnectorError as error:
        raise UserInputError(f"not sent: {error}") from None
    try:
        with db.transaction() as session:
            email_id = connector.record_sent(session, access, message.raw, settings)
    except SQLAlchemyError as error:
        log.exception("mailbox %s: sent %s but could not record it", access.id, message.message_id)
        copy = connector.file_sent_copy(db, settings, access, message)
        where = (
            "the next sync imports it from the Sent folder"
            if copy != connector.SentCopy.PENDING
            else ("it is in no Sent folder yet")
        )
        raise SentNotRecorded(
            f"sent as <{message.message_id}>, but the CRM could not record it"
            f" ({type(error).__name__}); {where}"
        ) from None
    sent_copy = connector.file_sent_copy(db, settings, access, message)
    with db.read() as session:
        emails = EmailRepository(session)
        email = emails.get(email_id)
        assert email is not None
        contact_ids = emails.contact_ids([email_id])[email_id]
        return SentEmail(*email_fields(email, contact_ids), sent_copy=sent_copy.value)


def _from_template(
    session: Session, account_id: int, request: SendRequest
) -> tuple[str, str, bool, list[str]]:
    """Subject, body, HTML or not, and the contact's addresses, from the chosen template."""
    choice = request.template
    assert choice is not None
    rendered, is_html, addresses = render_for(
        session, account_id, choice.name, choice.contact_id, choice.lead_id, request.as_user
    )
    body = rendered.html if is_html and rendered.html is not None else rendered.text
    return rendered.subject, body, is_html, addresses


def _addresses(values: list[str]) -> list[str]:
    found = []
    for value in values:
        for part in connector.refuse_line_breaks(value, "recipient").split(","):
            if part.strip():
                found.append(checked_email(part.strip()))
    return list(dict.fromkeys(found))


def _sender(session: Session, request: SendRequest) -> tuple[Mailbox, MailboxCredential, str]:
    """The box and credential to send with, and the sender's display name; checks the rights."""
    boxes = MailboxRepository(session)
    mailbox = boxes.get(request.mailbox_id)
    if mailbox is None:
        raise NotFound(f"no mailbox {request.mailbox_id}", hint=Hint("list_mailboxes"))
    if mailbox.status == MailboxStatus.DISCONNECTED.value:
        raise UserInputError(f"mailbox {mailbox.id} is disconnected: connect it again to send")
    user = AccountRepository(session).user_by_email(
        mailbox.account_id, checked_email(connector.refuse_line_breaks(request.as_user, "sender"))
    )
    if user is None:
        raise NotFound(f"no user {request.as_user} in the mailbox's account")
    if mailbox.kind == MailboxKind.PERSONAL.value and user.id != mailbox.owner_id:
        raise UserInputError(f"{user.email} may not send from {mailbox.email}: it is personal")
    if mailbox.kind == MailboxKind.SHARED.value and not user.email_access:
        raise UserInputError(f"{user.email} has no email access: ask an admin")
    credential = boxes.credential(mailbox.id)
    if credential is None:
        raise UserInputError(f"mailbox {mailbox.id} has no password: set one")
    return mailbox, credential, user.name
