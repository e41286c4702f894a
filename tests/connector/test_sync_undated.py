"""Synced mail without a usable Date is dated by its arrival on the server (issue 11, items 1
and 3), against a real Dovecot.

A missing Date, one that cannot be written in UTC and one that cannot be read at all are taken
as absent; the email, its note and its thread's ``last_date`` then take the message's
INTERNALDATE, in UTC whatever the server's and our own zone. Mail that carries a Date keeps it,
and an import whose mail is all dated asks the server for no INTERNALDATE.
"""

import os
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from imapclient import IMAPClient

from crmmail.services import mail_views
from tests.connector.conftest import PostOffice, mail

WINTER = datetime(2024, 1, 15, 10, 0, tzinfo=timezone(timedelta(hours=5, minutes=30)))
SUMMER = datetime(2024, 7, 15, 10, 0, tzinfo=timezone(timedelta(hours=-7)))
# A local zone with summer time: IMAPClient's default turns an INTERNALDATE into local time with
# today's offset, which is an hour off for a date on the other side of a change.
ZONE_WITH_SUMMER_TIME = "EST5EDT,M3.2.0,M11.1.0"


def raw_mail(subject: str, date: str | None) -> bytes:
    header = f"Date: {date}\r\n" if date is not None else ""
    return (
        f"From: Ann Lee <ann@customer.test>\r\nTo: someone@example.com\r\nSubject: {subject}\r\n"
        f"{header}Message-ID: <{subject.replace(' ', '-').replace(':', '')}@customer.test>\r\n"
        "\r\nHello.\r\n"
    ).encode()


def iso(when: datetime) -> str:
    return when.astimezone(UTC).isoformat()


def dates(post: PostOffice) -> dict[str, str | None]:
    return {email["subject"]: email["date"] for email in post.emails()}


def threads(post: PostOffice) -> dict[str, str | None]:
    with post.db.read() as session:
        listed = mail_views.list_threads(session, "acme", post.email)
    return {thread["subject"]: thread["last_date"] for thread in listed}


@pytest.fixture
def local_zone_with_summer_time() -> Iterator[None]:
    before = os.environ.get("TZ")
    os.environ["TZ"] = ZONE_WITH_SUMMER_TIME
    time.tzset()
    try:
        yield
    finally:
        if before is None:
            del os.environ["TZ"]
        else:
            os.environ["TZ"] = before
        time.tzset()


@pytest.fixture
def internaldate_fetches(monkeypatch: pytest.MonkeyPatch) -> list[list[int]]:
    """The UIDs of each FETCH that asks for INTERNALDATE (IMAPClient's own, passed through)."""
    asked: list[list[int]] = []
    fetch = IMAPClient.fetch

    def recording(client: IMAPClient, messages: Any, data: Any, modifiers: Any = None) -> Any:
        if any(b"INTERNALDATE" in bytes(item) for item in data):
            asked.append(sorted(int(uid) for uid in messages))
        return fetch(client, messages, data, modifiers)

    monkeypatch.setattr(IMAPClient, "fetch", recording)
    return asked


@pytest.mark.usefixtures("local_zone_with_summer_time")
def test_first_import_dates_undated_mail_by_its_arrival(post: PostOffice) -> None:
    append = post.dovecot.append
    append(
        post.email,
        "INBOX",
        raw_mail("Quote", "Wed, 10 Jan 2024 10:00:00 +0000"),
        internal_date=datetime(2024, 1, 10, 10, 5, tzinfo=UTC),
    )
    append(post.email, "INBOX", raw_mail("Re: Quote", None), internal_date=WINTER)
    append(
        post.email,
        "INBOX",
        raw_mail("beyond utc", "Fri, 31 Dec 9999 23:59:59 -1400"),
        internal_date=SUMMER,
    )
    append(
        post.email,
        "INBOX",
        raw_mail("garbage", "the day after tomorrow"),
        internal_date=WINTER + timedelta(days=1),
    )
    append(
        post.email,
        "INBOX",
        raw_mail("ordinary", "Thu, 1 Feb 2024 09:00:00 +0100"),
        internal_date=datetime(2024, 2, 2, 12, 0, tzinfo=UTC),
    )
    post.add_contact("ann@customer.test", "Ann Lee")
    box = post.connect()
    # Three batches: the pipeline's reader thread and parser processes are at work.
    settings = post.settings.model_copy(update={"import_days": 36500, "import_batch": 2})

    result = post.sync(box["id"], settings)

    assert (result.status, result.report.imported, result.report.quarantined) == ("active", 5, 0)
    assert dates(post) == {
        "Quote": "2024-01-10T10:00:00+00:00",
        "Re: Quote": "2024-01-15T04:30:00+00:00",
        "beyond utc": "2024-07-15T17:00:00+00:00",
        "garbage": "2024-01-16T04:30:00+00:00",
        "ordinary": "2024-02-01T08:00:00+00:00",
    }
    assert threads(post) == {
        "Quote": "2024-01-15T04:30:00+00:00",  # the undated reply is its latest message
        "beyond utc": "2024-07-15T17:00:00+00:00",
        "garbage": "2024-01-16T04:30:00+00:00",
        "ordinary": "2024-02-01T08:00:00+00:00",
    }
    notes = {note["subject"]: note["date"] for note in post.notes()}
    assert notes["Re: Quote"] == "2024-01-15T04:30:00+00:00"
    assert notes["beyond utc"] == "2024-07-15T17:00:00+00:00"


def test_later_syncs_and_a_new_uidvalidity_date_undated_mail_by_its_arrival(
    post: PostOffice,
) -> None:
    post.deliver(mail("first"))
    box = post.connect()
    post.sync(box["id"])
    post.dovecot.append(post.email, "INBOX", raw_mail("later", None), internal_date=SUMMER)

    assert post.sync(box["id"]).report.imported == 1
    assert dates(post)["later"] == iso(SUMMER)
    assert threads(post)["later"] == iso(SUMMER)

    post.dovecot.set_uidvalidity(post.email, "INBOX", 5150)
    post.dovecot.append(
        post.email, "INBOX", raw_mail("after the change", "31 Feb 2024 10:00"), internal_date=WINTER
    )

    result = post.sync(box["id"])

    assert (result.report.remapped, result.report.imported) == (2, 1)
    assert dates(post)["after the change"] == iso(WINTER)
    assert threads(post)["after the change"] == iso(WINTER)


def test_internaldate_is_asked_only_for_undated_mail(
    post: PostOffice, internaldate_fetches: list[list[int]]
) -> None:
    for n in range(3):
        post.deliver(mail(f"dated {n}"))
    box = post.connect()

    assert post.sync(box["id"]).report.imported == 3
    assert internaldate_fetches == []

    post.deliver(mail("dated 3"))
    undated = post.dovecot.append(
        post.email, "INBOX", raw_mail("undated", None), internal_date=SUMMER
    )

    assert post.sync(box["id"]).report.imported == 2
    assert internaldate_fetches == [[undated]]
    assert dates(post)["undated"] == iso(SUMMER)
