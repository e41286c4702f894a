"""SIGKILL at random moments under load: every message answered 250 is stored exactly once.

Twenty client sessions send numbered messages to a real ``crmmail serve``; the process is killed
(SIGKILL: no clean-up at all) at seeded random moments, several times, and restarted on the same
port and database. Clients whose connection dies send the same message again, as an MTA would.
After the worker has drained the spool: every message that got its 250 has exactly one note,
every spool row is a whole message, and a message spooled twice (committed, but its 250 lost
with the process) is kept once and dropped once as a duplicate.
"""

import random
import time
from pathlib import Path

from crmmail.services import crm
from crmmail.storage.database import Database
from crmmail.storage.repositories.inbound import InboundRepository
from tests.durability.ledger import audit
from tests.durability.load import LoadGenerator
from tests.serveproc import ServeProcess, free_port, wait_until

SEED = 20261127
SESSIONS = 20
KILLS = 4
UP_BETWEEN_KILLS = (1.0, 3.0)  # seconds a server runs before the next kill, drawn at random
SERVE_ENV = {
    "CRMMAIL_LEASE_SECONDS": "2",  # a killed worker's message is taken again soon
    "CRMMAIL_RETRY_BASE_DELAY": "0.5",
    "CRMMAIL_WORKER_IDLE_POLL": "0.5",  # expired leases are found without a wake-up
    "CRMMAIL_STORAGE_TIMEOUT": "20",
}


def drained(db: Database) -> bool:
    with db.read() as session:
        counts = InboundRepository(session).count_by_status()
    return set(counts) <= {"done", "ignored"}


def test_sigkill_under_load_loses_nothing_answered_250(
    database_url: str, acme: int, db: Database, tmp_path: Path
) -> None:
    with db.transaction() as session:
        crm.add_contact(session, "acme", "ann@example.com", "Ann", ("mail.localhost",))
    chance = random.Random(SEED)
    port = free_port()
    serve = ServeProcess(database_url, tmp_path, port=port, env=SERVE_ENV)
    load = LoadGenerator(port, SESSIONS)
    load.start()
    try:
        for _ in range(KILLS):
            time.sleep(chance.uniform(*UP_BETWEEN_KILLS))
            serve.kill()
            serve = ServeProcess(database_url, tmp_path, port=port, env=SERVE_ENV)
        time.sleep(chance.uniform(*UP_BETWEEN_KILLS))
        assert load.finish(deadline_s=60), "some messages never got their 250"
        wait_until(lambda: drained(db), 60, "the worker to drain the spool")
    finally:
        load.give_up.set()
        serve.kill()
    figures = load.figures
    result = audit(db, figures.sent, figures.accepted)
    print(
        f"\n{db.engine.dialect.name}: kills={KILLS} messages={len(figures.sent)} "
        f"answered_250={len(figures.accepted)} attempts_cut={figures.failed_attempts} "
        f"refused_connections={figures.refused_connections} "
        f"other_replies={figures.replies} spooled={result.spooled} "
        f"spool_duplicates={result.spool_duplicates} lost={len(result.lost)} "
        f"noted_twice={len(result.noted_twice)}"
    )
    assert len(figures.accepted) >= SESSIONS * KILLS  # the run really carried load
    assert figures.failed_attempts > 0  # and the kills really cut sessions
    assert result.lost == []
    assert result.noted_twice == []
    assert result.half_stored == []
    assert result.unfinished == []
    assert result.not_dropped == []
