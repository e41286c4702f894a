"""The mail room: the real intake on loopback plus a worker, and readers for what they made."""

from collections.abc import Iterator
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any

import pytest

from crmmail.config import Settings
from crmmail.processor.worker import Worker
from crmmail.services import crm, inbound
from crmmail.storage.database import Database
from tests.intake import running_intake, send


@dataclass
class Mailroom:
    db: Database
    settings: Settings
    port: int
    account_id: int

    def deliver(
        self, mail: EmailMessage | bytes, rcpt: list[str], mail_from: str = "bob@corp.test"
    ) -> None:
        """Send over SMTP, then let a worker drain the spool."""
        send(self.port, mail, rcpt, mail_from)
        self.process()

    def process(self) -> int:
        return Worker(self.db, self.settings).run_until_idle()

    def _read(self, listing: Any) -> Any:
        with self.db.transaction() as session:
            return listing(session, "acme")

    def notes(self) -> list[dict[str, Any]]:
        return list(self._read(crm.list_notes))

    def contacts(self) -> list[dict[str, Any]]:
        return list(self._read(crm.list_contacts))

    def leads(self) -> list[dict[str, Any]]:
        return list(self._read(crm.list_leads))

    def inbound(self) -> list[dict[str, Any]]:
        return list(self._read(inbound.list_inbound))

    def outcomes(self) -> list[tuple[str, str | None]]:
        return [(row["status"], row["reason"]) for row in self.inbound()]

    def cards(self) -> set[tuple[str, int]]:
        return {(note["entity_type"], note["entity_id"]) for note in self.notes()}


@pytest.fixture
def mailroom(db: Database, settings: Settings, acme: int) -> Iterator[Mailroom]:
    with running_intake(db, settings) as port:
        yield Mailroom(db, settings, port, acme)
