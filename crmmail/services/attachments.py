"""Attachments of mailbox emails, read from the mail server on demand (we keep only their list).

So an email deleted on the server keeps its place in the CRM, but its attachments are then
unavailable, with a message saying why.
"""

from dataclasses import dataclass

from sqlalchemy.orm import Session

from crmmail.config import Settings
from crmmail.connector.access import mailbox_access
from crmmail.connector.credentials import load_key_ring
from crmmail.connector.errors import ConnectorError
from crmmail.connector.imap import imap_session
from crmmail.connector.lease import give_back, take_box
from crmmail.connector.tls import client_context
from crmmail.errors import UserInputError
from crmmail.mail.message import parse_message
from crmmail.services.mail_views import readable_email
from crmmail.storage.database import Database
from crmmail.storage.models import MailboxStatus
from crmmail.storage.repositories.emails import EmailRepository
from crmmail.storage.repositories.mailboxes import MailboxRepository


class AttachmentUnavailable(UserInputError):
    """The file cannot be read from the server any more (or not yet)."""


@dataclass(frozen=True)
class AttachmentFile:
    filename: str
    content_type: str
    content: bytes


@dataclass(frozen=True)
class _Where:
    mailbox_id: int
    folder: str
    uidvalidity: int
    uid: int
    position: int


def get_attachment(
    db: Database, settings: Settings, attachment_id: int, as_user: str
) -> AttachmentFile:
    """The attachment's bytes, fetched from the message on the server (``BODY.PEEK[]``)."""
    keys = load_key_ring(settings)
    with db.read() as session:
        where = _locate(session, attachment_id, as_user)
        boxes = MailboxRepository(session)
        mailbox, credential = boxes.get(where.mailbox_id), boxes.credential(where.mailbox_id)
        state = boxes.folder(where.mailbox_id, where.folder)
        if mailbox is None or credential is None or state is None:
            raise AttachmentUnavailable(f"attachment {attachment_id} is unavailable: no mailbox")
        access = mailbox_access(mailbox, credential, keys)
        folder_name = state.name
    token = take_box(db, where.mailbox_id, settings)
    if token is None:
        raise UserInputError(f"mailbox {where.mailbox_id} is being synced right now: try again")
    try:
        context = client_context(settings)
        with imap_session(
            access.imap, access.username, access.password, context, settings.mail_timeout
        ) as imap:
            if imap.examine(folder_name) != where.uidvalidity:
                raise AttachmentUnavailable(
                    f"attachment {attachment_id} is unavailable until the next sync:"
                    " the server renumbered its messages"
                )
            fetched = imap.fetch([where.uid])
    except ConnectorError as error:
        raise UserInputError(f"attachment {attachment_id}: {error}") from None
    finally:
        give_back(db, where.mailbox_id, token)
    if not fetched:
        raise AttachmentUnavailable(
            f"attachment {attachment_id} is unavailable: the email was deleted on the mail server"
        )
    attachments = parse_message(fetched[0].raw).attachments
    if where.position >= len(attachments):
        raise AttachmentUnavailable(f"attachment {attachment_id} is no longer in its email")
    found = attachments[where.position]
    return AttachmentFile(found.filename, found.content_type, found.content)


def _locate(session: Session, attachment_id: int, as_user: str) -> _Where:
    emails = EmailRepository(session)
    attachment = emails.attachment(attachment_id)
    email = emails.get(attachment.email_id) if attachment is not None else None
    mailbox = readable_email(session, email, as_user, f"attachment {attachment_id}")
    assert email is not None and attachment is not None
    if email.deleted_on_server:
        raise AttachmentUnavailable(
            f"attachment {attachment_id} is unavailable: the email was deleted on the mail server"
        )
    if mailbox.status == MailboxStatus.DISCONNECTED.value:
        raise AttachmentUnavailable(
            f"attachment {attachment_id} is unavailable: mailbox {mailbox.id} is disconnected"
        )
    if email.uid is None or email.uidvalidity is None:
        raise AttachmentUnavailable(
            f"attachment {attachment_id} is not on the server yet: try after the next sync"
        )
    return _Where(email.mailbox_id, email.folder, email.uidvalidity, email.uid, attachment.position)
