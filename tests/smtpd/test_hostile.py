"""Hostile SMTP clients against the real intake on loopback: smuggling, relay probes, floods.

Sessions are byte-exact over a raw socket (``smtplib`` would normalise line ends). Every test
checks both what the client was told and what the spool holds afterwards.
"""

import re
import socket

import pytest
from aiosmtpd.smtp import BOGUS_LIMIT
from sqlalchemy import select

from crmmail.config import Settings
from crmmail.services.inbound import list_inbound
from crmmail.smtpd import replies
from crmmail.storage.database import Database
from crmmail.storage.models import InboundMessage
from tests.intake import message, running_intake, send

# aiosmtpd's own replies (it answers these before our handler is called).
MAIL_OK = "250 OK"
START_DATA = "354 End data with <CR><LF>.<CR><LF>"
NEED_RCPT = "503 Error: need RCPT command"
BYE = "221 Bye"
MALFORMED = "553 5.1.3 Error: malformed address"
RCPT_SYNTAX = "501 Syntax: RCPT TO: <address> [SP <mail-parameters>]"
TOO_MANY_BOGUS = "502 5.5.1 Too many unrecognized commands, goodbye."

SOCKET_TIMEOUT = 10.0
# Envelope text is stored, listed and may end up in headers: no C0 control character or DEL.
CONTROL = re.compile("[\x00-\x1f\x7f]")


