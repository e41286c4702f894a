"""The SMTP intake on loopback: who is accepted at RCPT, what DATA stores, and failures."""

import asyncio
import smtplib

import pytest
from sqlalchemy import func, select, text

from crmmail.config import Settings
from crmmail.services import accounts
from crmmail.smtpd import replies
from crmmail.smtpd.handler import IntakeHandler, SmtpHooks
from crmmail.smtpd.server import IntakeSMTP
from crmmail.storage.database import Database
from crmmail.storage.models import InboundMessage
from tests.faults import fail_inserts, heal
from tests.intake import message, running_intake, send, wire_bytes

# What smtplib makes of a source-routed address (``<@relay.test>``: it quotes only the route)
# is malformed for aiosmtpd. A real source route over a raw socket is stripped by aiosmtpd and
# delivered to our own address (RFC 5321 appendix C): see tests/smtpd/test_hostile.py.
AIOSMTPD_MALFORMED = "553 5.1.3 Error: malformed address"


def spooled(db: Database) -> list[InboundMessage]:
    with db.transaction() as session:
        return list(session.scalars(select(InboundMessage).order_by(InboundMessage.id)))


def reply(code_and_text: str) -> tuple[int, bytes]:
    code, _, text = code_and_text.partition(" ")
    return int(code), text.encode()


def test_aiosmtpd_sees_every_declared_hook(db: Database, settings: Settings) -> None:
    declared = {name for name in vars(SmtpHooks) if name.startswith("handle_")}
    assert declared == {"handle_RCPT", "handle_DATA", "handle_exception"}
    loop = asyncio.new_event_loop()
    try:
        protocol = IntakeSMTP(IntakeHandler(db, settings), set(), loop=loop)
        seen = set(protocol._handle_hooks)  # the names aiosmtpd will call
    finally:
        loop.close()
    assert {"RCPT", "DATA", "exception"} <= seen


def test_accepted_message_is_spooled_with_its_envelope(
    db: Database, settings: Settings, acme: int
) -> None:
    mail = message()
    with running_intake(db, settings) as port:
        send(port, mail, ["acme@mail.localhost"])
    [row] = spooled(db)
    assert row.account_id == acme
    assert row.status == "queued"
    assert row.mail_from == "bob@corp.test"
    assert row.rcpt_tos == ["acme@mail.localhost"]
    assert row.raw == wire_bytes(mail)
    assert row.peer.startswith("127.0.0.1:")
    assert row.size == len(row.raw)


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        ("user@gmail.com", replies.RELAY_DENIED),
        ("user%evil@mail.localhost", replies.UNKNOWN_ADDRESS),
        ('"a@b"@mail.localhost', replies.UNKNOWN_ADDRESS),
        ("user@[127.0.0.1]", replies.RELAY_DENIED),
        ("acme@mail.localhost.evil.test", replies.RELAY_DENIED),
        ("nobody@mail.localhost", replies.UNKNOWN_ADDRESS),
        ("acme+unknown@mail.localhost", replies.UNKNOWN_ADDRESS),
        ("acme+note@mail.localhost", replies.UNKNOWN_ADDRESS),
        ("evil!acme@mail.localhost", replies.UNKNOWN_ADDRESS),
        ("acme\x00@mail.localhost", replies.UNKNOWN_ADDRESS),
        ("ac\x01me@mail.localhost", replies.UNKNOWN_ADDRESS),
        ("@relay.test:acme@mail.localhost", AIOSMTPD_MALFORMED),
    ],
)
def test_refused_recipients(
    db: Database, settings: Settings, acme: int, address: str, expected: str
) -> None:
    with running_intake(db, settings) as port, smtplib.SMTP("127.0.0.1", port) as client:
        client.ehlo()
        client.mail("bob@corp.test")
        code, text = client.rcpt(address)
        assert (code, text) == reply(expected)
        client.rset()
    assert spooled(db) == []


@pytest.mark.parametrize(
    "address", ["ACME@MAIL.LOCALHOST", "Acme+Contact@Mail.Localhost", "AcMe+LeAd@mail.LOCALHOST"]
)
def test_addresses_are_case_insensitive(
    db: Database, settings: Settings, acme: int, address: str
) -> None:
    with running_intake(db, settings) as port:
        send(port, message(), [address])
    assert [row.rcpt_tos for row in spooled(db)] == [[address]]


def test_a_renamed_accounts_old_address_is_refused(
    db: Database, settings: Settings, acme: int
) -> None:
    with db.transaction() as session:
        accounts.rename_account(session, "acme", "acme-corp")
    with running_intake(db, settings) as port:
        with pytest.raises(smtplib.SMTPRecipientsRefused) as refused:
            send(port, message(), ["acme@mail.localhost"])
        assert refused.value.recipients["acme@mail.localhost"] == reply(replies.UNKNOWN_ADDRESS)
        send(port, message(), ["acme-corp+lead@mail.localhost"])
    assert [row.rcpt_tos for row in spooled(db)] == [["acme-corp+lead@mail.localhost"]]


def test_at_most_100_recipients(db: Database, settings: Settings, acme: int) -> None:
    with running_intake(db, settings) as port, smtplib.SMTP("127.0.0.1", port) as client:
        client.ehlo()
        client.mail("bob@corp.test")
        for _ in range(100):
            assert client.rcpt("acme@mail.localhost")[0] == 250
        assert client.rcpt("acme+lead@mail.localhost") == reply(replies.TOO_MANY_RECIPIENTS)
        assert client.data(message().as_bytes())[0] == 250
    [row] = spooled(db)
    assert len(row.rcpt_tos) == 100


