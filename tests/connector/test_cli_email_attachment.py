"""Reading mailbox email on the command line: ``email show`` in text, ``attachment get``, and
listings narrowed to one mailbox, in real ``crmmail`` processes against a real Dovecot."""

import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import pytest

from crmmail.services import mail_views
from tests.connector.conftest import PostOffice

PDF = b"%PDF-1.4 contract\r\n\x00\xff binary"
SENT = datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)
ADMIN = "me@acme.test"  # an admin of acme, who may not read the user's personal box


def with_attachment() -> bytes:
    message = EmailMessage(policy=SMTP)
    message["From"] = "Ann Lee <ann@customer.test>"
    message["To"] = "someone@example.com"
    message["Subject"] = "the contract"
    message["Date"] = format_datetime(SENT)
    message["Message-ID"] = "<contract-1@customer.test>"
    message.set_content("See attached.")
    message.add_attachment(PDF, maintype="application", subtype="pdf", filename="contract.pdf")
    return message.as_bytes()


class Crmmail:
    """``crmmail`` in processes of their own, on the post office's database and servers."""

    def __init__(self, post: PostOffice, workdir: Path) -> None:
        self.workdir = workdir
        self.env = {
            key: value for key, value in os.environ.items() if not key.startswith("CRMMAIL_")
        }
        self.env |= {
            "CRMMAIL_DATABASE_URL": post.settings.database_url,
            "CRMMAIL_SECRET_KEY": post.settings.secret_key or "",
            "CRMMAIL_ALLOW_PRIVATE_MAIL_HOSTS": "1",
            "CRMMAIL_TLS_CA_FILE": str(post.settings.tls_ca_file),
        }

    def __call__(self, *args: str) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run(
            [sys.executable, "-m", "crmmail", *args],
            cwd=self.workdir,
            env=self.env,
            capture_output=True,
            timeout=60,
            check=False,
        )

    def error(self, *args: str) -> str:
        """The one error line of a command that must fail (exit 1, nothing on stdout)."""
        result = self(*args)
        assert (result.returncode, result.stdout) == (1, b""), result.stderr
        [line] = result.stderr.decode().splitlines()
        assert line.startswith("crmmail: error: ")
        return line.removeprefix("crmmail: error: ")


@pytest.fixture
def crmmail(post: PostOffice, tmp_path: Path) -> Crmmail:
    workdir = tmp_path / "work"
    workdir.mkdir()
    return Crmmail(post, workdir)


def synced(post: PostOffice) -> tuple[dict[str, Any], int]:
    """The user's one synced email, as ``email show`` gives it, and its mailbox id."""
    post.deliver(with_attachment())
    box = post.connect()
    post.sync(box["id"])
    [email] = post.emails()
    with post.db.read() as session:
        return mail_views.show_email(session, email["id"], post.email), int(box["id"])


def test_email_show_in_text_gives_the_date_and_the_attachments(
    post: PostOffice, crmmail: Crmmail
) -> None:
    email, _ = synced(post)
    shown = crmmail("email", "show", str(email["id"]), "--as", post.email)
    assert shown.returncode == 0, shown.stderr
    [attachment] = email["attachments"]
    assert shown.stdout.decode().splitlines() == [
        "the contract",
        "From: Ann Lee <ann@customer.test>",
        "To: someone@example.com",
        "Date: 2026-03-04T05:06:07+00:00",
        f"Attachment {attachment['id']}: contract.pdf (application/pdf, {len(PDF)} bytes)",
        "",
        "See attached.",
    ]


def test_attachment_get_writes_to_stdout_and_never_overwrites_without_force(
    post: PostOffice, crmmail: Crmmail
) -> None:
    email, _ = synced(post)
    [attachment] = email["attachments"]
    get = ("attachment", "get", str(attachment["id"]), "--as", post.email)

    to_stdout = crmmail(*get, "--out", "-")
    assert (to_stdout.returncode, to_stdout.stdout, to_stdout.stderr) == (0, PDF, b"")
    assert list(crmmail.workdir.iterdir()) == []  # no file named "-"

    existing = crmmail.workdir / "contract.pdf"
    existing.write_bytes(b"keep me")
    assert crmmail.error(*get, "--out", str(existing)) == (
        f"{existing} exists: give --force to overwrite it, or another --out"
    )
    assert existing.read_bytes() == b"keep me"
    forced = crmmail(*get, "--out", str(existing), "--force")
    assert forced.returncode == 0, forced.stderr
    assert existing.read_bytes() == PDF
    fresh = crmmail.workdir / "fresh.pdf"
    assert crmmail(*get, "--out", str(fresh)).returncode == 0
    assert fresh.read_bytes() == PDF


def test_a_listing_narrowed_to_a_mailbox_names_the_problem(
    post: PostOffice, crmmail: Crmmail
) -> None:
    _, box_id = synced(post)
    for listing in ("email", "thread"):
        narrowed = ("list", "acme", "--mailbox")
        assert crmmail.error(listing, *narrowed, "99", "--as", post.email) == (
            "no mailbox 99 in account acme: see `crmmail mailbox list acme`"
        )
        assert crmmail.error(listing, *narrowed, str(box_id), "--as", ADMIN) == (
            f"mailbox {box_id}: insufficient rights to read its emails"
        )
        mine = crmmail(listing, *narrowed, str(box_id), "--as", post.email, "--json")
        assert mine.returncode == 0 and len(json.loads(mine.stdout)) == 1
