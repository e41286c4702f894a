"""The worker: retries with backoff, dead messages, requeue, leases, and several workers at once."""

import threading
from datetime import datetime, timedelta

import pytest
from sqlalchemy import func, select

from crmmail.config import Settings
from crmmail.errors import UserInputError
from crmmail.processor.worker import Worker
from crmmail.services import crm, inbound
from crmmail.storage.base import utcnow
from crmmail.storage.database import Database
from crmmail.storage.models import InboundMessage, InboundStatus, Note
from crmmail.storage.repositories.inbound import ClaimedMessage, InboundRepository, SpoolEntry
from tests.faults import fail_inserts, heal
from tests.intake import message, send, wire_bytes
from tests.processor.conftest import Mailroom

NOTE = "acme@mail.localhost"
LEASE = timedelta(minutes=5)
MAX_ATTEMPTS = 5


def spool(db: Database, account_id: int, raw: bytes, rcpt: str = NOTE) -> int:
    entry = SpoolEntry(account_id, "127.0.0.1:1", "test", "bob@corp.test", [rcpt], raw)
    with db.transaction() as session:
        return InboundRepository(session).spool([entry])[0]


def known_contact(db: Database) -> None:
    with db.transaction() as session:
        crm.add_contact(session, "acme", "ann@example.com", "Ann", ("mail.localhost",))


def test_a_failing_message_is_retried_then_dead_and_never_blocks_others(
    mailroom: Mailroom,
) -> None:
    known_contact(mailroom.db)
    fail_inserts(mailroom.db, "note", "new.subject = 'poison'")
    send(mailroom.port, message(subject="poison", message_id="<p@x>"), [NOTE])
    send(mailroom.port, message(subject="fine", message_id="<f@x>"), [NOTE])
    mailroom.process()  # the poison message goes first, fails, and waits behind the fine one
    [poison, fine] = mailroom.inbound()
    assert (poison["status"], poison["reason"], poison["attempts"]) == ("dead", "error", 5)
    assert "injected storage failure" in poison["last_error"]
    assert (fine["status"], fine["attempts"]) == ("done", 1)
    assert [note["subject"] for note in mailroom.notes()] == ["fine"]

    heal(mailroom.db, "note")
    with mailroom.db.transaction() as session:
        assert inbound.retry_inbound(session, poison["id"])["status"] == "queued"
    mailroom.process()
    assert mailroom.outcomes() == [("done", None), ("done", None)]
    assert sorted(note["subject"] for note in mailroom.notes()) == ["fine", "poison"]


def test_a_failure_backs_off_before_the_next_attempt(
    db: Database, database_url: str, acme: int
) -> None:
    known_contact(db)
    settings = Settings(database_url=database_url, retry_base_delay=60)
    fail_inserts(db, "note")
    inbound_id = spool(db, acme, wire_bytes(message()))
    before = utcnow()
    assert Worker(db, settings).run_until_idle() == 1  # one attempt, then not due
    with db.transaction() as session:
        row = session.get(InboundMessage, inbound_id)
        assert row is not None
        assert (row.status, row.attempts) == ("queued", 1)
        assert row.next_attempt_at >= before + timedelta(seconds=59)


def claim(db: Database, now: datetime | None = None) -> ClaimedMessage | None:
    with db.transaction() as session:
        return InboundRepository(session).claim_next(LEASE, MAX_ATTEMPTS, now=now)


def test_an_expired_lease_makes_a_message_claimable_again(db: Database, acme: int) -> None:
    inbound_id = spool(db, acme, wire_bytes(message()))
    first = claim(db)
    assert first is not None and (first.id, first.attempts) == (inbound_id, 1)
    assert claim(db) is None
    again = claim(db, now=utcnow() + LEASE + timedelta(seconds=1))
    assert again is not None and (again.id, again.attempts) == (inbound_id, 2)
    assert again.token != first.token


