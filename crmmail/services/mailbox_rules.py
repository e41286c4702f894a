"""Change a connected box's settings (threads, personal or shared, sharing) and disconnect it."""

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy.orm import Session

from crmmail.config import Settings
from crmmail.connector import facade as connector
from crmmail.errors import Hint, NotFound, UserInputError
from crmmail.mail.message import parse_message
from crmmail.services.mailboxes import MailboxView, mailbox_fields
from crmmail.services.permissions import (
    PermissionDenied,
    Viewer,
    may_change,
    may_disconnect,
    require_admin,
    viewer_in,
)
from crmmail.storage.database import Database
from crmmail.storage.models import Mailbox, MailboxKind, MailboxStatus
from crmmail.storage.repositories.accounts import AccountRepository
from crmmail.storage.repositories.emails import EmailRepository
from crmmail.storage.repositories.mailboxes import MailboxRepository
from crmmail.storage.repositories.notes import NoteRepository
from crmmail.storage.repositories.threads import ThreadRepository


@dataclass(frozen=True, eq=False)
class MailboxSettingsView(MailboxView):
    """A box with its settings: threads on or off, shared with the admin or not."""

    threads: bool
    share_with_admin: bool


@dataclass(frozen=True, eq=False)
class DisconnectedMailbox(MailboxSettingsView):
    """A box just disconnected, and whether its emails were deleted."""

    emails_deleted: bool


def set_mailbox(
    session: Session,
    mailbox_id: int,
    as_user: str,
    *,
    threads: bool | None = None,
    kind: MailboxKind | None = None,
    share_with_admin: bool | None = None,
) -> MailboxSettingsView:
    """Change what was asked; switching threads on or off regroups the box's emails at once."""
    mailbox, viewer = _managed(session, mailbox_id, as_user, may_change)
    if kind is MailboxKind.SHARED:
        require_admin(viewer, "make a mailbox shared")
    if kind is not None:
        mailbox.kind = kind.value
    if share_with_admin is not None:
        if mailbox.kind != MailboxKind.PERSONAL.value:
            raise UserInputError("only a personal mailbox is shared with the admin")
        mailbox.share_with_admin = share_with_admin
    if threads is not None and threads != mailbox.threads:
        mailbox.threads = threads
        regroup(session, mailbox)
    session.flush()
    return describe_settings(session, mailbox)


def regroup(session: Session, mailbox: Mailbox) -> None:
    """Form the box's threads again under its current setting."""
    ThreadRepository(session).drop_all(mailbox.id)
    users = AccountRepository(session).user_emails(mailbox.account_id)
    for email in EmailRepository(session).of_mailbox(mailbox.id):
        if not email.counterpart and email.raw:  # stored before threads existed
            message = parse_message(email.raw)
            email.counterpart = connector.counterpart_of(mailbox, users, email.folder, message)
        connector.place_in_thread(session, mailbox, email)


def disconnect_mailbox(
    db: Database, settings: Settings, mailbox_id: int, as_user: str, *, delete_emails: bool
) -> DisconnectedMailbox:
    """Stop syncing and forget the password; with ``delete_emails`` remove the box's emails too.

    Notes the removed emails put on cards stay there and say that the content was removed.
    The box's lease is taken first, so no sync in progress writes after the disconnect.
    """
    with db.read() as session:
        _managed(session, mailbox_id, as_user, may_disconnect)
    token = connector.take_box(db, mailbox_id, settings)
    if token is None:
        raise UserInputError(f"mailbox {mailbox_id} is being synced right now: try again")
    with db.transaction() as session:
        mailbox, _ = _managed(session, mailbox_id, as_user, may_disconnect)
        boxes = MailboxRepository(session)
        if delete_emails:
            _delete_emails(session, mailbox)
            boxes.forget_folders(mailbox.id)
        boxes.forget_credential(mailbox.id)
        mailbox.status = MailboxStatus.DISCONNECTED.value
        mailbox.next_sync_at = None
        mailbox.last_error = None
        mailbox.sync_token = None
        mailbox.sync_lease_until = None
        session.flush()
        owner = AccountRepository(session).user(mailbox.owner_id)
        return DisconnectedMailbox(
            *mailbox_fields(mailbox, owner.email if owner else ""),
            threads=mailbox.threads,
            share_with_admin=mailbox.share_with_admin,
            emails_deleted=delete_emails,
        )


def _delete_emails(session: Session, mailbox: Mailbox) -> None:
    """Remove the box's emails; those in the Deleted folder stay as tombstones, so a
    reconnected box never brings them back."""
    emails = EmailRepository(session)
    box_emails = emails.of_mailbox(mailbox.id)
    NoteRepository(session).remove_content([email.id for email in box_emails])
    for email in box_emails:
        if email.deleted_at is not None or email.purged:
            emails.tombstone(email)
    emails.delete_listed_of_mailbox(mailbox.id)
    ThreadRepository(session).drop_all(mailbox.id)


def describe_settings(session: Session, mailbox: Mailbox) -> MailboxSettingsView:
    owner = AccountRepository(session).user(mailbox.owner_id)
    return MailboxSettingsView(
        *mailbox_fields(mailbox, owner.email if owner else ""),
        threads=mailbox.threads,
        share_with_admin=mailbox.share_with_admin,
    )


def _managed(
    session: Session, mailbox_id: int, as_user: str, allowed: Callable[[Viewer, Mailbox], bool]
) -> tuple[Mailbox, Viewer]:
    """The box and the acting user, if ``allowed`` lets that user manage it."""
    mailbox = MailboxRepository(session).get(mailbox_id)
    if mailbox is None:
        raise NotFound(f"no mailbox {mailbox_id}", hint=Hint("list_mailboxes"))
    viewer = viewer_in(session, mailbox.account_id, as_user)
    if not allowed(viewer, mailbox):
        who = "admins" if mailbox.kind == MailboxKind.SHARED.value else "its owner"
        if allowed is may_disconnect and mailbox.kind == MailboxKind.PERSONAL.value:
            who = "its owner or an admin"
        raise PermissionDenied(f"only {who} may do this to mailbox {mailbox_id}")
    return mailbox, viewer
