"""Threads of a mailbox: find or start one by key, list, and drop them to regroup."""

from collections.abc import Sequence
from typing import NamedTuple

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from crmmail.storage.models import Email, Thread
from crmmail.storage.repositories.chunks import in_chunks


class NewThread(NamedTuple):
    """A thread wanted by key, with what it starts with if it does not exist yet."""

    key: str
    counterpart: str
    subject: str


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

    def find_or_start_many(self, mailbox_id: int, wanted: Sequence[NewThread]) -> dict[str, int]:
        """The id of each wanted thread by key: one lookup, the missing ones started in one
        flush (the first one wanted of a key gives its counterpart and subject)."""
        found: dict[str, int] = {}
        for chunk in in_chunks([thread.key for thread in wanted]):
            rows = self.session.execute(
                select(Thread.key, Thread.id).where(
                    Thread.mailbox_id == mailbox_id,
                    Thread.key.in_(chunk),
                )
            )
            found.update({key: thread_id for key, thread_id in rows})
        started: dict[str, Thread] = {}
        for thread in wanted:
            if thread.key not in found and thread.key not in started:
                started[thread.key] = Thread(
                    mailbox_id=mailbox_id,
                    key=thread.key,
                    counterpart=thread.counterpart,
                    subject=thread.subject,
                )
        if started:
            self.session.add_all(started.values())
            self.session.flush()
            found.update({key: thread.id for key, thread in started.items()})
        return found

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
