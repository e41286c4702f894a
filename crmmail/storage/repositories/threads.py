"""Threads of a mailbox: find or start one by key, list, and drop them to regroup."""

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from crmmail.storage.models import Email, Thread


class ThreadRepository:
    """Reads and writes threads inside the caller's transaction."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def find_or_start(self, mailbox_id: int, key: str, counterpart: str, subject: str) -> Thread:
        thread = self.session.scalar(
            select(Thread).where(Thread.mailbox_id == mailbox_id, Thread.key == key)
        )
        if thread is None:
            thread = Thread(
                mailbox_id=mailbox_id, key=key, counterpart=counterpart, subject=subject
            )
            self.session.add(thread)
            self.session.flush()
        return thread

    def of_mailboxes(self, mailbox_ids: list[int]) -> list[Thread]:
        if not mailbox_ids:
            return []
        return list(
            self.session.scalars(
                select(Thread).where(Thread.mailbox_id.in_(mailbox_ids)).order_by(Thread.id)
            )
        )

    def drop_all(self, mailbox_id: int) -> None:
        """Forget a box's threads (its emails are then regrouped)."""
        self.session.execute(
            update(Email)
            .where(Email.mailbox_id == mailbox_id)
            .values(thread_id=None)
            .execution_options(synchronize_session=False)
        )
        self.session.execute(delete(Thread).where(Thread.mailbox_id == mailbox_id))
