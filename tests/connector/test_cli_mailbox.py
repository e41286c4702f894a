"""The mailbox commands as a newcomer runs them: real processes, SQLite made by ``crmmail init``."""

import itertools
import json
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from crmmail.storage.database import Database
from crmmail.storage.models import Email
from tests.connector.conftest import mail
from tests.dovecot import Dovecot
from tests.submission import Submission
from tests.test_cli import run_crmmail
from tests.tlsca import TestCA

_numbers = itertools.count()


def crmmail(
    tmp_path: Path, env: dict[str, str], *args: str, ok: bool = True
) -> subprocess.CompletedProcess[str]:
    done = run_crmmail(*args, cwd=tmp_path, env=env)
    if ok:
        assert done.returncode == 0, done.stderr
    return done


def as_json(tmp_path: Path, env: dict[str, str], *args: str) -> Any:
    return json.loads(crmmail(tmp_path, env, *args, "--json").stdout)


@pytest.fixture
def box(dovecot: Dovecot, submission: Submission) -> str:
    """A fresh mailbox on both servers, password ``cli-secret``."""
    email = f"cli{next(_numbers)}@example.com"
    dovecot.add_user(email, "cli-secret")
    dovecot.create_mailbox(email, "Sent")
    submission.users[email] = "cli-secret"
    return email


@pytest.fixture
def env(tmp_path: Path, box: str, test_ca: TestCA) -> dict[str, str]:
    environment = {
        key: value for key, value in os.environ.items() if not key.startswith("CRMMAIL_")
    }
    environment |= {
        "CRMMAIL_ALLOW_PRIVATE_MAIL_HOSTS": "1",
        "CRMMAIL_TLS_CA_FILE": str(test_ca.ca_file),
        "BOX_PASSWORD": "cli-secret",
        "WRONG_PASSWORD": "nope",
    }
    crmmail(tmp_path, environment, "init")
    crmmail(tmp_path, environment, "account", "create", "acme")
    crmmail(tmp_path, environment, "user", "add", "acme", box, "--name", "Cli User")
    return environment


def connect_args(box: str, dovecot: Dovecot, submission: Submission, variable: str) -> list[str]:
    return [
        "mailbox",
        "connect",
        "acme",
        "--user",
        box,
        "--email",
        box,
        "--password-env",
        variable,
        "--imap-host",
        dovecot.host,
        "--imap-port",
        str(dovecot.ssl_port),
        "--imap-security",
        "ssl",
        "--smtp-host",
        submission.host,
        "--smtp-port",
        str(submission.port),
        "--smtp-security",
        "ssl",
    ]


def test_connect_sync_list_and_send_on_the_command_line(
    tmp_path: Path, env: dict[str, str], box: str, dovecot: Dovecot, submission: Submission
) -> None:
    key_file = tmp_path / "crmmail.db.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600

    wrong = crmmail(
        tmp_path, env, *connect_args(box, dovecot, submission, "WRONG_PASSWORD"), ok=False
    )
    assert wrong.returncode == 1 and wrong.stdout == ""
    [line] = wrong.stderr.splitlines()
    assert "authentication failed" in line and "nothing was saved" in line
    assert as_json(tmp_path, env, "mailbox", "list", "acme") == []

    connected = as_json(tmp_path, env, *connect_args(box, dovecot, submission, "BOX_PASSWORD"))
    dovecot.append(box, "INBOX", mail("hello from the CLI", to=box))
    synced = as_json(tmp_path, env, "sync", "--until-idle")
    assert [(r["mailbox_id"], r["status"], r["imported"]) for r in synced] == [
        (connected["id"], "active", 1)
    ]
    [listed] = as_json(tmp_path, env, "mailbox", "list", "acme")
    assert set(listed) == {"id", "email", "kind", "owner", "status", "last_sync_at", "last_error"}
    assert listed["status"] == "active" and "cli-secret" not in json.dumps(listed)

    crmmail(
        tmp_path,
        env,
        "email",
        "send",
        "--mailbox",
        str(connected["id"]),
        "--as",
        box,
        "--to",
        "ann@customer.test,bob@customer.test",
        "--subject",
        "From the CLI",
        "--body",
        "Hi",
    )
    emails = as_json(
        tmp_path, env, "email", "list", "acme", "--as", box, "--mailbox", str(connected["id"])
    )
    assert {e["folder"] for e in emails} == {"inbox", "sent"}
    assert set(emails[0]) == {
        "id",
        "mailbox_id",
        "folder",
        "subject",
        "from",
        "to",
        "date",
        "message_id",
        "contact_ids",
        "deleted_on_server",
    }
    assert list(submission.messages[-1].rcpt_tos) == ["ann@customer.test", "bob@customer.test"]


def test_serve_runs_the_first_import_in_the_background(
    tmp_path: Path, env: dict[str, str], box: str, dovecot: Dovecot, submission: Submission
) -> None:
    connected = as_json(tmp_path, env, *connect_args(box, dovecot, submission, "BOX_PASSWORD"))
    dovecot.append(box, "INBOX", mail("imported by serve"))
    serve = subprocess.Popen(
        [sys.executable, "-m", "crmmail", "serve", "--smtp-port", "0"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        status = ""
        while time.monotonic() < deadline and status != "active":
            [listed] = as_json(tmp_path, env, "mailbox", "list", "acme")
            status = listed["status"]
            time.sleep(0.2)
        assert status == "active"
        [email] = as_json(tmp_path, env, "email", "list", "acme", "--as", box)
        assert email["subject"] == "imported by serve" and email["mailbox_id"] == connected["id"]
    finally:
        serve.terminate()
        serve.wait(timeout=30)
        assert serve.stderr is not None
        serve.stderr.close()


def test_a_sync_process_killed_mid_import_resumes_without_duplicates_or_gaps(
    tmp_path: Path, env: dict[str, str], box: str, dovecot: Dovecot, submission: Submission
) -> None:
    env = env | {"CRMMAIL_IMPORT_BATCH": "1", "CRMMAIL_LEASE_SECONDS": "1"}
    connected = as_json(tmp_path, env, *connect_args(box, dovecot, submission, "BOX_PASSWORD"))
    subjects = [f"message {n:03}" for n in range(150)]
    dovecot.append_many(box, "INBOX", [mail(subject) for subject in subjects])
    database = Database.from_url(f"sqlite:///{tmp_path / 'crmmail.db'}")
    sync = subprocess.Popen(
        [sys.executable, "-m", "crmmail", "mailbox", "sync", str(connected["id"])],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and _stored(database) < 10:
            time.sleep(0.01)
        sync.send_signal(signal.SIGKILL)
    finally:
        sync.wait(timeout=10)
    killed_at = _stored(database)
    assert 10 <= killed_at < len(subjects)

    time.sleep(1.5)  # the dead process's lease runs out
    [resumed] = as_json(tmp_path, env, "sync", "--until-idle")

    assert resumed["status"] == "active" and resumed["known"] == 0
    listed = as_json(tmp_path, env, "email", "list", "acme", "--as", box)
    assert sorted(email["subject"] for email in listed) == subjects
    database.dispose()


def _stored(database: Database) -> int:
    with database.read() as session:
        return len(session.scalars(select(Email.id)).all())
