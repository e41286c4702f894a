"""``crmmail serve`` as a newcomer runs it: a real process, mail in over SMTP, a note out."""

import signal
import smtplib
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from crmmail.services import crm, inbound
from crmmail.storage.database import Database
from tests.intake import message, send, wire_bytes
from tests.serveproc import RawSmtp, ServeProcess, crmmail_argv, running_serve

MAX_MESSAGE_SIZE = "123456"


@pytest.fixture
def server(database_url: str, acme: int, tmp_path: Path) -> Iterator[ServeProcess]:
    with running_serve(
        database_url, tmp_path, env={"CRMMAIL_MAX_MESSAGE_SIZE": MAX_MESSAGE_SIZE}
    ) as serve:
        yield serve


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
    server: ServeProcess, db: Database
) -> None:
    with db.transaction() as session:
        crm.add_contact(session, "acme", "ann@example.com", "Ann", ("mail.localhost",))
    with smtplib.SMTP("127.0.0.1", server.port) as client:
        client.ehlo()
        assert client.esmtp_features["size"] == MAX_MESSAGE_SIZE  # from CRMMAIL_MAX_MESSAGE_SIZE
    send(server.port, message(), ["acme@mail.localhost"])
    [note] = wait_for_notes(db)
    assert note["subject"] == "Quote for 100 widgets"
    assert server.terminate() == 0
    assert "crmmail: stopped" in server.output()
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", server.port)) != 0


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
    expected = (
        f"crmmail: error: cannot listen on 127.0.0.1:{port}: Address already in use:"
        " another process listens there: stop it or set CRMMAIL_SMTP_PORT (--smtp-port)\n"
    )
    assert result.stderr == expected


def readiness(http_port: int) -> int:
    """The status of ``/readyz``."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{http_port}/readyz", timeout=10) as reply:
            return int(reply.status)
    except urllib.error.HTTPError as error:
        return error.code


def accepts_connections(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


def test_sigterm_not_ready_first_then_refuses_finishes_data_says_421_and_exits_0(
    database_url: str, acme: int, tmp_path: Path, db: Database
) -> None:
    with running_serve(database_url, tmp_path, http_port=0) as serve:
        assert serve.http_port is not None
        assert readiness(serve.http_port) == 200
        idle, busy = RawSmtp(serve.port), RawSmtp(serve.port)
        try:
            for client in (idle, busy):
                assert client.command(b"EHLO client.test").startswith(b"250")
            assert busy.command(b"MAIL FROM:<bob@corp.test>").startswith(b"250")
            assert busy.command(b"RCPT TO:<acme+contact@mail.localhost>").startswith(b"250")
            assert busy.command(b"DATA").startswith(b"354")
            raw = wire_bytes(message(cc="acme+contact@mail.localhost"))
            busy.sock.sendall(raw[:100])

            serve.process.send_signal(signal.SIGTERM)
            # 1. not ready: from the first moment new connections are refused, /readyz says 503
            # (the HTTP port stays up while DATA in progress is finished).
            deadline = time.monotonic() + 10
            refused = False
            while not refused and time.monotonic() < deadline:
                refused = not accepts_connections(serve.port)
                if refused:
                    assert readiness(serve.http_port) == 503
            # 2. new connections refused, while the process still finishes the DATA in progress
            assert refused and serve.process.poll() is None
            # 3. idle sessions are told 421 at once, while DATA goes on
            assert idle.reply().startswith(b"421 ")
            # 4. the DATA in progress is finished and answered 250, then 421
            busy.sock.sendall(raw[100:] + b".\r\n")
            assert busy.reply().startswith(b"250 ")
            assert busy.reply().startswith(b"421 ")
        finally:
            idle.close()
            busy.close()
        # 5. exit code 0
        assert serve.process.wait(timeout=30) == 0
    with db.transaction() as session:
        assert [row["rcpt_tos"] for row in inbound.list_inbound(session, "acme")] == [
            ["acme+contact@mail.localhost"]
        ]


def test_a_client_that_never_finishes_data_is_cut_after_the_grace_period(
    database_url: str, acme: int, tmp_path: Path, db: Database
) -> None:
    with running_serve(database_url, tmp_path, env={"CRMMAIL_SHUTDOWN_GRACE": "1"}) as serve:
        stalled = RawSmtp(serve.port)
        try:
            assert stalled.command(b"EHLO client.test").startswith(b"250")
            assert stalled.command(b"MAIL FROM:<bob@corp.test>").startswith(b"250")
            assert stalled.command(b"RCPT TO:<acme@mail.localhost>").startswith(b"250")
            assert stalled.command(b"DATA").startswith(b"354")
            stalled.sock.sendall(b"Subject: never finished\r\n\r\npart of a body")
            assert serve.terminate() == 0
            assert stalled.replies.readline() == b""  # cut, without a 250
        finally:
            stalled.close()
    with db.transaction() as session:
        assert inbound.list_inbound(session, "acme") == []
