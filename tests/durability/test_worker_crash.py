"""A worker killed (SIGKILL) between its claim and its commit: processed exactly once after restart.

The test holds ``LOCK TABLE note IN ACCESS EXCLUSIVE MODE``, so the worker of a real ``crmmail
serve`` claims the message and then waits inside its pipeline transaction; the process is killed
there. Its claim has a lease: once it runs out, the restarted server takes the message again.
(tests/processor/test_worker.py covers the lease in-process; this is a real process and a real
kill, on PostgreSQL, where a table lock can hold a worker mid-transaction.)
"""

from pathlib import Path

import pytest
from sqlalchemy import func, select

from crmmail.services import crm
from crmmail.storage.database import Database
from crmmail.storage.models import InboundMessage, Note
from tests.durability.pglocks import sessions_waiting_for_a_lock, table_locked
from tests.intake import message, send
from tests.serveproc import ServeProcess, free_port, wait_until

SERVE_ENV = {"CRMMAIL_LEASE_SECONDS": "3", "CRMMAIL_WORKER_IDLE_POLL": "0.5"}


def spool_rows(db: Database) -> list[tuple[str, int]]:
    with db.read() as session:
        return [
            (row.status, row.attempts)
            for row in session.execute(select(InboundMessage.status, InboundMessage.attempts))
        ]


@pytest.mark.parametrize("backend", ["postgresql"])
def test_a_worker_killed_mid_message_leaves_it_to_be_processed_exactly_once(
    database_url: str, acme: int, db: Database, tmp_path: Path
) -> None:
    with db.transaction() as session:
        crm.add_contact(session, "acme", "ann@example.com", "Ann", ("mail.localhost",))
    port = free_port()
    serve = ServeProcess(database_url, tmp_path, port=port, env=SERVE_ENV)
    try:
        with table_locked(db, "note"):
            send(port, message(message_id="<crash@corp.test>"), ["acme@mail.localhost"])
            wait_until(lambda: sessions_waiting_for_a_lock(db) == 1, 30, "the worker to block")
            assert spool_rows(db) == [("processing", 1)]  # claimed, not finished
            serve.kill()
        # the killed worker's transaction never commits; its lease runs out, and then
        serve = ServeProcess(database_url, tmp_path, port=port, env=SERVE_ENV)
        wait_until(lambda: spool_rows(db) == [("done", 2)], 60, "the message to be processed")
    finally:
        serve.kill()
    with db.read() as session:
        assert session.scalar(select(func.count()).select_from(Note)) == 1
        [note] = crm.list_notes(session, "acme")
    assert note["subject"] == "Quote for 100 widgets"
