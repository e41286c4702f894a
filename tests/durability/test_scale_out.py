"""Scale-out on one PostgreSQL: two ``serve`` processes, and two workers on one backlog.

Every message is processed exactly once: one claim (``attempts == 1``), one outcome, one note,
and the outcome of each spool row is logged by exactly one process.
"""

import json
import re
import smtplib
import subprocess
import threading
from pathlib import Path

import pytest
from sqlalchemy import select

from crmmail.services import crm
from crmmail.storage.database import Database
from crmmail.storage.models import InboundMessage, Note
from crmmail.storage.repositories.inbound import InboundRepository, SpoolEntry
from tests.durability.pglocks import sessions_waiting_for_a_lock, table_locked
from tests.intake import message, wire_bytes
from tests.serveproc import crmmail_argv, running_serve, wait_until

MESSAGES = 200
SESSIONS = 10
RECIPIENT = "acme@mail.localhost"
PROCESSED = re.compile(r"inbound (\d+): (done|ignored)")


def numbered(number: int) -> bytes:
    return wire_bytes(
        message(subject=f"stream {number}", message_id=f"<stream-{number}@corp.test>")
    )


def known_contact(db: Database) -> None:
    with db.transaction() as session:
        crm.add_contact(session, "acme", "ann@example.com", "Ann", ("mail.localhost",))


def outcomes(db: Database) -> list[tuple[str, str | None, int]]:
    with db.read() as session:
        rows = session.execute(
            select(InboundMessage.status, InboundMessage.reason, InboundMessage.attempts)
        )
        return [(status, reason, attempts) for status, reason, attempts in rows]


def assert_each_processed_once(db: Database) -> None:
    assert outcomes(db) == [("done", None, 1)] * MESSAGES
    with db.read() as session:
        notes = sorted(str(mid) for mid in session.scalars(select(Note.message_id)))
    assert notes == sorted(f"stream-{number}@corp.test" for number in range(MESSAGES))


def send_stream(ports: list[int]) -> None:
    """MESSAGES messages over SESSIONS sessions, each session on the servers in turn."""

    def session(first: int) -> None:
        for number in range(first, MESSAGES, SESSIONS):
            port = ports[number // SESSIONS % len(ports)]
            with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:
                client.sendmail("bob@corp.test", [RECIPIENT], numbered(number))

    threads = [threading.Thread(target=session, args=(n,)) for n in range(SESSIONS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)


@pytest.mark.parametrize("backend", ["postgresql"])
def test_two_serve_processes_process_one_stream_exactly_once(
    database_url: str, acme: int, db: Database, tmp_path: Path
) -> None:
    known_contact(db)
    env = {"CRMMAIL_WORKER_IDLE_POLL": "0.5"}
    with (
        running_serve(database_url, tmp_path / "a", env=env) as first,
        running_serve(database_url, tmp_path / "b", env=env) as second,
    ):
        send_stream([first.port, second.port])
        wait_until(
            lambda: (
                len(outcomes(db)) == MESSAGES
                and all(status == "done" for status, _, _ in outcomes(db))
            ),
            60,
            "both workers to drain the spool",
        )
        assert first.terminate() == 0 and second.terminate() == 0
        logged = [
            [int(found) for found, _ in PROCESSED.findall(serve.output())]
            for serve in (first, second)
        ]
    print(f"\nscale-out: processed by each serve process: {[len(ids) for ids in logged]}")
    assert sorted(logged[0] + logged[1]) == sorted(set(logged[0] + logged[1]))  # none twice
    assert len(logged[0]) + len(logged[1]) == MESSAGES
    assert_each_processed_once(db)


@pytest.mark.parametrize("backend", ["postgresql"])
def test_two_worker_processes_share_one_backlog_exactly_once(
    database_url: str, acme: int, db: Database, tmp_path: Path
) -> None:
    known_contact(db)
    with db.transaction() as session:
        InboundRepository(session).spool(
            SpoolEntry(acme, "127.0.0.1:1", "test", "bob@corp.test", [RECIPIENT], numbered(n))
            for n in range(MESSAGES)
        )
    argv = crmmail_argv(database_url, "process", "--until-idle", "--json")
    with table_locked(db, "note"):  # both workers claim a message and wait: they run together
        workers = [
            subprocess.Popen(argv, cwd=tmp_path, stdout=subprocess.PIPE, text=True)
            for _ in range(2)
        ]
        wait_until(lambda: sessions_waiting_for_a_lock(db) == 2, 60, "both workers to start")
    counts = []
    for worker in workers:
        out, _ = worker.communicate(timeout=120)
        assert worker.returncode == 0
        counts.append(json.loads(out)["processed"])
    print(f"\ntwo workers: processed by each: {counts}")
    assert sum(counts) == MESSAGES and min(counts) > 0
    assert_each_processed_once(db)
