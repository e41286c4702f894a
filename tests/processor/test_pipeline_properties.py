"""Property: whatever people put in headers, a message ends ``done`` or ``ignored``, never ``dead``.

Hypothesis writes the display names, addresses, subjects and content types, or whole hostile
messages from the fuzz grammar; each message goes through the real worker on the real
database, where a value a column cannot hold would fail.
"""

import itertools

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crmmail.config import Settings
from crmmail.processor.worker import Worker
from crmmail.storage.database import Database
from crmmail.storage.repositories.inbound import InboundRepository, SpoolEntry
from tests.processor.test_fuzz import messages

ACTIONS = ["acme@mail.localhost", "acme+contact@mail.localhost", "acme+lead@mail.localhost"]
header_text = st.text(st.characters(codec="utf-8", exclude_characters="\r\n"), max_size=400)
local_parts = st.text(st.characters(codec="ascii", categories=["L", "N", "P"]), min_size=1)
mime_tokens = st.text(st.sampled_from("abcxyz019-.+"), min_size=1, max_size=400)
numbers = itertools.count()


def raw_message(name: str, local: str, subject: str, subtype: str, number: int) -> bytes:
    lines = [
        f"From: {name} <{local}@corp.test>",
        f"To: {name} <{local[::-1]}@x.test>, plain@x.test",
        f"Cc: {', '.join(ACTIONS)}",
        f"Subject: {subject}",
        f"Message-ID: <p{number}@corp.test>",
        f"Content-Type: text/{subtype}; charset=utf-8",
    ]
    return ("\r\n".join(lines) + "\r\n\r\nbody\r\n").encode("utf-8", "surrogateescape")


@pytest.mark.timeout(300)
@settings(
    max_examples=60,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(name=header_text, local=local_parts, subject=header_text, subtype=mime_tokens)
def test_header_values_never_make_a_message_dead(
    db: Database, settings: Settings, acme: int, name: str, local: str, subject: str, subtype: str
) -> None:
    raw = raw_message(name, local, subject, subtype, next(numbers))
    with db.transaction() as session:
        [inbound_id] = InboundRepository(session).spool(
            [SpoolEntry(acme, "127.0.0.1:1", "test", "bob@corp.test", ACTIONS, raw)]
        )
    Worker(db, settings).run_until_idle()
    with db.transaction() as session:
        row = InboundRepository(session).get(inbound_id)
        assert row is not None
        assert row.status in {"done", "ignored"}, row.last_error


@pytest.mark.timeout(300)
@settings(
    max_examples=40,
    deadline=None,
    database=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)
@given(raw=messages())
def test_hostile_messages_never_make_a_message_dead(
    db: Database, settings: Settings, acme: int, raw: bytes
) -> None:
    """The fuzz grammar's messages (tests/processor/test_fuzz.py), with our ``+contact`` address
    in Cc, through the real worker: whatever the limits cut, the rest is processed and stored."""
    raw = b"Cc: acme+contact@mail.localhost\r\nFrom: Ann <ann@corp.test>\r\n" + raw
    with db.transaction() as session:
        [inbound_id] = InboundRepository(session).spool(
            [SpoolEntry(acme, "127.0.0.1:1", "test", "bob@corp.test", ACTIONS[1:2], raw)]
        )
    Worker(db, settings).run_until_idle()
    with db.transaction() as session:
        row = InboundRepository(session).get(inbound_id)
        assert row is not None
        assert row.status in {"done", "ignored"}, row.last_error
        assert row.raw == raw
