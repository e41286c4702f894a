"""The worker's database round trips: no N+1 over cards, one commit per message while draining.

A message to one known contact and a message to eight, each contact with an open lead and a
customer (24 cards), take the same number of SQL statements, and every card gets its note once.
"""

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event

from crmmail.config import Settings
from crmmail.processor.worker import Worker
from crmmail.services import crm, inbound
from crmmail.storage.database import Database
from crmmail.storage.repositories.inbound import InboundRepository, SpoolEntry
from tests.intake import message, wire_bytes

NOTE = "acme@mail.localhost"


def people(count: int) -> list[str]:
    return [f"person{n}@client.test" for n in range(count)]


def known_with_cards(db: Database, settings: Settings, addresses: list[str]) -> None:
    with db.transaction() as session:
        for address in addresses:
            crm.add_contact(session, "acme", address, None, settings.smart_domains)
            crm.add_lead(session, "acme", f"Deal with {address}", [address])
            crm.add_customer(session, "acme", f"Firm of {address}", [address])


def spool(db: Database, account_id: int, to: list[str], message_id: str) -> None:
    mail = message(sender=to[0], to=", ".join(to[1:]) or NOTE, message_id=message_id)
    entry = SpoolEntry(account_id, "127.0.0.1:1", "test", to[0], [NOTE], wire_bytes(mail))
    with db.transaction() as session:
        InboundRepository(session).spool([entry])


@contextmanager
def counting(db: Database) -> Iterator[list[str]]:
    statements: list[str] = []

    def seen(*args: Any) -> None:
        statements.append(args[2])

    event.listen(db.engine, "before_cursor_execute", seen)
    try:
        yield statements
    finally:
        event.remove(db.engine, "before_cursor_execute", seen)


def test_statements_per_message_do_not_grow_with_cards(
    db: Database, settings: Settings, acme: int
) -> None:
    known_with_cards(db, settings, people(9))
    worker = Worker(db, settings)
    counts = []
    for size, message_id in ((1, "<one@client.test>"), (8, "<eight@client.test>")):
        spool(db, acme, people(9)[-size:] if size > 1 else people(1), message_id)
        with counting(db) as statements:
            assert worker.process_next()
        counts.append(len(statements))
    assert counts[0] == counts[1], counts
    with db.read() as session:
        notes = crm.list_notes(session, "acme")
    cards = [(n["entity_type"], n["entity_id"]) for n in notes if n["subject"]]
    assert len(cards) == 3 + 24
    assert len(set(cards)) == len(cards)


def test_a_second_copy_adds_no_note_to_a_card_that_shows_the_message(
    db: Database, settings: Settings, acme: int
) -> None:
    known_with_cards(db, settings, people(3))
    worker = Worker(db, settings)
    spool(db, acme, people(3), "<same@client.test>")
    worker.run_until_idle()
    spool(db, acme, [*people(3), "ann@example.com"], "<same@client.test>")
    worker.run_until_idle()
    with db.read() as session:
        notes = crm.list_notes(session, "acme")
    assert len(notes) == 9


@contextmanager
def counting_commits(db: Database) -> Iterator[list[object]]:
    commits: list[object] = []

    def seen(connection: object) -> None:
        commits.append(connection)

    event.listen(db.engine, "commit", seen)
    try:
        yield commits
    finally:
        event.remove(db.engine, "commit", seen)


def test_draining_commits_once_per_message(db: Database, settings: Settings, acme: int) -> None:
    """The next claim rides in the transaction that finishes the current message."""
    known_with_cards(db, settings, people(1))
    for number in range(5):
        spool(db, acme, people(1), f"<drain-{number}@client.test>")
    with counting_commits(db) as commits:
        assert Worker(db, settings).run_until_idle() == 5
    assert len(commits) == 1 + 5 + 1  # the first claim, one per message, the last look


def test_a_stopping_worker_finishes_the_message_it_claimed_ahead(
    db: Database, settings: Settings, acme: int
) -> None:
    known_with_cards(db, settings, people(1))
    for number in range(2):
        spool(db, acme, people(1), f"<ahead-{number}@client.test>")
    worker = Worker(db, settings)
    assert worker.process_next(claim_ahead=True)
    with db.read() as session:
        statuses = [row["status"] for row in inbound.list_inbound(session, "acme")]
    assert statuses == ["done", "processing"]
    stop = threading.Event()
    stop.set()
    worker.run(stop)  # returns at once, but not before the message in hand is done
    with db.read() as session:
        statuses = [row["status"] for row in inbound.list_inbound(session, "acme")]
    assert statuses == ["done", "done"]
