"""Sync one mailbox: Inbox and Sent, first import then increments, expunges, UIDVALIDITY changes.

Per folder (``folder_sync.py``), in this order:

1. STATUS (UIDVALIDITY, UIDNEXT, MESSAGES) against the stored state: nothing moved, stop there.
2. EXAMINE (read-only). A new UIDVALIDITY (or another Sent folder) re-maps the known messages
   by Message-ID, else content hash, to their new UIDs; nothing is imported twice. When none
   of ours is left there, the folder starts again with a first import.
3. First import: the newest ``import_limit`` messages that arrived in the last ``import_days``,
   counted over Inbox and Sent together (by INTERNALDATE, fetched only when the window holds
   more than that); afterwards every UID above the last one imported. Bodies come with
   ``BODY.PEEK[]``, in batches; each batch commits its emails together with the folder's
   ``last_uid``, so a sync killed mid-batch resumes after the last committed batch, with no
   duplicate and no gap. A message without a usable Date is dated by its INTERNALDATE, asked
   (per batch, only for such mail) before its batch is stored.
4. UIDs we hold that the server no longer lists are marked ``deleted_on_server`` (kept here).
5. In Sent, whether or not anything moved: mail we sent whose copy has still not appeared after
   a grace time is APPENDed.

No database session is held across network I/O: a transaction never waits for the server (the
next batch is fetched on a reader thread while this one stores the last, and parsed in worker
processes: ``folder_sync.py``, ``parsing.py``), and each transaction first checks that this sync
still holds the box's lease.
"""

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from crmmail.config import Settings
from crmmail.connector.access import MailboxAccess
from crmmail.connector.errors import Permanent, Transient
from crmmail.connector.folder_sync import INBOX, FolderMode, FolderSync
from crmmail.connector.folders import find_sent
from crmmail.connector.imap import ImapSession
from crmmail.storage.database import Database
from crmmail.storage.models import FolderRole
from crmmail.storage.repositories.mailboxes import MailboxRepository

log = logging.getLogger(__name__)


class SyncInterrupted(Transient):
    """The process is stopping: the committed batches stay, the next sync goes on from there."""


@dataclass
class SyncReport:
    """What one sync did, per box."""

    imported: int = 0
    known: int = 0
    quarantined: int = 0
    expunged: int = 0
    remapped: int = 0
    bytes_fetched: int = 0
    sent_copies_filed: int = 0
    folders: dict[str, str] = field(default_factory=dict)  # role -> server folder name
    unchanged: list[str] = field(default_factory=list)  # folders whose STATUS showed no change
    complete: bool = True  # every folder's first import is done


class MailboxSync:
    """One sync run of one box, under the lease ``token``."""

    def __init__(
        self,
        db: Database,
        settings: Settings,
        access: MailboxAccess,
        token: str,
        clock: Callable[[], datetime],
        stopping: Callable[[], bool] = lambda: False,
    ) -> None:
        self.db = db
        self.stopping = stopping
        self.settings = settings
        self.access = access
        self.token = token
        self.clock = clock
        self.report = SyncReport()

    def run(self, imap: ImapSession) -> SyncReport:
        sent = find_sent(imap.folders(), self.access.sent_folder)
        if sent is None and self.access.sent_folder is not None:
            raise Permanent(f"the mailbox has no folder named {self.access.sent_folder!r}")
        folders = [
            FolderSync(self, imap, role, name)
            for role, name in ((FolderRole.INBOX, INBOX), (FolderRole.SENT, sent))
            if name is not None
        ]
        for folder in folders:
            self.report.folders[folder.role.value] = folder.name
            folder.prepare()
        plan = self._first_import_plan(folders)
        for folder in folders:
            folder.finish(plan.get(folder.role, []))
        return self.report

    def _first_import_plan(self, folders: list[FolderSync]) -> dict[FolderRole, list[int]]:
        """The newest ``import_limit`` messages of the window across the box's folders (all of
        them, without asking when they arrived, when they are not more than the limit)."""
        first = [folder for folder in folders if folder.mode is FolderMode.FIRST_IMPORT]
        if sum(len(folder.in_window) for folder in first) <= self.settings.import_limit:
            return {folder.role: sorted(folder.in_window) for folder in first if folder.in_window}
        arrivals = [(when, folder.role, uid) for folder in first for when, uid in folder.arrivals()]
        arrivals.sort(key=lambda arrival: (arrival[0], arrival[2]), reverse=True)
        plan: dict[FolderRole, list[int]] = {}
        for _, role, uid in arrivals[: self.settings.import_limit]:
            plan.setdefault(role, []).append(uid)
        return {role: sorted(uids) for role, uids in plan.items()}

    def check_stopping(self) -> None:
        if self.stopping():
            raise SyncInterrupted("the server is stopping; the sync resumes from here")

    def keep_lease(self) -> None:
        """Between long reads: renew the lease (or learn it is lost) and honour a stop."""
        self.check_stopping()
        with self.transaction():
            pass

    @contextmanager
    def transaction(self) -> Iterator[MailboxRepository]:
        """A transaction that goes on only while this sync holds the box's lease."""
        with self.db.transaction() as session:
            boxes = MailboxRepository(session)
            if boxes.holds(self.access.id, self.token) is None:
                raise Transient("another sync took over this mailbox")
            lease = timedelta(seconds=self.settings.lease_seconds)
            boxes.renew(self.access.id, self.token, self.clock() + lease)
            yield boxes
