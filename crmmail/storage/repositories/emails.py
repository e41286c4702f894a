"""Emails of connected mailboxes: store, find by key or UID, link to contacts, list."""

from collections.abc import Iterable, Sequence
from datetime import datetime

from sqlalchemy import delete, insert, select, update
from sqlalchemy.orm import Session, defer

from crmmail.storage.models import Email, EmailAttachment, email_contact
from crmmail.storage.repositories.chunks import in_chunks


class EmailRepository:
    """Reads and writes mailbox emails inside the caller's transaction."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def find(self, mailbox_id: int, folder: str, message_key: str) -> Email | None:
        return self.session.scalar(
            select(Email).where(
                Email.mailbox_id == mailbox_id,
                Email.folder == folder,
                Email.message_key == message_key,
            )
        )

    def find_many(self, mailbox_id: int, folder: str, message_keys: Sequence[str]) -> set[str]:
        """Which of these message keys the folder already holds."""
        found: set[str] = set()
        for chunk in in_chunks(message_keys):
            found.update(
                self.session.scalars(
                    select(Email.message_key).where(
                        Email.mailbox_id == mailbox_id,
                        Email.folder == folder,
                        Email.message_key.in_(chunk),
                    )
                )
            )
        return found

    def add(self, email: Email) -> Email:
        self.session.add(email)
        self.session.flush()
        return email

    def add_many(self, emails: Sequence[Email]) -> None:
        """Insert many emails in one flush (batched INSERTs); their ids are set afterwards."""
        self.session.add_all(emails)
        self.session.flush()

    def link(self, email_id: int, contact_ids: Iterable[int]) -> None:
        self.link_many([(email_id, contact_id) for contact_id in sorted(set(contact_ids))])

    def link_many(self, pairs: Iterable[tuple[int, int]]) -> None:
        """Link emails to contacts: ``(email_id, contact_id)`` pairs, in one statement."""
        rows = [{"email_id": email_id, "contact_id": cid} for email_id, cid in dict.fromkeys(pairs)]
        if rows:
            self.session.execute(insert(email_contact), rows)

    def placed(self, mailbox_id: int, folder: str) -> list[tuple[int, int | None, int | None]]:
        """``(id, uidvalidity, uid)`` of the folder's emails still on the server."""
        rows = self.session.execute(
            select(Email.id, Email.uidvalidity, Email.uid).where(
                Email.mailbox_id == mailbox_id,
                Email.folder == folder,
                Email.deleted_on_server.is_(False),
            )
        )
        return [(row.id, row.uidvalidity, row.uid) for row in rows]

    def keys(self, mailbox_id: int, folder: str) -> list[tuple[int, str, int | None]]:
        """``(id, message_key, uid)`` of every email of the folder (for re-mapping)."""
        rows = self.session.execute(
            select(Email.id, Email.message_key, Email.uid).where(
                Email.mailbox_id == mailbox_id, Email.folder == folder
            )
        )
        return [(row.id, row.message_key, row.uid) for row in rows]

    def unplaced(self, mailbox_id: int, folder: str, before: datetime) -> list[Email]:
        """Emails we wrote that the server's folder has not shown us yet, older than ``before``."""
        return list(
            self.session.scalars(
                select(Email).where(
                    Email.mailbox_id == mailbox_id,
                    Email.folder == folder,
                    Email.uid.is_(None),
                    Email.created_at < before,
                )
            )
        )

    def get(self, email_id: int) -> Email | None:
        return self.session.get(Email, email_id)

    def place(self, email_id: int, uidvalidity: int, uid: int) -> None:
        """Where the message now is on the server (after a UIDVALIDITY change, or our sent copy)."""
        self.session.execute(
            update(Email)
            .where(Email.id == email_id)
            .values(uidvalidity=uidvalidity, uid=uid, deleted_on_server=False)
            .execution_options(synchronize_session=False)
        )

    def mark_deleted_on_server(self, email_ids: Iterable[int]) -> int:
        ids = list(email_ids)
        if not ids:
            return 0
        self.session.execute(
            update(Email)
            .where(Email.id.in_(ids))
            .values(deleted_on_server=True)
            .execution_options(synchronize_session=False)
        )
        return len(ids)

    def list_for_account(
        self, account_id: int, mailbox_id: int | None = None, *, deleted: bool = False
    ) -> list[Email]:
        """The account's emails, newest first: those in the Deleted folder, or all the others."""
        query = (
            select(Email)
            .options(defer(Email.raw))
            .where(Email.account_id == account_id, Email.purged.is_(False))
        )
        if deleted:
            query = query.where(Email.deleted_at.is_not(None))
        else:
            query = query.where(Email.deleted_at.is_(None))
        if mailbox_id is not None:
            query = query.where(Email.mailbox_id == mailbox_id)
        return list(self.session.scalars(query.order_by(Email.date.desc(), Email.id.desc())))

    def in_thread(self, thread_ids: list[int]) -> dict[int, list[Email]]:
        """The listed (not deleted) emails of each thread, oldest first."""
        found: dict[int, list[Email]] = {thread_id: [] for thread_id in thread_ids}
        if not thread_ids:
            return found
        rows = self.session.scalars(
            select(Email)
            .where(
                Email.thread_id.in_(thread_ids),
                Email.deleted_at.is_(None),
                Email.purged.is_(False),
            )
            .order_by(Email.date, Email.id)
        )
        for email in rows:
            assert email.thread_id is not None
            found[email.thread_id].append(email)
        return found

    def of_mailbox(self, mailbox_id: int) -> list[Email]:
        return list(
            self.session.scalars(
                select(Email).where(Email.mailbox_id == mailbox_id).order_by(Email.id)
            )
        )

    def deleted_before(self, cutoff: datetime) -> list[Email]:
        """Emails in the Deleted folder since before ``cutoff`` (due for the purge)."""
        return list(
            self.session.scalars(
                select(Email).where(
                    Email.deleted_at.is_not(None),
                    Email.deleted_at < cutoff,
                    Email.purged.is_(False),
                )
            )
        )

    def delete_listed_of_mailbox(self, mailbox_id: int) -> None:
        """Remove for good the box's emails that are neither deleted in the CRM nor purged."""
        self.session.execute(
            delete(Email).where(
                Email.mailbox_id == mailbox_id,
                Email.deleted_at.is_(None),
                Email.purged.is_(False),
            )
        )

    def add_attachments(self, attachments: Iterable[EmailAttachment]) -> None:
        self.session.add_all(attachments)

    def attachments(self, email_id: int) -> list[EmailAttachment]:
        return list(
            self.session.scalars(
                select(EmailAttachment)
                .where(EmailAttachment.email_id == email_id)
                .order_by(EmailAttachment.position)
            )
        )

    def attachment(self, attachment_id: int) -> EmailAttachment | None:
        return self.session.get(EmailAttachment, attachment_id)

    def tombstone(self, email: Email) -> None:
        """Remove an email's content for good, keeping only what stops a sync from importing
        the message again (box, folder, message key)."""
        email.purged = True
        email.raw = b""
        email.size = 0
        email.subject = email.from_addr = email.to_addrs = email.cc_addrs = ""
        self.session.execute(delete(EmailAttachment).where(EmailAttachment.email_id == email.id))

    def contact_ids(self, email_ids: list[int]) -> dict[int, list[int]]:
        found: dict[int, list[int]] = {email_id: [] for email_id in email_ids}
        if not email_ids:
            return found
        rows = self.session.execute(
            select(email_contact.c.email_id, email_contact.c.contact_id)
            .where(email_contact.c.email_id.in_(email_ids))
            .order_by(email_contact.c.contact_id)
        )
        for email_id, contact_id in rows:
            found[email_id].append(contact_id)
        return found