class RawSession:
    """A byte-exact SMTP client: sends exactly the bytes given, reads replies line by line."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=SOCKET_TIMEOUT)
        self.buffer = b""
        self.greeting = self.reply()

    def __enter__(self) -> "RawSession":
        return self

    def __exit__(self, *exc: object) -> None:
        self.sock.close()

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def command(self, line: bytes) -> str:
        self.send(line + b"\r\n")
        return self.reply()

    def _line(self) -> bytes | None:
        while b"\r\n" not in self.buffer:
            chunk = self.sock.recv(65536)
            if not chunk:
                return None
            self.buffer += chunk
        line, _, self.buffer = self.buffer.partition(b"\r\n")
        return line

    def reply(self) -> str:
        """One (possibly multi-line) reply, lines joined by ``\\n``; fails on hang-up."""
        found = self.reply_or_none()
        assert found is not None, "server closed the connection"
        return found

    def reply_or_none(self) -> str | None:
        lines: list[str] = []
        while True:
            line = self._line()
            if line is None:
                assert not lines and not self.buffer, f"cut mid-reply: {lines} {self.buffer!r}"
                return None
            lines.append(line.decode())
            if line[3:4] != b"-":
                return "\n".join(lines)

    def replies_until_closed(self) -> list[str]:
        found: list[str] = []
        while (reply := self.reply_or_none()) is not None:
            found.append(reply)
        return found

    def start(self, mail_from: bytes = b"bob@corp.test") -> None:
        assert self.command(b"EHLO client.test").startswith("250-")
        assert self.command(b"MAIL FROM:<" + mail_from + b">") == MAIL_OK


def spooled(db: Database) -> list[InboundMessage]:
    with db.transaction() as session:
        return list(session.scalars(select(InboundMessage).order_by(InboundMessage.id)))


def assert_clean_envelope(row: InboundMessage) -> None:
    for value in (row.helo, row.mail_from, *row.rcpt_tos):
        assert not CONTROL.search(value), value


def dot_unstuffed(data: bytes) -> bytes:
    """What DATA should store for ``data`` (RFC 5321 4.5.2: only CRLF ends a line)."""
    lines = re.split(rb"(?<=\r\n)", data)
    return b"".join(line[1:] if line.startswith(b".") else line for line in lines)


# --- 1. SMTP smuggling ------------------------------------------------------------------------

# End-of-data look-alikes from the 2023 SMTP smuggling research (SEC Consult) and the Postfix,
# Sendmail and Exim advisories. Only <CR><LF>.<CR><LF> ends DATA; each of these is body text.
SMUGGLING_ENDINGS = [
    b"\n.\n",
    b"\n.\r\n",
    b"\r.\r",
    b"\r.\r\n",
    b"\r\n.\n",
    b"\r\n.\r",
    b"\n.\r",
    b"\r.\n",
    b"\r\n\x00.\r\n",
    b"\r\n.\x00\r\n",
    b"\r\n.\r\r\n",
    b"\r\r\n.\r\r\n",
    b"\n\n.\n\n",
    b"\r\n .\r\n",
    b"\r\n..\r\n",
]


def smuggled_session(ending: bytes, newline: bytes) -> tuple[bytes, bytes]:
    """A whole pipelined session smuggling a second message; and the DATA body sent."""
    second = newline.join(
        [
            b"MAIL FROM:<evil@other.test>",
            b"RCPT TO:<acme+lead@mail.localhost>",
            b"DATA",
            b"From: evil@other.test",
            b"Subject: smuggled",
            b"",
            b"smuggled body",
        ]
    )
    body = b"From: bob@corp.test\r\nSubject: first\r\n\r\nfirst body" + ending + second + b"\r\n"
    session = (
        b"EHLO client.test\r\n"
        b"MAIL FROM:<bob@corp.test>\r\n"
        b"RCPT TO:<acme@mail.localhost>\r\n"
        b"DATA\r\n" + body + b".\r\nQUIT\r\n"
    )
    return session, body


@pytest.mark.parametrize(
    ("ending", "newline"),
    [(ending, b"\r\n") for ending in SMUGGLING_ENDINGS] + [(b"\n.\n", b"\n"), (b"\r.\r", b"\r")],
)
def test_smuggled_end_of_data_makes_one_message_not_two(
    db: Database, settings: Settings, acme: int, ending: bytes, newline: bytes
) -> None:
    session, body = smuggled_session(ending, newline)
    with running_intake(db, settings) as port, RawSession(port) as client:
        client.send(session)
        answers = client.replies_until_closed()
    assert answers[0].startswith("250-")  # EHLO; the greeting was read on connecting
    assert answers[1:] == [MAIL_OK, replies.RCPT_OK, START_DATA, replies.QUEUED, BYE]
    with db.transaction() as db_session:
        listed = list_inbound(db_session, "acme")
    assert [(row["mail_from"], row["rcpt_tos"]) for row in listed] == [
        ("bob@corp.test", ["acme@mail.localhost"])
    ]
    [row] = spooled(db)
    assert row.raw == dot_unstuffed(body)  # the smuggled "message" is text of the first
    assert b"smuggled body" in row.raw
    assert_clean_envelope(row)


# --- 2. Open relay ----------------------------------------------------------------------------

# (RCPT argument as sent, the replies expected). Classic relay-test forms (the ones
# rlytest and the ORDB/MAPS test suites send), IP literals, look-alike domains, and control
# characters. A CR LF inside the address splits it into two commands, both refused. A source
# route is ignored (RFC 5321 appendix C): the final mailbox alone decides.
RELAY_PROBES: list[tuple[bytes, list[str]]] = [
    (b"user%other.test@mail.localhost", [replies.UNKNOWN_ADDRESS]),
    (b"acme%other.test@mail.localhost", [replies.UNKNOWN_ADDRESS]),
    (b"other.test!user@mail.localhost", [replies.UNKNOWN_ADDRESS]),
    (b'"user@other.test"@mail.localhost', [replies.UNKNOWN_ADDRESS]),
    (b'"acme\\"@other.test"@mail.localhost', [replies.UNKNOWN_ADDRESS]),
    (b"@mail.localhost:user@other.test", [replies.RELAY_DENIED]),
    (b"@mail.localhost,@other.test:user@other.test", [replies.RELAY_DENIED]),
    (b"user@[127.0.0.1]", [replies.RELAY_DENIED]),
    (b"acme@[127.0.0.1]", [replies.RELAY_DENIED]),
    (b"acme@[mail.localhost]", [replies.RELAY_DENIED]),
    (b"acme@mail.localhost.other.test", [replies.RELAY_DENIED]),
    (b"acme@other.test", [replies.RELAY_DENIED]),
    (b"acme%other.test", [replies.RELAY_DENIED]),
    (b"acme", [replies.RELAY_DENIED]),
    (b"acme@mail.local\xc4\xb1host", [replies.RELAY_DENIED]),  # dotless i
    (b"acme@mail.localhost@other.test", [MALFORMED]),
    (b"acme@mail.localhost:25", [RCPT_SYNTAX]),
    (b"acme@mail.localhost>,<user@other.test", [RCPT_SYNTAX]),
    (b"acme\x00@mail.localhost", [replies.UNKNOWN_ADDRESS]),
    (b"acme@mail.localhost\x00", [replies.RELAY_DENIED]),
    (b"ac\x01me@mail.localhost", [replies.UNKNOWN_ADDRESS]),
    (b"acme\x7f@mail.localhost", [replies.UNKNOWN_ADDRESS]),
    (b"acme\r@mail.localhost", [replies.UNKNOWN_ADDRESS]),
    (
        b"acme\r\n@mail.localhost",
        [replies.RELAY_DENIED, '500 Error: command "@MAIL.LOCALHOST>" not recognized'],
    ),
]


@pytest.mark.parametrize(("address", "expected"), RELAY_PROBES)
def test_relay_probes_are_refused_and_nothing_is_spooled(
    db: Database, settings: Settings, acme: int, address: bytes, expected: list[str]
) -> None:
    with running_intake(db, settings) as port, RawSession(port) as client:
        client.start()
        client.send(b"RCPT TO:<" + address + b">\r\n")
        assert [client.reply() for _ in expected] == expected
        assert client.command(b"DATA") == NEED_RCPT  # no recipient was taken
        assert client.command(b"QUIT") == BYE
    assert spooled(db) == []


@pytest.mark.parametrize(
    ("address", "stored"),
    [
        (b"acme@mail.localhost", "acme@mail.localhost"),
        (b"ACME+lead@Mail.Localhost", "ACME+lead@Mail.Localhost"),
        # aiosmtpd drops the route; delivering to our own final mailbox is not relaying.
        (b"@other.test:acme@mail.localhost", "acme@mail.localhost"),
    ],
)
def test_our_own_addresses_are_accepted(
    db: Database, settings: Settings, acme: int, address: bytes, stored: str
) -> None:
    with running_intake(db, settings) as port, RawSession(port) as client:
        client.start()
        assert client.command(b"RCPT TO:<" + address + b">") == replies.RCPT_OK
        assert client.command(b"DATA") == START_DATA
        assert client.command(b"Subject: hi\r\n\r\nhello\r\n.") == replies.QUEUED
    [row] = spooled(db)
    assert (row.account_id, row.rcpt_tos) == (acme, [stored])


@pytest.mark.parametrize(
    ("helo", "mail_from", "rcpt"),
    [
        (b"a\rb.test", b"bob@corp.test", b"acme@mail.localhost"),
        (b"a\x0bb\x1b[31m.test", b"b\rob@corp.test", b"acme@mail.localhost\r"),
        (b"a\x00b.test", b"b\x00ob\x7f@corp.test\x0b", b"acme@mail.localhost\t"),
        (b"a\tb.test", b"bob\x1f@corp.test", b"acme(\r)@mail.localhost"),
    ],
)
def test_control_characters_never_reach_the_stored_envelope(
    db: Database, settings: Settings, acme: int, helo: bytes, mail_from: bytes, rcpt: bytes
) -> None:
    """aiosmtpd passes a bare CR (and other controls) through in HELO and MAIL FROM."""
    with running_intake(db, settings) as port, RawSession(port) as client:
        assert client.command(b"EHLO " + helo).startswith("250-")
        assert client.command(b"MAIL FROM:<" + mail_from + b">") == MAIL_OK
        assert client.command(b"RCPT TO:<" + rcpt + b">") == replies.RCPT_OK
        assert client.command(b"DATA") == START_DATA
        assert client.command(b"Subject: hi\r\n\r\nhello\r\n.") == replies.QUEUED
    [row] = spooled(db)
    assert_clean_envelope(row)
    assert row.rcpt_tos == ["acme@mail.localhost"]
    assert "\ufffd" in row.helo + row.mail_from  # marked, not silently dropped


# --- 3. Floods --------------------------------------------------------------------------------


def test_a_flood_of_unknown_commands_ends_that_session_only(
    db: Database, settings: Settings, acme: int
) -> None:
    flood = b"".join(b"XYZZY%d\r\n" % n for n in range(50))
    with running_intake(db, settings) as port, RawSession(port) as other:
        other.start()  # a well-behaved client, mid-transaction during the flood
        with RawSession(port) as flooder:
            assert flooder.command(b"EHLO flood.test").startswith("250-")
            flooder.send(flood)
            answers = flooder.replies_until_closed()  # the server hangs up
        assert answers == [
            f'500 Error: command "XYZZY{n}" not recognized' for n in range(BOGUS_LIMIT - 1)
        ] + [TOO_MANY_BOGUS]
        assert other.command(b"RCPT TO:<acme@mail.localhost>") == replies.RCPT_OK
        assert other.command(b"DATA") == START_DATA
        assert other.command(b"Subject: hi\r\n\r\nhello\r\n.") == replies.QUEUED
        send(port, message(), ["acme@mail.localhost"])  # and a new client is served
    assert len(spooled(db)) == 2


def test_a_flood_of_unknown_recipients_is_refused_and_others_are_served(
    db: Database, settings: Settings, acme: int
) -> None:
    """Refused recipients do not count towards ``max_recipients`` and never end the session."""
    count = 200
    flood = b"".join(b"RCPT TO:<nobody%d@mail.localhost>\r\n" % n for n in range(count))
    with running_intake(db, settings) as port, RawSession(port) as flooder:
        flooder.start(b"harvest@other.test")
        flooder.send(flood)  # pipelined: the server works through it while others connect
        send(port, message(), ["acme+contact@mail.localhost"])
        answers = [flooder.reply() for _ in range(count)]
        assert answers == [replies.UNKNOWN_ADDRESS] * count
        assert flooder.command(b"RCPT TO:<acme@mail.localhost>") == replies.RCPT_OK
        assert flooder.command(b"DATA") == START_DATA
        assert flooder.command(b"Subject: hi\r\n\r\nhello\r\n.") == replies.QUEUED
        assert flooder.command(b"QUIT") == BYE
    assert [(row.mail_from, row.rcpt_tos) for row in spooled(db)] == [
        ("bob@corp.test", ["acme+contact@mail.localhost"]),
        ("harvest@other.test", ["acme@mail.localhost"]),
    ]
