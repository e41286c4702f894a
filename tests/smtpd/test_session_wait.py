"""The session keeps aiosmtpd's clock and words where it stands in for aiosmtpd.

The intake keeps its own silence timer (``crmmail.smtpd.deadlines``) instead of aiosmtpd's, and
reads DATA itself: these pin what aiosmtpd did there, so the stand-in cannot drift. A command
aiosmtpd dispatches restarts the wait; a line it refuses does not (or a client sending blank
lines would be kept forever). ``HELP`` still knows every command, and DATA before a greeting
or with an argument is answered as aiosmtpd answers it.
"""

import socket
import time

from crmmail.config import Settings
from crmmail.smtpd import replies
from crmmail.storage.database import Database
from tests.intake import running_intake

SOCKET_TIMEOUT = 10.0
SILENCE = 1.0  # CRMMAIL_SMTP_TIMEOUT in these tests
GAP = 0.2  # seconds between lines: well inside SILENCE
KEEP_GOING = 5.0  # seconds: many times SILENCE


class Client:
    """A raw SMTP client: lines out, replies in (multi-line replies: the last line)."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=SOCKET_TIMEOUT)
        self.reader = self.sock.makefile("rb")
        assert self.reply().startswith("220 ")

    def close(self) -> None:
        self.reader.close()
        self.sock.close()

    def reply(self) -> str:
        line = self.reader.readline()
        while line[3:4] == b"-":
            line = self.reader.readline()
        return line.decode().rstrip("\r\n")

    def command(self, line: str) -> str:
        self.sock.sendall(line.encode() + b"\r\n")
        return self.reply()


def quick(settings: Settings) -> Settings:
    return settings.model_copy(update={"smtp_timeout": SILENCE})


def test_commands_keep_a_session_alive(db: Database, settings: Settings) -> None:
    with running_intake(db, quick(settings)) as port:
        client = Client(port)
        try:
            assert client.command("EHLO client.test").startswith("250 ")
            until = time.monotonic() + KEEP_GOING
            while time.monotonic() < until:
                time.sleep(GAP)
                assert client.command("NOOP") == "250 OK"
            assert client.command("QUIT").startswith("221 ")
        finally:
            client.close()


def test_refused_lines_do_not(db: Database, settings: Settings) -> None:
    """A blank line is answered 500 and costs nothing, but it is no command: the clock runs."""
    with running_intake(db, quick(settings)) as port:
        client = Client(port)
        try:
            assert client.command("EHLO client.test").startswith("250 ")
            started = time.monotonic()
            answers = []
            while time.monotonic() < started + KEEP_GOING:
                time.sleep(GAP)
                answers.append(client.command(""))
                if answers[-1] != "500 Error: bad syntax":
                    break
            assert answers[-1] == replies.COMMAND_TIMEOUT
            assert time.monotonic() - started < KEEP_GOING
        finally:
            client.close()


def test_help_knows_every_command(db: Database, settings: Settings) -> None:
    with running_intake(db, settings) as port:
        client = Client(port)
        try:
            listed = client.command("HELP").removeprefix("250 Supported commands: ").split()
            assert {"DATA", "EHLO", "HELO", "MAIL", "NOOP", "QUIT", "RCPT", "RSET"} <= set(listed)
            assert client.command("HELP DATA") == "250 Syntax: DATA"
            assert client.command("HELP MAIL") == "250 Syntax: MAIL FROM: <address>"
        finally:
            client.close()


def test_data_out_of_turn_gets_aiosmtpd_answers(
    db: Database, settings: Settings, acme: int
) -> None:
    with running_intake(db, settings) as port:
        client = Client(port)
        try:
            assert client.command("DATA") == "503 Error: send HELO first"
            assert client.command("EHLO client.test").startswith("250 ")
            assert client.command("DATA") == "503 Error: need RCPT command"
            assert client.command("MAIL FROM:<bob@corp.test>") == "250 OK"
            assert client.command("RCPT TO:<acme@mail.localhost>") == replies.RCPT_OK
            assert client.command("DATA now") == "501 Syntax: DATA"
            assert client.command("DATA").startswith("354 ")
        finally:
            client.close()
