"""Attachments of mailbox emails, read from the mail server on demand (we keep only their list).

So an email deleted on the server keeps its place in the CRM, but its attachments are then
unavailable, with a message saying why.
"""

from dataclasses import dataclass

from sqlalchemy.orm import Session

from crmmail.config import Settings
from crmmail.connector import facade as connector
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
    keys = connector.load_key_ring(settings)
    with db.read() as session:
        where = _locate(session, attachment_id, as_user)
        boxes = MailboxRepository(session)
        mailbox, credential = boxes.get(where.mailbox_id), boxes.credential(where.mailbox_id)
        state = boxes.folder(where.mailbox_id, where.folder)
        if mailbox is None or credential is None or state is None:
            raise AttachmentUnavailable(f"attachment {attachment_id} is unavailable: no mailbox")
        access = connector.open_access(mailbox, credential, keys)
        folder_name = state.name
    try:
        raw = connector.fetch_message(
            db, settings, access, (folder_name, where.uidvalidity, where.uid)
        )
    except connector.BoxBusy:
        raise UserInputError(
            f"mailbox {where.mailbox_id} is being synced right now: try again"
        ) from None
    except connector.Renumbered as error:
        raise AttachmentUnavailable(
            f"attachment {attachment_id} is unavailable until the next sync: {error}"
        ) from None
    except connector.ConnectorError as error:
        raise UserInputError(f"attachment {attachment_id}: {error}") from None
    if raw is None:
        raise AttachmentUnavailable(
            f"attachment {attachment_id} is unavailable: the email was deleted on the mail server"
        )
    attachments = parse_message(raw).attachments
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
