"""Large messages through the intake and the spool: stored byte for byte, each in its row."""

import os

from sqlalchemy import select

from crmmail.config import Settings
from crmmail.storage.database import Database
from crmmail.storage.models import InboundMessage
from crmmail.storage.repositories.inbound import InboundRepository, SpoolEntry
from tests.intake import message, running_intake, send, wire_bytes


def entry(account_id: int, raw: bytes) -> SpoolEntry:
    return SpoolEntry(account_id, "127.0.0.1:1", "client.test", "bob@corp.test", ["acme@x"], raw)


def stored(db: Database, ids: list[int]) -> list[bytes]:
    with db.read() as session:
        rows = session.execute(
            select(InboundMessage.id, InboundMessage.raw).where(InboundMessage.id.in_(ids))
        )
        by_id = {row.id: row.raw for row in rows}
    return [by_id[inbound_id] for inbound_id in ids]


def test_large_and_small_messages_in_one_batch_each_keep_their_bytes(
    db: Database, acme: int
) -> None:
    sizes = [10, 256 * 1024, 3 * 1024 * 1024 + 7, 0, 256 * 1024 - 1]
    raws = [os.urandom(size) for size in sizes]
    with db.transaction() as session:
        ids = InboundRepository(session).spool([entry(acme, raw) for raw in raws])
    assert stored(db, ids) == raws
    with db.read() as session:
        rows = session.execute(
            select(InboundMessage.id, InboundMessage.size).where(InboundMessage.id.in_(ids))
        )
        size_by_id = {row.id: row.size for row in rows}
    assert [size_by_id[inbound_id] for inbound_id in ids] == sizes


def test_a_large_message_over_smtp_is_stored_intact(
    db: Database, settings: Settings, acme: int
) -> None:
    body = "".join(f"line {n} " + "x" * 60 + "\n" for n in range(40_000))  # about 2.7 MB
    raw = wire_bytes(message(body="." + body))  # a leading dot, unstuffed on the way
    with running_intake(db, settings) as port:
        send(port, raw, ["acme@mail.localhost"])
    with db.read() as session:
        [stored_raw] = session.scalars(select(InboundMessage.raw))
    assert stored_raw == raw
