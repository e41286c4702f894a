"""The post office: a real Dovecot and a real SMTP submission server on loopback, a test CA, and
a mailbox user on both, connected to crmmail through the same services the CLI uses."""

import itertools
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime, make_msgid
from typing import Any

import pytest

from crmmail.config import Settings
from crmmail.connector.credentials import new_key
from crmmail.connector.scheduler import SyncResult, SyncScheduler
from crmmail.services import accounts, crm, mail_views, mailboxes
from crmmail.storage.base import utcnow
from crmmail.storage.database import Database
from tests.dovecot import Dovecot, running_dovecot
from tests.submission import Submission, running_submission
from tests.tlsca import TestCA, make_test_ca

_user_numbers = itertools.count()


@pytest.fixture(scope="session")
def test_ca(tmp_path_factory: pytest.TempPathFactory) -> TestCA:
    return make_test_ca(tmp_path_factory.mktemp("ca"))


@pytest.fixture(scope="session")
def dovecot(tmp_path_factory: pytest.TempPathFactory, test_ca: TestCA) -> Iterator[Dovecot]:
    with running_dovecot(tmp_path_factory.mktemp("dovecot"), test_ca) as server:
        yield server


@pytest.fixture
def submission(test_ca: TestCA) -> Iterator[Submission]:
    with running_submission(test_ca, {}, implicit_tls=True) as server:
        yield server


@pytest.fixture
def mail_settings(settings: Settings, test_ca: TestCA) -> Settings:
    """Loopback servers allowed, the tests' CA trusted, a fresh key for passwords."""
    return settings.model_copy(
        update={
            "allow_private_mail_hosts": True,
            "tls_ca_file": test_ca.ca_file,
            "secret_key": new_key(),
            "mail_timeout": 10.0,
            "sent_copy_wait": 0.3,
        }
    )


def mail(
    subject: str,
    sender: str = "Ann Lee <ann@customer.test>",
    to: str = "",
    cc: str = "",
    *,
    date: datetime | None = None,
    message_id: bool = True,
) -> bytes:
    message = EmailMessage(policy=SMTP)
    message["From"] = sender
    if to:
        message["To"] = to
    if cc:
        message["Cc"] = cc
    message["Subject"] = subject
    message["Date"] = format_datetime(date or utcnow())
    if message_id:
        message["Message-ID"] = make_msgid(domain="customer.test")
    message.set_content(f"Body of {subject}\n")
    return message.as_bytes()


@dataclass
class PostOffice:
    """One user's mailbox on the servers, and crmmail connected to it."""

    db: Database
    settings: Settings
    dovecot: Dovecot
    submission: Submission
    email: str
    password: str
    now: datetime = field(default_factory=utcnow)
    seed: int = 7

    def connect(self, **changes: Any) -> dict[str, Any]:
        request = mailboxes.ConnectRequest(
            slug="acme",
            user_email=self.email,
            email=self.email,
            password=self.password,
            imap=mailboxes.HostChoice(self.dovecot.host, self.dovecot.ssl_port, "ssl"),
            smtp=mailboxes.HostChoice(self.submission.host, self.submission.port, "ssl"),
        )
        request = mailboxes.ConnectRequest(**{**request.__dict__, **changes})
        return mailboxes.connect_mailbox(self.db, self.settings, request)

    def deliver(self, raw: bytes, folder: str = "INBOX", days_ago: float = 0) -> int:
        when = datetime.now(UTC) - timedelta(days=days_ago)
        return self.dovecot.append(self.email, folder, raw, internal_date=when)

    def scheduler(self, settings: Settings | None = None) -> SyncScheduler:
        return SyncScheduler.from_settings(
            self.db, settings or self.settings, random.Random(self.seed)
        )

    def sync(self, mailbox_id: int, settings: Settings | None = None) -> SyncResult:
        return self.scheduler(settings).sync_mailbox(mailbox_id)

    def emails(
        self, mailbox_id: int | None = None, as_user: str | None = None
    ) -> list[dict[str, Any]]:
        with self.db.read() as session:
            return mail_views.list_emails(session, "acme", as_user or self.email, mailbox_id)

    def mailboxes(self) -> list[dict[str, Any]]:
        with self.db.read() as session:
            return mailboxes.list_mailboxes(session, "acme")

    def notes(self, as_user: str | None = None) -> list[dict[str, Any]]:
        with self.db.read() as session:
            return crm.list_notes(session, "acme", as_user or self.email)

    def add_contact(self, email: str, name: str) -> int:
        with self.db.transaction() as session:
            contact = crm.add_contact(session, "acme", email, name, self.settings.smart_domains)
            return int(contact["id"])


@pytest.fixture
def post(
    db: Database, mail_settings: Settings, dovecot: Dovecot, submission: Submission, acme: int
) -> PostOffice:
    """A user of ``acme`` whose address is a mailbox on Dovecot (with a ``\\Sent`` folder)."""
    email = f"user{next(_user_numbers)}@example.com"
    password = f"secret-{email}"
    dovecot.add_user(email, password)
    dovecot.create_mailbox(email, "Sent")
    submission.users[email] = password
    with db.transaction() as session:
        accounts.add_user(
            session,
            "acme",
            email,
            name="Una User",
            admin=False,
            email_access=True,
            smart_domains=mail_settings.smart_domains,
        )
    return PostOffice(db, mail_settings, dovecot, submission, email, password)
