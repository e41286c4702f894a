"""Group commit on the real intake: concurrent sessions share a transaction, each 250 its own.

To make batches certain (not a matter of timing), a test holds the spool table's write lock in
another transaction while the sessions send, waits until every message is queued or being
committed, then lets go: what queued meanwhile is committed together.
"""

import asyncio
import smtplib
import socket
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

from sqlalchemy import select, text

from crmmail.config import Settings
from crmmail.smtpd import replies
from crmmail.smtpd.group_commit import SpoolCommitter
from crmmail.smtpd.handler import IntakeHandler
from crmmail.smtpd.server import start_smtp_server
from crmmail.storage.database import Database
from crmmail.storage.models import InboundMessage
from tests.faults import fail_inserts
from tests.intake import message, wire_bytes

SESSIONS = 20
WAIT = 30.0  # seconds: give up (the test fails) when the intake never gets there


@contextmanager
def serving(handler: IntakeHandler, settings: Settings) -> Iterator[int]:
    """The real listener with this handler on 127.0.0.1, in a thread; yields the port."""
    loop = asyncio.new_event_loop()
    listener = loop.run_until_complete(start_smtp_server(handler, settings, "127.0.0.1", 0))
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        yield listener.address[1]
    finally:
        asyncio.run_coroutine_threadsafe(listener.shut_down(grace=5), loop).result(timeout=10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        loop.close()


@contextmanager
def spool_locked(db: Database) -> Iterator[None]:
    """Hold the write lock on the spool table (SQLite: the database) until the block ends."""
    with db.transaction() as session:
        if db.is_postgresql:
            session.execute(text("LOCK TABLE inbound_message IN EXCLUSIVE MODE"))
        else:
            session.execute(text("SELECT 1"))  # BEGIN IMMEDIATE: the write lock
        yield


def wait_for(condition: Callable[[], bool], what: str) -> None:
    done = threading.Event()
    deadline = threading.Timer(WAIT, done.set)
    deadline.start()
    try:
        while not condition():
            if done.wait(0.01):
                raise AssertionError(f"gave up waiting for {what}")
    finally:
        deadline.cancel()


def deliver(port: int, number: int, mail_from: str = "bob@corp.test") -> int:
    """Send message ``number``; the reply code to DATA (250 or the refusal's)."""
    raw = wire_bytes(message(subject=f"batch {number}", message_id=f"<batch-{number}@corp.test>"))
    try:
        with smtplib.SMTP("127.0.0.1", port, timeout=WAIT) as client:
            client.sendmail(mail_from, ["acme@mail.localhost"], raw)
    except smtplib.SMTPDataError as refused:
        assert refused.smtp_error.decode() == replies.TEMPORARY_FAILURE[4:]
        return refused.smtp_code
    return 250


def stored_subjects(db: Database) -> set[str]:
    with db.read() as session:
        raws = session.scalars(select(InboundMessage.raw))
        return {raw.split(b"Subject: ")[1].split(b"\r\n")[0].decode() for raw in raws}


def held_back_batch(
    db: Database, settings: Settings, senders: list[str]
) -> tuple[list[int], list[int]]:
    """Send one message per sender at once behind the spool lock; DATA replies, batch sizes."""
    batches: list[int] = []
    committer = SpoolCommitter(db, on_batch=batches.append)
    handler = IntakeHandler(db, settings, committer=committer)
    with serving(handler, settings) as port, ThreadPoolExecutor(len(senders)) as pool:
        with spool_locked(db):
            codes = [
                pool.submit(deliver, port, number, sender) for number, sender in enumerate(senders)
            ]
            wait_for(lambda: committer.waiting == len(senders), "every message to be queued")
            assert not any(code.done() for code in codes)  # nobody is answered before its commit
        return [code.result() for code in codes], batches


def test_concurrent_sessions_share_commits_and_all_are_stored(
    db: Database, settings: Settings, acme: int
) -> None:
    codes, batches = held_back_batch(db, settings, ["bob@corp.test"] * SESSIONS)
    assert codes == [250] * SESSIONS
    assert sum(batches) == SESSIONS
    assert len(batches) <= 2  # the one(s) blocked by the lock, then all that queued behind
    assert stored_subjects(db) == {f"batch {number}" for number in range(SESSIONS)}


def test_a_message_the_database_refuses_fails_alone(
    db: Database, settings: Settings, acme: int
) -> None:
    fail_inserts(db, "inbound_message", "new.mail_from = 'bad@corp.test'")
    senders = ["bob@corp.test"] * 9
    senders[4] = "bad@corp.test"
    codes, batches = held_back_batch(db, settings, senders)
    assert codes == [451 if sender == "bad@corp.test" else 250 for sender in senders]
    assert max(batches) > 1  # the bad message really shared a batch with good ones
    assert stored_subjects(db) == {f"batch {n}" for n in range(9) if n != 4}


def test_a_batch_that_cannot_be_stored_answers_451_to_each_message(
    db: Database, settings: Settings, acme: int
) -> None:
    fail_inserts(db, "inbound_message")
    codes, batches = held_back_batch(db, settings, ["bob@corp.test"] * 5)
    assert codes == [451] * 5
    assert sum(batches) == 5
    assert stored_subjects(db) == set()


def test_concurrent_messages_on_their_own_are_all_stored(
    db: Database, settings: Settings, acme: int
) -> None:
    """Without any lock held: 20 sessions x 5 messages, every 250 stored exactly once."""
    handler = IntakeHandler(db, settings)
    with serving(handler, settings) as port, ThreadPoolExecutor(SESSIONS) as pool:
        codes = list(pool.map(lambda number: deliver(port, number), range(SESSIONS * 5)))
    assert codes == [250] * (SESSIONS * 5)
    assert stored_subjects(db) == {f"batch {number}" for number in range(SESSIONS * 5)}
    with db.read() as session:
        assert len(list(session.scalars(select(InboundMessage.id)))) == SESSIONS * 5


def test_a_queued_message_whose_client_hangs_up_is_still_stored(
    db: Database, settings: Settings, acme: int
) -> None:
    committer = SpoolCommitter(db)
    handler = IntakeHandler(db, settings, committer=committer)
    raw = wire_bytes(message(subject="batch gone", message_id="<gone@corp.test>"))
    with serving(handler, settings) as port:
        with (
            spool_locked(db),
            socket.create_connection(("127.0.0.1", port), timeout=WAIT) as client,
        ):
            # Pipelined (the server reads one command at a time): up to the final dot.
            commands = b"EHLO c.test\r\nMAIL FROM:<bob@corp.test>\r\n"
            commands += b"RCPT TO:<acme@mail.localhost>\r\nDATA\r\n"
            client.sendall(commands + raw + b".\r\n")
            wait_for(lambda: committer.waiting == 1, "the message to be queued")
        # hung up with its message queued behind the lock, before any reply to the dot
        wait_for(lambda: committer.waiting == 0, "the queued commit")
    assert stored_subjects(db) == {"batch gone"}


def test_a_commit_slower_than_the_storage_timeout_answers_451(
    db: Database, settings: Settings, acme: int
) -> None:
    impatient = settings.model_copy(update={"storage_timeout": 0.5})
    committer = SpoolCommitter(db)
    handler = IntakeHandler(db, impatient, committer=committer)
    with serving(handler, impatient) as port:
        with spool_locked(db):
            assert deliver(port, 1) == 451
        wait_for(lambda: committer.waiting == 0, "the late commit")
    # Stored after all, for a client told to send again: a duplicate the worker drops.
    assert stored_subjects(db) == {"batch 1"}
