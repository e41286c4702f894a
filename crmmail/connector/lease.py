"""Take a box's sync lease outside the scheduler (send, new password): one IMAP user at a time.

A sync in progress holds the lease for a while; callers wait a bounded time for it, polling.
"""

import time
from datetime import timedelta

from crmmail.config import Settings
from crmmail.storage.base import utcnow
from crmmail.storage.database import Database
from crmmail.storage.repositories.mailboxes import MailboxRepository

POLL = 0.2  # seconds between two tries


def take_box(db: Database, mailbox_id: int, settings: Settings) -> str | None:
    """The lease token, or ``None`` if a sync still holds the box after ``mail_timeout`` s."""
    lease = timedelta(seconds=settings.lease_seconds)
    deadline = time.monotonic() + settings.mail_timeout
    while True:
        with db.transaction() as session:
            claimed = MailboxRepository(session).claim(mailbox_id, utcnow(), lease)
        if claimed is not None:
            return claimed[1]
        if time.monotonic() > deadline:
            return None
        time.sleep(POLL)


def give_back(db: Database, mailbox_id: int, token: str) -> None:
    with db.transaction() as session:
        MailboxRepository(session).release(mailbox_id, token)
