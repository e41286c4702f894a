"""Dates of smart-address mail (issue 11, items 1 and 3) and what a failure leaves behind.

A Date the standard library cannot write in UTC is taken as absent: the note lands, dated by
its arrival. ``-0000`` (RFC 5322: UTC) and a Date without a zone are UTC. A failure is recorded
and logged on one line that holds neither the message's text nor the SQL.
"""

import itertools
import logging
import threading
from email.utils import formatdate

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from crmmail.config import Settings
from crmmail.processor.worker import Worker
from crmmail.services import crm
from crmmail.storage.database import Database
from crmmail.storage.repositories.inbound import InboundRepository, SpoolEntry
from tests.faults import fail_inserts, fail_updates
from tests.processor.conftest import Mailroom

NOTE = "acme@mail.localhost"
SECRET = "Quarterly figures 7f3a9"
numbers = itertools.count()


def raw_mail(date: str | None, subject: str = "Dated", body: str = "Hello.") -> bytes:
    lines = [
        "From: Ann Lee <ann@example.com>",
        f"To: {NOTE}",
        f"Subject: {subject}",
        f"Message-ID: <dated-{next(numbers)}@example.com>",
    ]
    if date is not None:
        lines.append(f"Date: {date}")
    return ("\r\n".join(lines) + f"\r\n\r\n{body}\r\n").encode()


def add_ann(room: Mailroom) -> None:
    with room.db.transaction() as session:
        crm.add_contact(session, "acme", "ann@example.com", "Ann Lee", ("mail.localhost",))


@pytest.mark.parametrize(
    "date",
    [
        "Fri, 31 Dec 9999 23:59:59 -1400",  # year 10000 in UTC
        "31 Dec 9999 19:01:00 -0500",  # a minute past year 9999 in UTC
        "Fri, 31 Dec 9999 23:59:59 +9959",  # no such zone
        "yesterday",
        None,
    ],
)
def test_an_unusable_date_is_absent_and_the_note_is_dated_by_its_arrival(
    mailroom: Mailroom, date: str | None
) -> None:
    add_ann(mailroom)
    mailroom.deliver(raw_mail(date), [NOTE])
    [row] = mailroom.inbound()
    assert (row["status"], row["reason"], row["attempts"]) == ("done", None, 1)
    [note] = mailroom.notes()
    assert note["date"] == row["received_at"]


@pytest.mark.parametrize(
    "date",
    [
        "Tue, 02 Jan 2024 10:00:00 -0000",
        "Tue, 02 Jan 2024 10:00:00",
        "2 Jan 2024 10:00:00 +0000",
        "Tue, 02 Jan 2024 11:00:00 +0100",
        formatdate(1704189600.0),  # what Python's own email.utils writes: -0000
    ],
)
def test_minus_zero_and_zone_less_dates_are_utc(mailroom: Mailroom, date: str) -> None:
    add_ann(mailroom)
    mailroom.deliver(raw_mail(date), [NOTE])
    [note] = mailroom.notes()
    assert note["date"] == "2024-01-02T10:00:00+00:00"


def test_a_failure_is_one_line_without_the_message_or_the_sql(
    mailroom: Mailroom, caplog: pytest.LogCaptureFixture
) -> None:
    add_ann(mailroom)
    fail_inserts(mailroom.db, "note")
    caplog.set_level(logging.DEBUG, logger="crmmail")
    mailroom.deliver(raw_mail("Tue, 02 Jan 2024 10:00:00 +0000", SECRET, f"Body: {SECRET}"), [NOTE])

    [row] = mailroom.inbound()
    assert (row["status"], row["attempts"]) == ("dead", mailroom.settings.max_attempts)
    error = row["last_error"]
    assert "injected storage failure" in error and "in a database statement" in error
    for leak in (SECRET, "INSERT", "ann@example.com", "\n"):
        assert leak not in error
    worker_lines = [r for r in caplog.records if r.name == "crmmail.processor.worker"]
    failed = [r for r in worker_lines if "processing failed" in r.getMessage()]
    assert len(failed) == mailroom.settings.max_attempts
    assert all(r.levelno == logging.ERROR for r in failed)
    for record in caplog.records:
        line = record.getMessage()
        assert SECRET not in line and "INSERT" not in line and "\n" not in line, line
        assert record.exc_info is None, line  # no traceback at any level


class StopOnError(logging.Handler):
    """Sets ``stop`` at the first ERROR record: ``Worker.run`` then returns, no clock involved."""

    def __init__(self, stop: threading.Event) -> None:
        super().__init__(logging.ERROR)
        self.stop = stop

    def emit(self, record: logging.LogRecord) -> None:
        self.stop.set()


