"""Email operations: send through a connected box (then file the Sent copy), and list emails."""

import logging
from dataclasses import dataclass
from typing import Any

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from crmmail.config import Settings
from crmmail.connector.access import MailboxAccess, mailbox_access
from crmmail.connector.capture import Destination, Incoming, Placement, capture
from crmmail.connector.compose import Draft, compose, refuse_line_breaks
from crmmail.connector.credentials import load_key_ring
from crmmail.connector.errors import AuthFailed, ConnectorError
from crmmail.connector.folders import find_sent
from crmmail.connector.hosts import check_server_settings
from crmmail.connector.imap import imap_session
from crmmail.connector.lease import give_back, take_box
from crmmail.connector.sent_copy import SentCopy, ensure_sent_copy
from crmmail.connector.smtp import submit
from crmmail.connector.tls import client_context
from crmmail.errors import CrmmailError, NotFound, UserInputError
from crmmail.services.mail_views import describe_email
from crmmail.services.templates import render_for
from crmmail.services.validation import checked_email
from crmmail.storage.base import utcnow
from crmmail.storage.database import Database
from crmmail.storage.models import (
    FolderRole,
    Mailbox,
    MailboxCredential,
    MailboxKind,
    MailboxStatus,
)
from crmmail.storage.repositories.accounts import AccountRepository
from crmmail.storage.repositories.emails import EmailRepository
from crmmail.storage.repositories.mailboxes import MailboxRepository

log = logging.getLogger(__name__)


class SentNotRecorded(CrmmailError):
    """The server took the message, but the database did not take the record of it."""


@dataclass(frozen=True)
class SendRequest:
    """``crmmail email send`` as data."""

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
    """``--template NAME --contact ID [--lead ID]``: subject and body come from the template."""

    name: str
    contact_id: int
    lead_id: int | None = None


def send_email(db: Database, settings: Settings, request: SendRequest) -> dict[str, Any]:
    """Send, store it as a Sent email linked to the recipients' cards, then file the Sent copy.

    Submission comes first: a message is recorded as sent only once the server took it. If
    recording then fails, the Sent copy is still filed on the server, from where the next sync
    imports it; the user is told so in one line.
    """
    keys = load_key_ring(settings)
    recipients = _addresses(request.to), _addresses(request.cc)
    with db.read() as session:
        mailbox, credential, sender_name = _sender(session, request)
        access = mailbox_access(mailbox, credential, keys)
        subject, body, is_html = request.subject, request.body, request.is_html
        if request.template is not None:
            subject, body, is_html, contact_addresses = _from_template(
                session, mailbox.account_id, request
            )
            if not recipients[0] and contact_addresses:
                recipients = [contact_addresses[0]], recipients[1]
    draft = Draft(sender_name, access.email, *recipients, subject, body, is_html)
    message = compose(draft, utcnow(), settings.smart_domains)
    raw = message.as_bytes()
    message_id = str(message["Message-ID"]).strip().strip("<>")
    check_server_settings(access.server, settings.allow_private_mail_hosts)
    try:
        submit(
            access.smtp,
            access.username,
            access.password,
            client_context(settings),
            settings.mail_timeout,
            (access.email, [*recipients[0], *recipients[1]]),
            raw,
        )
    except AuthFailed as error:
        raise UserInputError(
            f"{error}: update it with `crmmail mailbox password {access.id}`; nothing was sent"
        ) from None
    except ConnectorError as error:
        raise UserInputError(f"not sent: {error}") from None
    incoming = Incoming.parse(raw)
    try:
        with db.transaction() as session:
            _, email_id = capture(
                session,
                Destination.load(session, access.id),
                Placement(access.account_id, access.id, FolderRole.SENT.value),
                incoming,
                settings.smart_domains,
            )
    except SQLAlchemyError as error:
        log.exception("mailbox %s: sent %s but could not record it", access.id, message_id)
        copy = _file_sent_copy(db, settings, access, message_id, raw)
        where = (
            "the next sync imports it from the Sent folder"
            if copy != SentCopy.PENDING
            else ("it is in no Sent folder yet")
        )
        raise SentNotRecorded(
            f"sent as <{message_id}>, but the CRM could not record it"
            f" ({type(error).__name__}); {where}"
        ) from None
    sent_copy = _file_sent_copy(db, settings, access, message_id, raw)
    with db.read() as session:
        emails = EmailRepository(session)
        email = emails.get(email_id)
        assert email is not None
        contact_ids = emails.contact_ids([email_id])[email_id]
        return describe_email(email, contact_ids) | {"sent_copy": sent_copy.value}


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
        for part in refuse_line_breaks(value, "recipient").split(","):
            if part.strip():
                found.append(checked_email(part.strip()))
    return list(dict.fromkeys(found))


def _sender(session: Session, request: SendRequest) -> tuple[Mailbox, MailboxCredential, str]:
    """The box and credential to send with, and the sender's display name; checks the rights."""
    boxes = MailboxRepository(session)
    mailbox = boxes.get(request.mailbox_id)
    if mailbox is None:
        raise NotFound(f"no mailbox {request.mailbox_id}: see `crmmail mailbox list SLUG`")
    if mailbox.status == MailboxStatus.DISCONNECTED.value:
        raise UserInputError(f"mailbox {mailbox.id} is disconnected: connect it again to send")
    user = AccountRepository(session).user_by_email(
        mailbox.account_id, checked_email(refuse_line_breaks(request.as_user, "sender"))
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


def _file_sent_copy(
    db: Database, settings: Settings, access: MailboxAccess, message_id: str, raw: bytes
) -> SentCopy:
    """Under the box's lease (one IMAP connection per box), find or APPEND the Sent copy.

    The mail is out already, so nothing here fails the send: what could not be done now is
    ``pending``, and the sync does it later.
    """
    try:
        token = take_box(db, access.id, settings)
    except SQLAlchemyError:
        log.exception("mailbox %s: could not take the box to file a Sent copy", access.id)
        return SentCopy.PENDING
    if token is None:
        return SentCopy.PENDING
    try:
        context = client_context(settings)
        with imap_session(
            access.imap, access.username, access.password, context, settings.mail_timeout
        ) as imap:
            folder = find_sent(imap.folders(), access.sent_folder)
            if folder is None:
                return SentCopy.PENDING
            return ensure_sent_copy(
                imap, folder, message_id, raw, utcnow(), settings.sent_copy_wait
            )
    except ConnectorError as error:
        log.warning("mailbox %s: the Sent copy waits for the next sync: %s", access.id, error)
        return SentCopy.PENDING
    finally:
        _release(db, access.id, token)


def _release(db: Database, mailbox_id: int, token: str) -> None:
    try:
        give_back(db, mailbox_id, token)
    except SQLAlchemyError:  # the lease runs out by itself
        log.exception("mailbox %s: could not give the box back", mailbox_id)
