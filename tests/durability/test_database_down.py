"""The database goes away under a running ``crmmail serve``: 451, never 250 or 5xx, then recovery.

PostgreSQL runs in a cluster of its own that the test stops (``pg_ctl stop -m fast`` or
``-m immediate``) and starts again. SQLite's files are made immutable (``chattr +i``): the test
runs as root, and root writes through ``chmod a-w`` (and a running process writes through its
open descriptors anyway), while an immutable file refuses every write, even on a descriptor that
was opened before, as a failed disk would.
"""

import os
import smtplib
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from crmmail.services import accounts
from crmmail.smtpd import replies
from crmmail.storage.database import Database
from crmmail.storage.models import InboundMessage
from crmmail.storage.repositories.inbound import InboundRepository
from tests.durability import pgcontrol
from tests.intake import message, send, wire_bytes
from tests.pgcluster import Cluster
from tests.serveproc import RawSmtp, running_serve, wait_until

RECIPIENT = "acme@mail.localhost"
SERVE_ENV = {"CRMMAIL_STORAGE_TIMEOUT": "10", "CRMMAIL_WORKER_IDLE_POLL": "0.5"}
TEMPORARY_FAILURE = replies.TEMPORARY_FAILURE.encode() + b"\r\n"


def numbered(number: int) -> bytes:
    return wire_bytes(
        message(subject=f"outage {number}", message_id=f"<outage-{number}@corp.test>")
    )


def ready_for_data(port: int) -> RawSmtp:
    """A session whose recipient was accepted while the database was up."""
    client = RawSmtp(port)
    assert client.command(b"EHLO client.test").startswith(b"250")
    assert client.command(b"MAIL FROM:<bob@corp.test>").startswith(b"250")
    assert client.command(f"RCPT TO:<{RECIPIENT}>".encode()).startswith(b"250")
    return client


def finish_data(client: RawSmtp, raw: bytes) -> bytes:
    assert client.command(b"DATA").startswith(b"354")
    client.sock.sendall(raw + b".\r\n")
    return client.reply()


def rcpt_reply(port: int) -> bytes:
    client = RawSmtp(port)
    try:
        assert client.command(b"EHLO client.test").startswith(b"250")
        assert client.command(b"MAIL FROM:<bob@corp.test>").startswith(b"250")
        return client.command(f"RCPT TO:<{RECIPIENT}>".encode())
    finally:
        client.close()


def subjects(db: Database) -> list[str]:
    with db.read() as session:
        raws = session.scalars(select(InboundMessage.raw).order_by(InboundMessage.id))
        return [raw.split(b"Subject: ")[1].split(b"\r\n")[0].decode() for raw in raws]


def processed(db: Database) -> bool:
    with db.read() as session:
        return set(InboundRepository(session).count_by_status()) <= {"done", "ignored"}


@pytest.fixture
def own_postgresql() -> Iterator[tuple[Cluster, str]]:
    with pgcontrol.dedicated_database() as (cluster, url):
        db = Database.from_url(url)
        with db.transaction() as session:
            accounts.create_account(session, "acme", "Acme Inc.")
        db.dispose()
        yield cluster, url


@pytest.mark.parametrize("mode", ["fast", "immediate"])
def test_postgresql_stopped_answers_451_then_intake_recovers_by_itself(
    own_postgresql: tuple[Cluster, str], mode: str, tmp_path: Path
) -> None:
    cluster, url = own_postgresql
    with running_serve(url, tmp_path, env=SERVE_ENV) as serve:
        send(serve.port, numbered(1), [RECIPIENT])
        waiting = ready_for_data(serve.port)
        pgcontrol.stop(cluster, mode)
        try:
            assert finish_data(waiting, numbered(2)) == TEMPORARY_FAILURE  # DATA: 451
            assert rcpt_reply(serve.port) == TEMPORARY_FAILURE  # RCPT: 451
            with pytest.raises(smtplib.SMTPRecipientsRefused) as refused:
                send(serve.port, numbered(3), [RECIPIENT])
            assert refused.value.recipients == {RECIPIENT: (451, TEMPORARY_FAILURE[4:-2])}
        finally:
            waiting.close()
            pgcontrol.start(cluster)
        # back by itself: the very next message is accepted (stale pooled connections are
        # found by the pre-ping and replaced, not handed to the intake)
        send(serve.port, numbered(4), [RECIPIENT])
        assert serve.process.poll() is None
    db = Database.from_url(url)
    try:
        assert subjects(db) == ["outage 1", "outage 4"]
    finally:
        db.dispose()


