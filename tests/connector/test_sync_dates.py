"""Dates of synced mail (issue 11, items 1 and 3) against a real Dovecot.

``-0000`` (what Python's ``email.utils.formatdate`` writes; RFC 5322: UTC) and a Date without a
zone are UTC, for the email and for its thread's ``last_date``; a Date that cannot be written in
UTC is taken as absent and stops neither the message nor the rest of the box (it used to fail
every sync of the box).
"""

from email.utils import formatdate

from crmmail.services import mail_views
from tests.connector.conftest import PostOffice


def raw_mail(subject: str, date: str) -> bytes:
    return (
        f"From: Ann Lee <ann@customer.test>\r\nTo: someone@example.com\r\nSubject: {subject}\r\n"
        f"Date: {date}\r\nMessage-ID: <{subject.replace(' ', '-')}@customer.test>\r\n\r\n"
        "Hello.\r\n"
    ).encode()


def threads(post: PostOffice) -> dict[str, str | None]:
    with post.db.read() as session:
        listed = mail_views.list_threads(session, "acme", post.email)
    return {thread["subject"]: thread["last_date"] for thread in listed}


def test_minus_zero_and_zone_less_dates_are_utc(post: PostOffice) -> None:
    post.deliver(raw_mail("minus zero", formatdate(1704189600.0)))  # "... 10:00:00 -0000"
    post.deliver(raw_mail("no zone", "Tue, 02 Jan 2024 11:00:00"))
    box = post.connect()

    assert post.sync(box["id"]).report.imported == 2

    dates = {email["subject"]: email["date"] for email in post.emails()}
    assert dates == {
        "minus zero": "2024-01-02T10:00:00+00:00",
        "no zone": "2024-01-02T11:00:00+00:00",
    }
    assert threads(post) == {
        "minus zero": "2024-01-02T10:00:00+00:00",
        "no zone": "2024-01-02T11:00:00+00:00",
    }


def test_a_date_beyond_utc_stops_nothing(post: PostOffice) -> None:
    post.deliver(raw_mail("far future", "Fri, 31 Dec 9999 23:59:59 -1400"))
    post.deliver(raw_mail("ordinary", "Tue, 02 Jan 2024 10:00:00 +0000"))
    box = post.connect()

    result = post.sync(box["id"])

    assert (result.status, result.report.imported, result.report.quarantined) == ("active", 2, 0)
    dates = {email["subject"]: email["date"] for email in post.emails()}
    assert sorted(dates) == ["far future", "ordinary"]
    assert dates["ordinary"] == "2024-01-02T10:00:00+00:00"
