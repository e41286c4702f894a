"""Connected mailboxes: create, find, list, their sealed credential, folder state, sync leases."""

import secrets
from datetime import datetime, timedelta

from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.orm import Session

from crmmail.storage.models import (
    Mailbox,
    MailboxCredential,
    MailboxFolderState,
    MailboxStatus,
    User,
)

UNSYNCED = (MailboxStatus.AUTH_FAILED.value, MailboxStatus.DISCONNECTED.value)


class MailboxRepository:
    """Reads and writes mailboxes inside the caller's transaction."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def add(self, mailbox: Mailbox) -> Mailbox:
        self.session.add(mailbox)
        self.session.flush()
        return mailbox

    def get(self, mailbox_id: int) -> Mailbox | None:
        return self.session.get(Mailbox, mailbox_id)

    def by_email(self, account_id: int, email: str) -> Mailbox | None:
        return self.session.scalar(
            select(Mailbox).where(Mailbox.account_id == account_id, Mailbox.email == email)
        )

    def list_for_account(self, account_id: int) -> list[tuple[Mailbox, str]]:
        """Every box of the account with its owner's address, oldest first."""
        rows = self.session.execute(
            select(Mailbox, User.email)
            .join(User, User.id == Mailbox.owner_id)
            .where(Mailbox.account_id == account_id)
            .order_by(Mailbox.id)
        )
        return [(mailbox, owner) for mailbox, owner in rows]

    def count_by_status(self) -> dict[str, int]:
        """How many mailboxes are in each status (all accounts)."""
        rows = self.session.execute(select(Mailbox.status, func.count()).group_by(Mailbox.status))
        return {status: int(count) for status, count in rows}

    def credential(self, mailbox_id: int) -> MailboxCredential | None:
        return self.session.get(MailboxCredential, mailbox_id)

    def set_credential(self, mailbox_id: int, key_id: str, secret: bytes) -> None:
        credential = self.session.get(MailboxCredential, mailbox_id)
        if credential is None:
            self.session.add(MailboxCredential(mailbox_id=mailbox_id, key_id=key_id, secret=secret))
        else:
            credential.kind = "password"
            credential.key_id = key_id
            credential.secret = secret
        self.session.flush()

    def forget_credential(self, mailbox_id: int) -> None:
        self.session.execute(
            delete(MailboxCredential).where(MailboxCredential.mailbox_id == mailbox_id)
        )

    def forget_folders(self, mailbox_id: int) -> None:
        """Drop the folders' sync state: a reconnected box imports afresh."""
        self.session.execute(
            delete(MailboxFolderState).where(MailboxFolderState.mailbox_id == mailbox_id)
        )

    def folder(self, mailbox_id: int, role: str) -> MailboxFolderState | None:
        return self.session.scalar(
            select(MailboxFolderState).where(
                MailboxFolderState.mailbox_id == mailbox_id, MailboxFolderState.role == role
            )
        )

    def save_folder(self, state: MailboxFolderState) -> None:
        self.session.add(state)
        self.session.flush()

    def claim(
        self, mailbox_id: int | None, now: datetime, lease: timedelta
    ) -> tuple[int, str] | None:
        """Take the sync lease of one box (``None``: the next due one); ``(id, token)`` or None.

        A box is due when its ``next_sync_at`` has passed and it is neither ``auth_failed`` nor
        ``disconnected``; a box whose lease is held and not expired is never taken, so at most
        one sync, one IMAP connection, runs per box whatever the number of processes.
        """
        free = or_(Mailbox.sync_lease_until.is_(None), Mailbox.sync_lease_until < now)
        query = select(Mailbox.id).where(free).order_by(Mailbox.next_sync_at, Mailbox.id).limit(1)
        if mailbox_id is None:
            query = query.where(Mailbox.next_sync_at <= now, Mailbox.status.not_in(UNSYNCED))
        else:
            query = query.where(Mailbox.id == mailbox_id)
        if self.session.get_bind().dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True)
        found = self.session.scalar(query)
        if found is None:
            return None
        token = secrets.token_hex(16)
        claimed = self.session.execute(
            update(Mailbox)
            .where(Mailbox.id == found, free)
            .values(sync_token=token, sync_lease_until=now + lease)
            .execution_options(synchronize_session=False)
        )
        if claimed.rowcount != 1:  # type: ignore[attr-defined]
            return None
        return found, token

    def holds(self, mailbox_id: int, token: str) -> Mailbox | None:
        """The box, if ``token`` still holds its lease."""
        mailbox = self.session.get(Mailbox, mailbox_id, populate_existing=True)
        if mailbox is None or mailbox.sync_token != token:
            return None
        return mailbox

    def release(self, mailbox_id: int, token: str) -> None:
        self.session.execute(
            update(Mailbox)
            .where(Mailbox.id == mailbox_id, Mailbox.sync_token == token)
            .values(sync_token=None, sync_lease_until=None)
            .execution_options(synchronize_session=False)
        )

    def renew(self, mailbox_id: int, token: str, until: datetime) -> bool:
        renewed = self.session.execute(
            update(Mailbox)
            .where(Mailbox.id == mailbox_id, Mailbox.sync_token == token)
            .values(sync_lease_until=until)
            .execution_options(synchronize_session=False)
        )
        return bool(renewed.rowcount == 1)  # type: ignore[attr-defined]
