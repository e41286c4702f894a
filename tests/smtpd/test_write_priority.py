"""Spool commits first: a background writer's transaction waits while the intake is spooling."""

import asyncio
import threading

import pytest
from sqlalchemy import text

from crmmail.smtpd.group_commit import SpoolCommitter
from crmmail.storage.database import Database
from crmmail.storage.repositories.inbound import SpoolEntry
from crmmail.storage.write_priority import SpoolFirstDatabase, WritePriority

LONG = 3600.0  # seconds: only the intake can let the writer go


def background_write(db: Database, order: list[str]) -> threading.Thread:
    def write() -> None:
        with db.transaction() as session:
            session.execute(text("SELECT 1"))
        order.append("background")

    thread = threading.Thread(target=write)
    thread.start()
    return thread


def test_a_background_transaction_waits_while_the_intake_is_spooling(db: Database) -> None:
    priority = WritePriority(max_wait=LONG)
    order: list[str] = []
    priority.set_spooling(True)
    writer = background_write(SpoolFirstDatabase(db, priority), order)
    writer.join(0.3)
    assert writer.is_alive()  # held back
    order.append("intake")
    priority.set_spooling(False)
    writer.join(10)
    assert order == ["intake", "background"]


def test_a_background_writer_is_slowed_never_starved(db: Database) -> None:
    priority = WritePriority(max_wait=0.05)
    priority.set_spooling(True)  # and it never ends
    order: list[str] = []
    background_write(SpoolFirstDatabase(db, priority), order).join(10)
    assert order == ["background"]


def test_the_committer_spools_from_the_first_queued_message_to_the_last_commit(
    db: Database, acme: int
) -> None:
    seen: list[bool] = []

    class Recording(WritePriority):
        def set_spooling(self, spooling: bool) -> None:
            seen.append(spooling)
            super().set_spooling(spooling)

    priority = Recording()
    committer = SpoolCommitter(db, priority=priority)
    entry = SpoolEntry(acme, "127.0.0.1:1", "client.test", "bob@corp.test", ["acme@x"], b"x\r\n")

    async def spool_three() -> list[list[int]]:
        return list(await asyncio.gather(*(committer.spool([entry]) for _ in range(3))))

    assert len(asyncio.run(spool_three())) == 3
    assert seen == [True, False]


def held_elsewhere(lock: "threading.RLock") -> bool:
    """Whether another thread holds ``lock`` (a reentrant lock says yes to its own holder)."""
    taken: list[bool] = []

    def attempt() -> None:
        got = lock.acquire(blocking=False)
        taken.append(got)
        if got:
            lock.release()

    probe = threading.Thread(target=attempt)
    probe.start()
    probe.join(10)
    return not taken[0]


@pytest.mark.parametrize("backend", ["sqlite"])
def test_a_background_transaction_holds_the_intake_back_only_once_it_writes(
    db: Database,
) -> None:
    """The worker asks DNS inside its open transaction, before its first statement: the intake's
    commits must not wait for that."""
    priority = WritePriority()
    with SpoolFirstDatabase(db, priority).transaction() as session:
        assert not held_elsewhere(priority.writing)  # open, nothing written yet
        session.execute(text("SELECT 1"))
        assert held_elsewhere(priority.writing)  # SQLite's write transaction has begun
    assert not held_elsewhere(priority.writing)
