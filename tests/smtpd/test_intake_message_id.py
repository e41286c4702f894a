"""The intake stores each message's Message-ID with it, so ``inbound list`` names every message:
the queued, the one being processed and the dead too, not only the ones the worker finished."""

import json
from datetime import timedelta

from click.testing import CliRunner

from crmmail.cli import cli
from crmmail.config import Settings
from crmmail.processor.worker import Worker
from crmmail.services import crm
from crmmail.storage.database import Database
from crmmail.storage.repositories.inbound import InboundRepository
from tests.faults import fail_inserts
from tests.intake import message, running_intake, send, wire_bytes

NOTE = "acme@mail.localhost"


def inbound_list(database_url: str) -> list[tuple[str, str | None]]:
    """``crmmail inbound list acme --json``: (status, message_id) of each message."""
    result = CliRunner().invoke(
        cli, ["--database-url", database_url, "inbound", "list", "acme", "--json"]
    )
    assert result.exit_code == 0, result.output
    return [(row["status"], row["message_id"]) for row in json.loads(result.stdout)]


def test_queued_processing_and_dead_messages_are_listed_with_their_message_id(
    db: Database, settings: Settings, acme: int
) -> None:
    with db.transaction() as session:
        crm.add_contact(session, "acme", "ann@example.com", "Ann", settings.smart_domains)
    fail_inserts(db, "note", "new.subject = 'poison'")
    one_attempt = settings.model_copy(update={"max_attempts": 1})
    with running_intake(db, settings) as port:
        send(port, message(subject="poison", message_id="<poison-1@corp.test>"), [NOTE])
        assert Worker(db, one_attempt).run_until_idle() == 1  # fails once: dead
        send(port, message(message_id="<taken-2@corp.test>"), [NOTE])
        with db.transaction() as session:  # a worker takes it (and is still at it)
            assert InboundRepository(session).claim_next(timedelta(minutes=5), 5) is not None
        send(port, message(message_id="<waiting-3@corp.test>"), [NOTE])
        send(port, message(message_id=None), [NOTE])
    assert inbound_list(settings.database_url) == [
        ("dead", "poison-1@corp.test"),
        ("processing", "taken-2@corp.test"),
        ("queued", "waiting-3@corp.test"),
        ("queued", None),
    ]


FIELDS = [
    b"Message-ID: <plain@corp.test>",
    b"message-id:<lower-case@corp.test>",
    b"Message-Id:\r\n  <folded@corp.test>  (a comment)",
    b"Message-ID: no-brackets@corp.test",
    b"Message-ID: <" + b"x" * 300 + b"@corp.test>",
    b"X-Message-ID: <not-this@corp.test>\r\nMessage-ID: <after-x@corp.test>",
    b"Message-ID: <first@corp.test>\r\nMessage-ID: <second@corp.test>",
    b"Message-ID: <caf\xc3\xa9@corp.test>",
]


def test_the_intake_reads_the_message_id_as_the_worker_does(
    db: Database, settings: Settings, acme: int
) -> None:
    """Whatever the field looks like, processing the message leaves its Message-ID as it was."""
    base = wire_bytes(message(message_id=None))
    with running_intake(db, settings) as port:
        for field in FIELDS:
            send(port, field + b"\r\n" + base, [NOTE])
        send(
            port, base.replace(b"\r\n\r\n", b"\r\n\r\nMessage-ID: <in-body@corp.test>\r\n"), [NOTE]
        )
    queued = inbound_list(settings.database_url)
    assert [status for status, _ in queued] == ["queued"] * (len(FIELDS) + 1)
    assert [message_id for _, message_id in queued][:4] == [
        "plain@corp.test",
        "lower-case@corp.test",
        "folded@corp.test",
        "no-brackets@corp.test",
    ]
    assert queued[-1] == ("queued", None)  # a Message-ID in the body is no Message-ID
    Worker(db, settings).run_until_idle()
    processed = inbound_list(settings.database_url)
    assert {status for status, _ in processed} <= {"done", "ignored"}
    assert [message_id for _, message_id in processed] == [message_id for _, message_id in queued]