def test_a_postgresql_restart_between_two_messages_costs_no_451(
    own_postgresql: tuple[Cluster, str], tmp_path: Path
) -> None:
    """Connections pooled before the restart are dead; none may be handed to the intake."""
    cluster, url = own_postgresql
    db = Database.from_url(url)
    with running_serve(url, tmp_path) as serve:  # the worker does not poll: no traffic between
        send(serve.port, numbered(1), [RECIPIENT])
        wait_until(lambda: processed(db), 30, "the worker to process the first message")
        db.dispose()
        pgcontrol.stop(cluster, "fast")
        pgcontrol.start(cluster)
        send(serve.port, numbered(2), [RECIPIENT])  # 250 at the first try
    try:
        assert subjects(db) == ["outage 1", "outage 2"]
    finally:
        db.dispose()


def chattr(flag: str, *paths: Path) -> None:
    subprocess.run(["chattr", flag, *map(str, paths)], check=True, capture_output=True)


@pytest.mark.parametrize("backend", ["sqlite"])
def test_sqlite_files_that_refuse_writes_answer_451_then_intake_recovers_by_itself(
    database_url: str, acme: int, db: Database, tmp_path: Path
) -> None:
    path = Path(database_url.removeprefix("sqlite:///"))
    files = (path, Path(f"{path}-wal"))
    with running_serve(database_url, tmp_path, env=SERVE_ENV) as serve:
        send(serve.port, numbered(1), [RECIPIENT])  # the WAL file exists from here on
        waiting = ready_for_data(serve.port)
        chattr("+i", *files)
        try:
            with pytest.raises(PermissionError):  # the files really refuse writes, even to root
                os.open(path, os.O_WRONLY)
            assert finish_data(waiting, numbered(2)) == TEMPORARY_FAILURE  # DATA: 451
            # RCPT only reads, which an immutable file still allows: never a 5xx
            assert rcpt_reply(serve.port).startswith(b"250 ")
            with pytest.raises(smtplib.SMTPDataError) as refused:
                send(serve.port, numbered(3), [RECIPIENT])
            assert (refused.value.smtp_code, refused.value.smtp_error) == (
                451,
                TEMPORARY_FAILURE[4:-2],
            )
        finally:
            waiting.close()
            chattr("-i", *files)
        send(serve.port, numbered(4), [RECIPIENT])
        assert serve.process.poll() is None
    assert subjects(db) == ["outage 1", "outage 4"]


@pytest.mark.parametrize("backend", ["sqlite"])
def test_sqlite_file_unwritable_when_serve_starts_answers_451_until_writable_again(
    database_url: str, acme: int, db: Database, tmp_path: Path
) -> None:
    """SQLite opens a file it cannot write read-only, silently, and such a connection stays
    read-only after the file is writable again: the pool must not keep it."""
    path = Path(database_url.removeprefix("sqlite:///"))
    db.dispose()
    chattr("+i", path)
    try:
        with running_serve(database_url, tmp_path, env=SERVE_ENV) as serve:
            with pytest.raises(smtplib.SMTPDataError) as refused:
                send(serve.port, numbered(1), [RECIPIENT])
            assert refused.value.smtp_code == 451
            chattr("-i", path)
            send(serve.port, numbered(2), [RECIPIENT])
            assert serve.process.poll() is None
    finally:
        chattr("-i", path)
    assert subjects(db) == ["outage 2"]
