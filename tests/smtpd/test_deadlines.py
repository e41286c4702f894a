"""Deadlines on the intake: a silent client is cut, and so is one trickling its message (slowloris).

``CRMMAIL_SMTP_TIMEOUT`` is how long a client may stay silent, between commands or between the
bytes of a message; ``CRMMAIL_DATA_TIMEOUT`` bounds the whole DATA phase. Both answer
``421 4.4.2`` and hang up, and a message cut in DATA is never stored.
"""

import select
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import select as sql_select
from sqlalchemy import text

from crmmail.config import Settings
from crmmail.smtpd import replies
from crmmail.smtpd.refusals import RefusalReason
from crmmail.storage.database import Database
from crmmail.storage.models import InboundMessage
from tests.intake import message, running_intake, wire_bytes

SOCKET_TIMEOUT = 10.0
TRICKLE_GAP = 0.1  # seconds between bytes: well inside the per-command timeout
TRICKLE_LIMIT = 30.0  # give up (the test fails) if nothing cut the trickle by then


def spooled(db: Database) -> list[InboundMessage]:
    with db.transaction() as session:
        return list(session.scalars(sql_select(InboundMessage)))


class Client:
    """A raw SMTP client: exact bytes out, replies in (multi-line replies: the last line)."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=SOCKET_TIMEOUT)
        self.reader = self.sock.makefile("rb")
        assert self.reply().startswith("220 ")

    def close(self) -> None:
        self.reader.close()
        self.sock.close()

    def reply(self) -> str:
        line = self.reader.readline()
        while line[3:4] == b"-":
            line = self.reader.readline()
        return line.decode().rstrip("\r\n")

    def command(self, line: str) -> str:
        self.sock.sendall(line.encode() + b"\r\n")
        return self.reply()

    def start_data(self) -> None:
        for line, code in (
            ("EHLO client.test", "250"),
            ("MAIL FROM:<bob@corp.test>", "250"),
            ("RCPT TO:<acme@mail.localhost>", "250"),
            ("DATA", "354"),
        ):
            assert self.command(line).startswith(code + " "), line

    def hung_up(self) -> bool:
        return self.reader.read() == b""


def test_a_silent_client_is_cut_with_421(db: Database, settings: Settings, acme: int) -> None:
    refusals: list[RefusalReason] = []
    quick = settings.model_copy(update={"smtp_timeout": 0.5})
    with running_intake(db, quick, refusals.append) as port:
        client = Client(port)
        try:
            assert client.command("EHLO client.test").startswith("250 ")
            assert client.reply() == replies.COMMAND_TIMEOUT  # after half a second of silence
            assert client.hung_up()
        finally:
            client.close()
    assert refusals == [RefusalReason.COMMAND_TIMEOUT]


def test_a_client_silent_inside_data_is_cut_and_nothing_is_stored(
    db: Database, settings: Settings, acme: int
) -> None:
    quick = settings.model_copy(update={"smtp_timeout": 0.5})
    with running_intake(db, quick) as port:
        client = Client(port)
        try:
            client.start_data()
            client.sock.sendall(wire_bytes(message())[:100])  # then nothing
            assert client.reply() == replies.COMMAND_TIMEOUT
            assert client.hung_up()
        finally:
            client.close()
    assert spooled(db) == []


def test_a_message_trickled_byte_by_byte_is_cut_at_the_data_deadline(
    db: Database, settings: Settings, acme: int
) -> None:
    refusals: list[RefusalReason] = []
    # Every byte comes well inside the per-command timeout; only the DATA deadline can stop it.
    slowloris = settings.model_copy(update={"smtp_timeout": 1.0, "data_timeout": 2.0})
    raw = wire_bytes(message(body="x" * 2000 + "\n"))
    with running_intake(db, slowloris, refusals.append) as port:
        client = Client(port)
        try:
            client.start_data()
            give_up = time.monotonic() + TRICKLE_LIMIT
            sent = 0
            while time.monotonic() < give_up and sent < len(raw):
                readable, _, _ = select.select([client.sock], [], [], TRICKLE_GAP)
                if readable:
                    break
                client.sock.sendall(raw[sent : sent + 1])
                sent += 1
            assert client.reply() == replies.DATA_TIMEOUT
            assert client.hung_up()
            assert sent < len(raw)
        finally:
            client.close()
    assert spooled(db) == []
    assert refusals == [RefusalReason.DATA_TIMEOUT]


def test_a_slow_message_within_the_data_deadline_is_accepted(
    db: Database, settings: Settings, acme: int
) -> None:
    """Bytes keep a DATA phase alive past the per-command timeout (a slow link is not idle)."""
    patient = settings.model_copy(update={"smtp_timeout": 0.5, "data_timeout": 60.0})
    raw = wire_bytes(message())
    chunks = [raw[i : i + len(raw) // 8 + 1] for i in range(0, len(raw), len(raw) // 8 + 1)]
    with running_intake(db, patient) as port:
        client = Client(port)
        try:
            client.start_data()
            for chunk in chunks:  # about a second in all: twice the per-command timeout
                client.sock.sendall(chunk)
                time.sleep(0.15)
            client.sock.sendall(b".\r\n")
            assert client.reply() == replies.QUEUED
            assert client.command("QUIT").startswith("221 ")
        finally:
            client.close()
    [row] = spooled(db)
    assert row.raw == raw


@contextmanager
def spool_held(db: Database) -> Iterator[None]:
    """Another connection holds the spool's write lock for the block (then rolls back)."""
    with db.engine.connect() as connection:
        transaction = connection.begin()
        if db.engine.dialect.name == "postgresql":
            connection.execute(text("LOCK TABLE inbound_message IN EXCLUSIVE MODE"))
        else:  # SQLite: BEGIN IMMEDIATE takes the database's write lock
            connection.execute(text("SELECT 1"))
        try:
            yield
        finally:
            transaction.rollback()


def test_a_spool_commit_slower_than_the_idle_timeout_is_answered_250(
    db: Database, settings: Settings, acme: int
) -> None:
    """The client is silent while it waits for our reply: that is no reason to cut it."""
    patient = settings.model_copy(update={"smtp_timeout": 0.5})
    raw = wire_bytes(message())
    with running_intake(db, patient) as port:
        client = Client(port)
        try:
            client.start_data()
            with spool_held(db):
                client.sock.sendall(raw + b".\r\n")
                time.sleep(1.5)  # three idle timeouts with the commit waiting on the lock
            assert client.reply() == replies.QUEUED
            time.sleep(1.0)  # idle again after the reply: the idle timer is back
            assert client.reply() == replies.COMMAND_TIMEOUT
        finally:
            client.close()
    [row] = spooled(db)
    assert row.raw == raw
