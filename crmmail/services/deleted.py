"""The CRM's Deleted folder: delete (never on the mail server), restore, purge after 30 days.

A deleted email leaves every listing but the admins' Deleted listing. The purge removes its
content for good and keeps a tombstone (box, folder, message key), so no later sync brings it
back; the notes it made stay on the cards and say that the content was removed.
"""

from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from crmmail.errors import NotFound, UserInputError
from crmmail.services.mail_views import (
    DeletedEmailView,
    EmailView,
    describe_email,
    email_fields,
)
from crmmail.services.permissions import Sight, require_admin, sight, viewer_in
from crmmail.storage.models import Email, MailboxKind
from crmmail.storage.repositories.emails import EmailRepository
from crmmail.storage.repositories.mailboxes import MailboxRepository
from crmmail.storage.repositories.notes import NoteRepository

KEEP_DELETED = timedelta(days=30)


def delete_email(session: Session, email_id: int, as_user: str, now: datetime) -> DeletedEmailView:
    """Move an email the user may read to the Deleted folder."""
    email = _email(session, email_id)
    viewer = viewer_in(session, email.account_id, as_user)
    box = MailboxRepository(session).get(email.mailbox_id)
    if box is None or sight(viewer, box) is not Sight.FULL or email.deleted_at is not None:
        raise NotFound(f"no email {email_id}")
    email.deleted_at = now
    email.deleted_by = viewer.user_id
    session.flush()
    return DeletedEmailView(*email_fields(email, []), deleted_at=email.deleted_at)


def restore_email(session: Session, email_id: int, as_user: str) -> EmailView:
    """Take an email out of the Deleted folder: admins who may read it, and the owner of a
    personal box (who cannot list the folder, but knows what they deleted)."""
    email = _email(session, email_id)
    viewer = viewer_in(session, email.account_id, as_user)
    box = MailboxRepository(session).get(email.mailbox_id)
    if box is None or sight(viewer, box) is not Sight.FULL:
        raise NotFound(f"no email {email_id}")
    if viewer.user_id != box.owner_id or box.kind != MailboxKind.PERSONAL.value:
        require_admin(viewer, "and a personal box's owner restore deleted emails")
    if email.deleted_at is None:
        raise UserInputError(f"email {email_id} is not in the Deleted folder")
    email.deleted_at = None
    email.deleted_by = None
    session.flush()
    return describe_email(email, EmailRepository(session).contact_ids([email.id])[email.id])


def purge_deleted(session: Session, now: datetime) -> int:
    """Remove for good what has been in the Deleted folder for 30 days; returns how many."""
    emails = EmailRepository(session)
    due = emails.deleted_before(now - KEEP_DELETED)
    NoteRepository(session).remove_content([email.id for email in due])
    for email in due:
        emails.tombstone(email)
    session.flush()
    return len(due)


def _email(session: Session, email_id: int) -> Email:
    email = EmailRepository(session).get(email_id)
    if email is None or email.purged:
        raise NotFound(f"no email {email_id}")
    return email