def test_the_worker_loop_logs_a_failing_database_in_one_line(
    mailroom: Mailroom, caplog: pytest.LogCaptureFixture
) -> None:
    add_ann(mailroom)
    entry = SpoolEntry(mailroom.account_id, "127.0.0.1:1", "test", "bob@corp.test", [NOTE], b"")
    with mailroom.db.transaction() as session:  # spooled directly: the claim is what fails
        InboundRepository(session).spool([entry])
    fail_updates(mailroom.db, "inbound_message")  # the claim is an UPDATE of the spool row
    caplog.set_level(logging.DEBUG, logger="crmmail")
    stop = threading.Event()
    handler = StopOnError(stop)
    logging.getLogger("crmmail.processor.worker").addHandler(handler)
    try:
        Worker(mailroom.db, mailroom.settings).run(stop)
    finally:
        logging.getLogger("crmmail.processor.worker").removeHandler(handler)
    for record in caplog.records:  # no traceback, no statement, at any level
        assert record.exc_info is None and "\n" not in record.getMessage()
        assert "UPDATE" not in record.getMessage() and "SELECT" not in record.getMessage()
    [error] = [r for r in caplog.records if r.levelno >= logging.ERROR]
    line = error.getMessage()
    assert line.startswith("worker: database unavailable (") and "injected storage" in line


# --- property: no header value makes a message dead ----------------------------------------------

ZONES = ["-0000", "+0000", "-1400", "+1400", "+9999", "-9959", "GMT", "UT", "EST", "XYZ", ""]
DAYS = st.one_of(st.integers(0, 40), st.integers(0, 10**12))
YEARS = st.one_of(st.sampled_from([1, 99, 1900, 1970, 2024, 9999]), st.integers(0, 10**12))
date_values = st.one_of(
    st.builds(
        "{}, {} {} {} {}:{}:{} {}".format,
        st.sampled_from(["Mon", "Fri", "Xyz", ""]),
        DAYS,
        st.sampled_from(["Jan", "Dec", "Foo", "13"]),
        YEARS,
        st.integers(0, 99),
        st.integers(0, 99),
        st.integers(0, 99),
        st.one_of(st.sampled_from(ZONES), st.from_regex(r"[+-][0-9]{4}", fullmatch=True)),
    ),
    st.text(st.characters(codec="utf-8", exclude_characters="\r\n"), max_size=80),
)
HEADER_NAMES = [
    "Date",
    "Resent-Date",
    "Received",
    "Subject",
    "From",
    "To",
    "Cc",
    "Reply-To",
    "Message-ID",
    "In-Reply-To",
    "References",
    "Content-Type",
    "Content-Disposition",
    "Content-Transfer-Encoding",
    "MIME-Version",
    "X-Anything",
]
header_values = st.text(st.characters(codec="utf-8", exclude_characters="\r\n"), max_size=200)


def spool_and_process(db: Database, settings: Settings, account_id: int, raw: bytes) -> None:
    """Spool ``raw`` to the note address with Ann a known contact (so a note is stored), work."""
    with db.transaction() as session:
        if not crm.CrmRepository(session, account_id).contacts_by_email(["ann@example.com"]):
            crm.add_contact(session, "acme", "ann@example.com", "Ann", ("mail.localhost",))
    entry = SpoolEntry(account_id, "127.0.0.1:1", "test", "bob@corp.test", [NOTE], raw)
    with db.transaction() as session:
        [inbound_id] = InboundRepository(session).spool([entry])
    Worker(db, settings).run_until_idle()
    with db.transaction() as session:
        row = InboundRepository(session).get(inbound_id)
        assert row is not None
        assert row.status in {"done", "ignored"}, row.last_error


PROPERTY = settings(
    max_examples=40,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@pytest.mark.timeout(300)
@PROPERTY
@given(date=date_values)
@example(date="Fri, 31 Dec 9999 23:59:59 -1400")
def test_no_date_makes_a_message_dead(
    db: Database, settings: Settings, acme: int, date: str
) -> None:
    spool_and_process(db, settings, acme, raw_mail(date))


@pytest.mark.timeout(300)
@PROPERTY
@given(name=st.sampled_from(HEADER_NAMES), value=header_values)
@example(name="Date", value="Fri, 31 Dec 9999 23:59:59 -1400")
def test_no_header_value_makes_a_message_dead(
    db: Database, settings: Settings, acme: int, name: str, value: str
) -> None:
    raw = f"{name}: {value}\r\n".encode("utf-8", "surrogateescape") + raw_mail(None)
    spool_and_process(db, settings, acme, raw)
