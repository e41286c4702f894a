"""``crmmail serve`` as a newcomer runs it: a real process, mail in over SMTP, a note out."""

import os
import re
import signal
import smtplib
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from crmmail.services import crm, inbound
from crmmail.storage.database import Database
from tests.intake import message, send, wire_bytes

LISTENING = re.compile(r"SMTP on 127\.0\.0\.1:(\d+)")


def crmmail_argv(database_url: str, *args: str) -> list[str]:
    return [sys.executable, "-m", "crmmail", "--database-url", database_url, *args]


@contextmanager
def start_serve(
    database_url: str, tmp_path: Path, **env: str
) -> Iterator[tuple[subprocess.Popen[str], int]]:
    process = subprocess.Popen(
        crmmail_argv(database_url, "serve", "--smtp-host", "127.0.0.1", "--smtp-port", "0"),
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={
            **os.environ,
            # Far longer than any wait below: mail is processed because the intake wakes the
            # worker, not because the worker happens to poll.
            "CRMMAIL_WORKER_IDLE_POLL": "600",
            "CRMMAIL_MAX_MESSAGE_SIZE": "123456",
            "CRMMAIL_SMTP_PORT": "1",  # the --smtp-port flag wins over the environment
            **env,
        },
    )
    assert process.stdout is not None
    first_line = process.stdout.readline()
    match = LISTENING.search(first_line)
    assert match, f"unexpected start-up output: {first_line!r} {process.stderr}"
    try:
        yield process, int(match.group(1))
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=10)
        process.stdout.close()
        assert process.stderr is not None
        process.stderr.close()


@pytest.fixture
def server(
    database_url: str, acme: int, tmp_path: Path
) -> Iterator[tuple[subprocess.Popen[str], int]]:
    with start_serve(database_url, tmp_path) as started:
        yield started


def wait_for_notes(db: Database, deadline_s: float = 30.0) -> list[dict[str, object]]:
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        with db.transaction() as session:
            notes = crm.list_notes(session, "acme")
        if notes:
            return notes
        time.sleep(0.05)
    return []


def test_mail_sent_to_serve_becomes_a_note_and_sigterm_stops_it(
    server: tuple[subprocess.Popen[str], int], db: Database
) -> None:
    process, port = server
    with db.transaction() as session:
        crm.add_contact(session, "acme", "ann@example.com", "Ann", ("mail.localhost",))
    with smtplib.SMTP("127.0.0.1", port) as client:
        client.ehlo()
        assert client.esmtp_features["size"] == "123456"  # from CRMMAIL_MAX_MESSAGE_SIZE
    send(port, message(), ["acme@mail.localhost"])
    [note] = wait_for_notes(db)
    assert note["subject"] == "Quote for 100 widgets"
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=30) == 0
    assert process.stdout is not None and "crmmail: stopped" in process.stdout.read()
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", port)) != 0


def test_serve_on_a_busy_port_is_one_clear_line(
    database_url: str, acme: int, tmp_path: Path
) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = subprocess.run(
            crmmail_argv(database_url, "serve", "--smtp-port", str(port)),
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert result.returncode == 1
    expected = f"crmmail: error: cannot listen on 127.0.0.1:{port}: Address already in use\n"
    assert result.stderr == expected


class RawSmtp:
    """A hand-driven SMTP client, to stop the server at exact points of a session."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        self.replies = self.sock.makefile("rb")
        assert self.reply().startswith(b"220")

    def reply(self) -> bytes:
        lines = [self.replies.readline()]
        while lines[-1][3:4] == b"-":
            lines.append(self.replies.readline())
        return lines[-1]

    def command(self, line: bytes) -> bytes:
        self.sock.sendall(line + b"\r\n")
        return self.reply()

    def close(self) -> None:
        self.replies.close()
        self.sock.close()


def test_sigterm_finishes_data_in_progress_and_says_421_to_idle_sessions(
    server: tuple[subprocess.Popen[str], int], db: Database
) -> None:
    process, port = server
    idle, busy = RawSmtp(port), RawSmtp(port)
    try:
        for client in (idle, busy):
            assert client.command(b"EHLO client.test").startswith(b"250")
        assert busy.command(b"MAIL FROM:<bob@corp.test>").startswith(b"250")
        assert busy.command(b"RCPT TO:<acme+contact@mail.localhost>").startswith(b"250")
        assert busy.command(b"DATA").startswith(b"354")
        raw = wire_bytes(message(cc="acme+contact@mail.localhost"))
        busy.sock.sendall(raw[:100])
        process.send_signal(signal.SIGTERM)
        assert idle.reply().startswith(b"421 ")  # told at once, while DATA goes on
        busy.sock.sendall(raw[100:] + b".\r\n")
        assert busy.reply().startswith(b"250 ")
        assert busy.reply().startswith(b"421 ")
    finally:
        idle.close()
        busy.close()
    assert process.wait(timeout=30) == 0
    with db.transaction() as session:
        assert [row["rcpt_tos"] for row in inbound.list_inbound(session, "acme")] == [
            ["acme+contact@mail.localhost"]
        ]


def test_a_client_that_never_finishes_data_is_cut_after_the_grace_period(
    database_url: str, acme: int, tmp_path: Path, db: Database
) -> None:
    with start_serve(database_url, tmp_path, CRMMAIL_SHUTDOWN_GRACE="1") as (process, port):
        stalled = RawSmtp(port)
        try:
            assert stalled.command(b"EHLO client.test").startswith(b"250")
            assert stalled.command(b"MAIL FROM:<bob@corp.test>").startswith(b"250")
            assert stalled.command(b"RCPT TO:<acme@mail.localhost>").startswith(b"250")
            assert stalled.command(b"DATA").startswith(b"354")
            stalled.sock.sendall(b"Subject: never finished\r\n\r\npart of a body")
            process.send_signal(signal.SIGTERM)
            assert process.wait(timeout=30) == 0
            assert stalled.replies.readline() == b""  # cut, without a 250
        finally:
            stalled.close()
    with db.transaction() as session:
        assert inbound.list_inbound(session, "acme") == []