def test_size_is_advertised_and_enforced(db: Database, acme: int, database_url: str) -> None:
    small = Settings(database_url=database_url, max_message_size=10_000)
    with running_intake(db, small) as port, smtplib.SMTP("127.0.0.1", port) as client:
        client.ehlo()
        assert client.esmtp_features["size"] == "10000"
        code, _ = client.mail("bob@corp.test", ["SIZE=20000"])
        assert code == 552
        client.rset()
        client.mail("bob@corp.test")
        client.rcpt("acme@mail.localhost")
        code, _ = client.data(wire_bytes(message(body=("x" * 70 + "\n") * 200)))
        assert code == 552
    assert spooled(db) == []


def test_one_message_to_two_accounts_is_spooled_once_per_account(
    db: Database, settings: Settings, acme: int
) -> None:
    with db.transaction() as session:
        other = accounts.create_account(session, "globex", "Globex").id
    rcpt = ["acme@mail.localhost", "globex+lead@mail.localhost", "acme+contact@mail.localhost"]
    with running_intake(db, settings) as port:
        send(port, message(), rcpt)
    rows = spooled(db)
    assert {row.account_id: row.rcpt_tos for row in rows} == {
        acme: ["acme@mail.localhost", "acme+contact@mail.localhost"],
        other: ["globex+lead@mail.localhost"],
    }


def test_a_message_for_two_accounts_is_stored_for_both_or_for_none(
    db: Database, settings: Settings, acme: int
) -> None:
    with db.transaction() as session:
        other = accounts.create_account(session, "globex", "Globex").id
    fail_inserts(db, "inbound_message", f"new.account_id = {other}")
    with running_intake(db, settings) as port, smtplib.SMTP("127.0.0.1", port) as client:
        client.ehlo()
        client.mail("bob@corp.test")
        client.rcpt("acme@mail.localhost")
        client.rcpt("globex@mail.localhost")
        assert client.data(wire_bytes(message())) == reply(replies.TEMPORARY_FAILURE)
    assert spooled(db) == []


def test_storage_failure_during_data_answers_451_and_stores_nothing(
    db: Database, settings: Settings, acme: int
) -> None:
    fail_inserts(db, "inbound_message")
    with running_intake(db, settings) as port, smtplib.SMTP("127.0.0.1", port) as client:
        client.ehlo()
        client.mail("bob@corp.test")
        client.rcpt("acme@mail.localhost")
        client.rcpt("acme+lead@mail.localhost")
        code, text = client.data(message().as_bytes())
        assert (code, text) == reply(replies.TEMPORARY_FAILURE)
        assert b"injected" not in text
        heal(db, "inbound_message")
        # The session goes on: the client's retry is accepted once storage is back.
        client.mail("bob@corp.test")
        client.rcpt("acme@mail.localhost")
        assert client.data(message().as_bytes())[0] == 250
    with db.transaction() as session:
        assert session.scalar(select(func.count()).select_from(InboundMessage)) == 1


def test_a_failing_recipient_lookup_answers_451_then_recovers(
    db: Database, settings: Settings, acme: int
) -> None:
    with db.transaction() as session:
        session.execute(text("ALTER TABLE account RENAME TO account_away"))
    with running_intake(db, settings) as port, smtplib.SMTP("127.0.0.1", port) as client:
        client.ehlo()
        client.mail("bob@corp.test")
        assert client.rcpt("acme@mail.localhost") == reply(replies.TEMPORARY_FAILURE)
        with db.transaction() as session:
            session.execute(text("ALTER TABLE account_away RENAME TO account"))
        assert client.rcpt("acme@mail.localhost") == reply(replies.RCPT_OK)


@pytest.mark.parametrize(
    ("helo", "mail_from"),
    [("caf\xe9.test", "bob@corp.test"), ("a\x00b.test", "b\xe9b@corp.test")],
)
def test_eight_bit_and_nul_envelope_text_is_stored_cleaned(
    db: Database, settings: Settings, acme: int, helo: str, mail_from: str
) -> None:
    with running_intake(db, settings) as port, smtplib.SMTP("127.0.0.1", port) as client:
        client.command_encoding = "latin-1"  # send the raw bytes, as a broken client would
        client.ehlo(helo)
        assert client.mail(mail_from)[0] == 250
        assert client.rcpt("acme@mail.localhost")[0] == 250
        assert client.data(wire_bytes(message()))[0] == 250
    [row] = spooled(db)
    for text_value in (row.helo, row.mail_from):
        assert "\x00" not in text_value
        text_value.encode("utf-8", "strict")
    assert "\ufffd" in row.helo + row.mail_from


def test_lines_longer_than_rfc_5321_are_accepted_intact(
    db: Database, settings: Settings, acme: int
) -> None:
    mail = message()
    raw = wire_bytes(mail).replace(b"Hello,", b"<p>" + b"x" * 20_000 + b"</p> Hello,")
    with running_intake(db, settings) as port:
        send(port, raw, ["acme@mail.localhost"])
    [row] = spooled(db)
    assert row.raw == raw