def test_a_message_that_kills_its_worker_every_time_ends_dead(db: Database, acme: int) -> None:
    inbound_id = spool(db, acme, wire_bytes(message()))
    now = utcnow()
    for attempt in range(1, MAX_ATTEMPTS + 1):
        claimed = claim(db, now=now)
        assert claimed is not None and claimed.attempts == attempt
        now += LEASE + timedelta(seconds=1)  # the worker died: its lease runs out
    assert claim(db, now=now) is None
    with db.transaction() as session:
        row = session.get(InboundMessage, inbound_id)
        assert row is not None
        assert (row.status, row.reason, row.attempts) == ("dead", "error", MAX_ATTEMPTS)
        assert row.last_error is not None and "gave up" in row.last_error


def test_a_worker_that_lost_its_lease_cannot_overwrite_the_outcome(db: Database, acme: int) -> None:
    inbound_id = spool(db, acme, wire_bytes(message()))
    slow = claim(db)
    fast = claim(db, now=utcnow() + LEASE + timedelta(seconds=1))
    assert slow is not None and fast is not None
    with db.transaction() as session:
        assert InboundRepository(session).finish(fast, InboundStatus.DONE, None, "m@x", "mid:m@x")
    with db.transaction() as session:
        repo = InboundRepository(session)
        assert not repo.finish(slow, InboundStatus.IGNORED, "bcc", None, None)
        assert repo.record_failure(slow, "late", MAX_ATTEMPTS, 0) is None
    with db.transaction() as session:
        row = session.get(InboundMessage, inbound_id)
        assert row is not None and (row.status, row.last_error) == ("done", None)


def test_only_dead_or_ignored_messages_can_be_retried(mailroom: Mailroom) -> None:
    mailroom.deliver(message(), ["acme@mail.localhost"])  # no known contact: ignored, no_match
    known_contact(mailroom.db)
    [row] = mailroom.inbound()
    with mailroom.db.transaction() as session:
        inbound.retry_inbound(session, row["id"])
    mailroom.process()
    assert mailroom.outcomes() == [("done", None)]
    with mailroom.db.transaction() as session, pytest.raises(UserInputError, match="is done"):
        inbound.retry_inbound(session, row["id"])


def run_workers(db: Database, settings: Settings, count: int = 3) -> list[int]:
    """Run ``count`` workers side by side until the spool is drained; how many each took."""
    processed: list[int] = []
    start = threading.Barrier(count)

    def work() -> None:
        worker = Worker(db, settings)
        start.wait()
        processed.append(worker.run_until_idle())

    threads = [threading.Thread(target=work) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return processed


def test_concurrent_workers_creating_the_same_contacts_never_fail(
    db: Database, settings: Settings, acme: int
) -> None:
    senders = [f"Sender {n} <sender{n}@corp.test>" for n in range(3)]
    for number in range(60):
        mail = message(
            sender=senders[number % 3],
            to="acme+contact@mail.localhost",
            cc=None,
            message_id=f"<c{number}@corp.test>",
        )
        spool(db, acme, wire_bytes(mail), rcpt="acme+contact@mail.localhost")
    assert sum(run_workers(db, settings, count=4)) == 60
    with db.transaction() as session:
        rows = session.execute(select(InboundMessage.status, InboundMessage.attempts)).all()
        assert set(rows) == {("done", 1)}
        contacts = sorted(c["emails"] for c in crm.list_contacts(session, "acme"))
        assert contacts == [[f"sender{n}@corp.test"] for n in range(3)]


def test_concurrent_workers_process_each_message_exactly_once(
    db: Database, settings: Settings, acme: int
) -> None:
    known_contact(db)
    count = 60
    for number in range(count):
        spool(db, acme, wire_bytes(message(message_id=f"<m{number}@corp.test>")))
    assert sum(run_workers(db, settings)) == count
    with db.transaction() as session:
        statuses = session.execute(
            select(InboundMessage.status, func.count()).group_by(InboundMessage.status)
        ).all()
        assert statuses == [("done", count)]
        notes = session.scalar(select(func.count(func.distinct(Note.message_id))))
        assert notes == count
        assert session.scalar(select(func.count()).select_from(Note)) == count
