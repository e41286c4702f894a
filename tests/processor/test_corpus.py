"""Every message of the shared corpus goes through the processor: processed or kept with a reason.

Each message is spooled twice: as it is (our address only in the envelope), and with our
``+contact`` address added in Cc so that it reaches the participant and contact steps. The
parser's limits cut only the two messages built to be hostile; the time each message takes
is measured by ``bench/parser_abuse.py`` (never asserted here).
"""

import os
from pathlib import Path

import pytest
from sqlalchemy import select

from crmmail.config import Settings
from crmmail.processor.message import parse_message
from crmmail.processor.steps.participants import participants_of
from crmmail.processor.worker import Worker
from crmmail.storage.database import Database
from crmmail.storage.models import InboundMessage
from crmmail.storage.repositories.inbound import InboundRepository, SpoolEntry

# The shared corpus sits beside the checkout (../shared/corpus); CRMMAIL_CORPUS points elsewhere.
CORPUS = Path(
    os.environ.get("CRMMAIL_CORPUS", Path(__file__).resolve().parents[3] / "shared" / "corpus")
)
MESSAGES = sorted(CORPUS.rglob("*.eml"))
CONTACT = "acme+contact@mail.localhost"
# The corpus messages built to be hostile, and what the limits cut in each.
HOSTILE = {
    "enclosed-endless.eml": "more than 500 MIME parts: rest not parsed",
    "long-header.eml": "more than 100 encoded-words in subject: cut",
}


def test_the_corpus_is_there() -> None:
    assert len(MESSAGES) >= 40, f"expected the shared corpus at {CORPUS}"


@pytest.mark.parametrize("path", MESSAGES, ids=lambda path: path.name)
def test_corpus_message_is_cut_only_if_hostile(path: Path) -> None:
    parsed = parse_message(path.read_bytes())
    participants_of(parsed, set(), ("mail.localhost",))
    if path.name in HOSTILE:
        assert HOSTILE[path.name] in parsed.limits
    else:
        assert parsed.limits == []


@pytest.mark.timeout(60)
@pytest.mark.parametrize("path", MESSAGES, ids=lambda path: path.name)
def test_corpus_message_ends_with_a_status_and_a_reason(
    path: Path, db: Database, settings: Settings, acme: int
) -> None:
    raw = path.read_bytes()
    visible = f"Cc: {CONTACT}\r\n".encode() + raw
    with db.transaction() as session:
        ids = InboundRepository(session).spool(
            SpoolEntry(acme, "127.0.0.1:1", "test", "sender@corp.test", [CONTACT], data)
            for data in (raw, visible)
        )
    Worker(db, settings).run_until_idle()
    with db.transaction() as session:
        rows = session.scalars(select(InboundMessage).where(InboundMessage.id.in_(ids))).all()
        for row in rows:
            assert row.status in {"done", "ignored", "dead"}, row.status
            assert row.status == "done" or row.reason, f"{row.status} without a reason"
            assert row.status != "dead", row.last_error
        as_is, _ = sorted(rows, key=lambda row: row.id)
        assert as_is.status == "ignored"
        assert as_is.raw == raw
