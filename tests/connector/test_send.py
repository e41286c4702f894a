"""Sending through the box's SMTP server, with exactly one copy in its Sent folder."""

import random
from collections.abc import Iterator
from datetime import timedelta
from email import message_from_bytes

import pytest

from crmmail.connector.credentials import load_key_ring
from crmmail.connector.scheduler import Schedule, SyncScheduler
from crmmail.errors import UserInputError
from crmmail.services.emails import SendRequest, SentNotRecorded, send_email
from crmmail.storage.base import utcnow
from crmmail.storage.database import Database
from crmmail.storage.repositories.mailboxes import MailboxRepository
from tests.connector.conftest import PostOffice
from tests.faults import fail_inserts, heal
from tests.submission import running_submission
from tests.tlsca import TestCA


def _request(box_id: int, sender: str, **changes: object) -> SendRequest:
    request = SendRequest(
        mailbox_id=box_id,
        as_user=sender,
        to=["ann@customer.test"],
        cc=[],
        subject="Quote for 100 widgets",
        body="Hello Ann",
    )
    return SendRequest(**{**request.__dict__, **changes})  # type: ignore[arg-type]


def _send(post: PostOffice, box_id: int, **changes: object) -> dict[str, object]:
    return send_email(post.db, post.settings, _request(box_id, post.email, **changes))


def _sent_copies(post: PostOffice, message_id: str) -> int:
    with post.dovecot.login(post.email) as client:
        client.select_folder("Sent", readonly=True)
        return len(client.search(["HEADER", "Message-ID", message_id]))


def test_send_appends_the_sent_copy_when_the_provider_does_not(post: PostOffice) -> None:
    ann = post.add_contact("ann@customer.test", "Ann Lee")
    box = post.connect()

    sent = _send(post, box["id"])

    assert sent["sent_copy"] == "appended"
    [received] = post.submission.messages
    assert list(received.rcpt_tos) == ["ann@customer.test"] and received.login == post.email
    header = message_from_bytes(received.raw)
    assert header["Message-ID"].strip("<>") == sent["message_id"]
    assert _sent_copies(post, f"<{sent['message_id']}>") == 1
    assert sent["folder"] == "sent" and sent["contact_ids"] == [ann]
    assert [(n["entity_type"], n["entity_id"]) for n in post.notes()] == [("contact", ann)]


@pytest.fixture
def gmail_like(post: PostOffice, test_ca: TestCA) -> Iterator[PostOffice]:
    """A submission server that files its own Sent copy, as Gmail does."""

    def file_copy(login: str, raw: bytes) -> None:
        post.dovecot.append(login, "Sent", raw, flags=[b"\\Seen"])

    users = {post.email: post.password}
    with running_submission(test_ca, users, implicit_tls=True, sent_copy=file_copy) as server:
        post.submission = server
        yield post


def test_send_does_not_duplicate_the_copy_a_provider_filed(gmail_like: PostOffice) -> None:
    post = gmail_like
    box = post.connect()

    sent = _send(post, box["id"])

    assert sent["sent_copy"] == "found"
    assert _sent_copies(post, f"<{sent['message_id']}>") == 1


def test_sync_recognises_our_own_sent_copy(post: PostOffice) -> None:
    box = post.connect()
    post.sync(box["id"])
    sent = _send(post, box["id"])

    result = post.sync(box["id"])

    assert result.report.imported == 0 and result.report.known == 1
    [email] = post.emails()
    assert email["id"] == sent["id"]


@pytest.mark.parametrize(
    "field, value",
    [
        ("subject", "Hi\r\nBcc: everyone@victim.test"),
        ("subject", "Hi\nX-Injected: 1"),
        ("subject", "Hi\u2028X-Injected: 1"),
        ("to", ["ann@customer.test\r\nBcc: x@victim.test"]),
        ("cc", ["bob@corp.test\nBcc: x@victim.test"]),
        ("as_user", "x@y.test\r\nBcc: z@victim.test"),
    ],
)
def test_line_breaks_in_headers_are_refused(post: PostOffice, field: str, value: object) -> None:
    box = post.connect()
    with pytest.raises(UserInputError, match=r"line break|invalid email"):
        _send(post, box["id"], **{field: value})
    assert post.submission.messages == []
    assert post.emails() == []


def test_html_body_goes_out_with_a_text_alternative(post: PostOffice) -> None:
    box = post.connect()

    _send(post, box["id"], body="<p>Hello <b>Ann</b></p>", is_html=True)

    message = message_from_bytes(post.submission.messages[0].raw)
    types = [part.get_content_type() for part in message.walk()]
    assert types == ["multipart/alternative", "text/plain", "text/html"]


def test_a_personal_box_sends_only_as_its_owner(post: PostOffice) -> None:
    box = post.connect()
    with pytest.raises(UserInputError, match="may not send from"):
        _send(post, box["id"], as_user="me@acme.test")
    assert post.submission.messages == []


def test_a_wrong_smtp_password_sends_nothing(post: PostOffice) -> None:
    box = post.connect()
    post.submission.users[post.email] = "changed"
    with pytest.raises(UserInputError, match=r"authentication failed.*nothing was sent"):
        _send(post, box["id"])
    assert post.emails() == []


def test_a_sent_copy_that_could_not_be_filed_is_filed_by_a_later_sync(post: PostOffice) -> None:
    box = post.connect()
    post.sync(box["id"])
    with post.db.transaction() as session:  # a sync holds the box while we send
        held = MailboxRepository(session).claim(box["id"], utcnow(), timedelta(minutes=5))
    assert held is not None
    impatient = post.settings.model_copy(update={"mail_timeout": 0.5})

    sent = send_email(post.db, impatient, _request(box["id"], post.email))

    assert sent["sent_copy"] == "pending" and _sent_copies(post, f"<{sent['message_id']}>") == 0
    with post.db.transaction() as session:
        MailboxRepository(session).release(box["id"], held[1])
    later = utcnow() + timedelta(minutes=6)
    schedule = Schedule(900, 1800, random.Random(1))
    keys = load_key_ring(post.settings)
    scheduler = SyncScheduler(post.db, post.settings, keys, schedule, lambda: later)

    result = scheduler.sync_mailbox(box["id"])

    assert result.report.sent_copies_filed == 1
    assert _sent_copies(post, f"<{sent['message_id']}>") == 1
    assert post.sync(box["id"]).report.known == 1  # the filed copy is our row, now placed
    assert len(post.emails()) == 1


def test_mail_sent_but_not_recorded_says_so_and_is_filed(post: PostOffice, db: Database) -> None:
    box = post.connect()
    fail_inserts(db, "email")

    with pytest.raises(SentNotRecorded, match=r"sent as <.*>, but the CRM could not record it"):
        _send(post, box["id"])

    [received] = post.submission.messages
    message_id = message_from_bytes(received.raw)["Message-ID"]
    assert _sent_copies(post, message_id) == 1
    heal(db, "email")
    post.sync(box["id"])
    assert [email["folder"] for email in post.emails()] == ["sent"]
