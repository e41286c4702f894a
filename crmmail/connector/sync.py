"""Sync one mailbox: Inbox and Sent, first import then increments, expunges, UIDVALIDITY changes.

Per folder, in this order:

1. STATUS (UIDVALIDITY, UIDNEXT, MESSAGES) against the stored state: nothing moved, stop there.
2. EXAMINE (read-only). A new UIDVALIDITY (or another Sent folder) re-maps the known messages
   by Message-ID, else content hash, to their new UIDs; nothing is imported twice. When none
   of ours is left there, the folder starts again with a first import.
3. First import: the newest ``import_limit`` messages that arrived in the last ``import_days``,
   counted over Inbox and Sent together (by INTERNALDATE); afterwards every UID above the last
   one imported. Bodies come with ``BODY.PEEK[]``, in batches; each batch commits its emails
   together with the folder's ``last_uid``, so a sync killed mid-batch resumes after the last
   committed batch, with no duplicate and no gap.
4. UIDs we hold that the server no longer lists are marked ``deleted_on_server`` (kept here).
5. In Sent, whether or not anything moved: mail we sent whose copy has still not appeared after
   a grace time is APPENDed.

No database session is held across network I/O: the IMAP reads happen between transactions,
and each transaction first checks that this sync still holds the box's lease.
"""

import hashlib
import logging
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

from crmmail.config import Settings
from crmmail.connector.capture import Captured, Incoming, Placement, capture
from crmmail.connector.endpoints import Endpoint
from crmmail.connector.errors import Permanent, Transient
from crmmail.connector.folders import find_sent
from crmmail.connector.imap import FetchedMessage, FolderStatus, ImapSession
from crmmail.connector.sent_copy import ensure_sent_copy
from crmmail.processor.message import parse_message
from crmmail.processor.steps.dedupe import message_key
from crmmail.storage.database import Database
from crmmail.storage.models import FolderRole, MailboxFolderState
from crmmail.storage.repositories.emails import EmailRepository
from crmmail.storage.repositories.mailboxes import MailboxRepository

log = logging.getLogger(__name__)

INBOX = "INBOX"
SENT_COPY_GRACE = timedelta(minutes=5)  # time a provider gets to file its own copy
HEADER_BATCHES = 20  # Message-ID headers are small: fetch this many batches' worth at once


class SyncInterrupted(Transient):
    """The process is stopping: the committed batches stay, the next sync goes on from there."""


@dataclass(frozen=True)
class MailboxAccess:
    """What a sync needs to reach a box, read once so no session stays open during I/O."""

    id: int
    account_id: int
    email: str
    username: str
    password: str = field(repr=False)
    imap: Endpoint
    smtp: Endpoint
    sent_folder: str | None


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


@dataclass(frozen=True)
class FolderState:
    """A snapshot of ``MailboxFolderState`` taken at the start of a folder's sync."""

    name: str
    uidvalidity: int | None
    last_uid: int
    uidnext: int | None
    messages: int | None
    imported: bool

    def unchanged(self, name: str, status: FolderStatus) -> bool:
        return (
            self.imported
            and self.name == name
            and (self.uidvalidity, self.uidnext, self.messages)
            == (status.uidvalidity, status.uidnext, status.messages)
        )


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

    def _first_import_plan(self, folders: list["FolderSync"]) -> dict[FolderRole, list[int]]:
        """The newest ``import_limit`` messages of the window across the box's folders."""
        arrivals = [
            (when, folder.role, uid)
            for folder in folders
            if folder.mode is FolderMode.FIRST_IMPORT
            for when, uid in folder.candidates
        ]
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


class FolderMode(StrEnum):
    """What a folder's sync has to do, decided from STATUS and the stored state."""

    UNCHANGED = "unchanged"
    FIRST_IMPORT = "first_import"
    INCREMENTAL = "incremental"


class FolderSync:
    """Sync of one folder (Inbox or Sent) of a box: ``prepare`` decides, ``finish`` does."""

    def __init__(self, box: MailboxSync, imap: ImapSession, role: FolderRole, name: str) -> None:
        self.box = box
        self.imap = imap
        self.role = role
        self.name = name
        self.mode = FolderMode.UNCHANGED
        self.uidvalidity = 0
        self.last_uid = 0
        self.status = FolderStatus(0, 0, 0)
        self.candidates: list[tuple[datetime, int]] = []  # first import: (arrival, UID)

    def prepare(self) -> None:
        """STATUS; then, if something moved, re-map after a UIDVALIDITY change and list what
        a first import could take."""
        self.status = self.imap.status(self.name)
        state = self._state()
        if state.unchanged(self.name, self.status):
            self.box.report.unchanged.append(self.role.value)
            return
        self.uidvalidity = self.imap.examine(self.name)
        self.last_uid = state.last_uid
        first = not state.imported
        if state.uidvalidity is not None and (
            state.uidvalidity != self.uidvalidity or state.name != self.name
        ):
            self.last_uid = self._remap()
            first = first or self.last_uid == 0  # nothing of ours is left: the window again
        self.mode = FolderMode.FIRST_IMPORT if first else FolderMode.INCREMENTAL
        if first:
            since = (self.box.clock() - timedelta(days=self.box.settings.import_days)).date()
            arrivals = self.imap.internal_dates(self.imap.uids_since(since))
            self.candidates = [(when, uid) for uid, when in arrivals.items()]

    def finish(self, planned: list[int]) -> None:
        """Import (the ``planned`` UIDs on a first import), note expunges, file Sent copies."""
        if self.mode is not FolderMode.UNCHANGED:
            if self.imap.examine(self.name) != self.uidvalidity:
                raise Transient(f"the UIDVALIDITY of {self.name} changed during the sync")
            if self.mode is FolderMode.FIRST_IMPORT:
                self._import([uid for uid in planned if uid > self.last_uid])
                newest = max((uid for _, uid in self.candidates), default=0)
                with self.box.transaction() as boxes:
                    row = self._row(boxes)
                    row.imported = True
                    row.last_uid = max(row.last_uid, newest)
            else:
                self._import(self.imap.uids_after(self.last_uid))
            self._detect_expunged()
        if self.role is FolderRole.SENT:
            self._file_missing_sent_copies()

    def _state(self) -> FolderState:
        with self.box.transaction() as boxes:
            row = boxes.folder(self.box.access.id, self.role.value)
            if row is None:
                row = MailboxFolderState(
                    mailbox_id=self.box.access.id, role=self.role.value, name=self.name
                )
                boxes.save_folder(row)
            return FolderState(
                row.name, row.uidvalidity, row.last_uid, row.uidnext, row.messages, row.imported
            )

    def _import(self, uids: Sequence[int]) -> None:
        batch_size = self.box.settings.import_batch
        for start in range(0, len(uids), batch_size):
            self.box.check_stopping()
            batch = uids[start : start + batch_size]
            fetched = self.imap.fetch(batch)
            if len(fetched) < len(batch):
                log.info(
                    "mailbox %s %s: %d of %d messages vanished before they were fetched",
                    self.box.access.id,
                    self.role.value,
                    len(batch) - len(fetched),
                    len(batch),
                )
            self._store(fetched, max(batch))

    def _store(self, fetched: list[FetchedMessage], last_uid: int) -> None:
        access = self.box.access
        report = self.box.report
        parsed = [(message.uid, Incoming.parse(message.raw)) for message in fetched]
        with self.box.transaction() as boxes:
            for uid, incoming in parsed:
                placement = Placement(
                    access.account_id, access.id, self.role.value, self.uidvalidity, uid
                )
                outcome, _ = capture(
                    boxes.session, placement, incoming, self.box.settings.smart_domains
                )
                report.bytes_fetched += len(incoming.raw)
                if outcome is Captured.NEW:
                    report.imported += 1
                elif outcome is Captured.QUARANTINED:
                    report.quarantined += 1
                else:
                    report.known += 1
            row = self._row(boxes)
            row.uidvalidity = self.uidvalidity
            row.last_uid = max(row.last_uid, last_uid)

    def _remap(self) -> int:
        """Find each known message's new UID; returns the highest UID that is ours.

        By Message-ID from the headers (cheap), else by the SHA-256 of the whole message. The
        lease is renewed and a stop request honoured between the batches of fetches.
        """
        uidvalidity = self.uidvalidity
        keys: dict[str, int] = {}
        unnamed: list[int] = []
        server_uids = self.imap.uids()
        step = self.box.settings.import_batch * HEADER_BATCHES
        for start in range(0, len(server_uids), step):
            self.box.keep_lease()
            for uid, header in self.imap.message_ids(server_uids[start : start + step]).items():
                message_id = parse_message(header + b"\r\n").message_id
                if message_id:
                    keys.setdefault(message_key(message_id, ""), uid)
                else:
                    unnamed.append(uid)
        for start in range(0, len(unnamed), self.box.settings.import_batch):
            self.box.keep_lease()
            for message in self.imap.fetch(unnamed[start : start + self.box.settings.import_batch]):
                self.box.report.bytes_fetched += len(message.raw)
                sha256 = hashlib.sha256(message.raw).hexdigest()
                keys.setdefault(message_key(None, sha256), message.uid)
        highest = 0
        with self.box.transaction() as boxes:
            emails = EmailRepository(boxes.session)
            gone: list[int] = []
            for email_id, key, old_uid in emails.keys(self.box.access.id, self.role.value):
                new_uid = keys.get(key)
                if new_uid is None:
                    if old_uid is not None:  # not just sent by us and not yet seen there
                        gone.append(email_id)
                    continue
                emails.place(email_id, uidvalidity, new_uid)
                highest = max(highest, new_uid)
                self.box.report.remapped += 1
            emails.mark_deleted_on_server(gone)
            row = self._row(boxes)
            row.uidvalidity = uidvalidity
            row.name = self.name
            row.last_uid = highest
            row.imported = row.imported and highest > 0
        log.info(
            "mailbox %s %s: UIDVALIDITY changed, %d messages re-mapped",
            self.box.access.id,
            self.role.value,
            self.box.report.remapped,
        )
        return highest

    def _detect_expunged(self) -> None:
        uidvalidity, status = self.uidvalidity, self.status
        on_server = set(self.imap.uids())
        with self.box.transaction() as boxes:
            emails = EmailRepository(boxes.session)
            gone = [
                email_id
                for email_id, placed_validity, uid in emails.placed(
                    self.box.access.id, self.role.value
                )
                if placed_validity == uidvalidity and uid is not None and uid not in on_server
            ]
            self.box.report.expunged += emails.mark_deleted_on_server(gone)
            row = self._row(boxes)
            row.uidvalidity = uidvalidity
            row.name = self.name
            row.uidnext = status.uidnext
            row.messages = status.messages
            if not row.imported:
                self.box.report.complete = False

    def _file_missing_sent_copies(self) -> None:
        """Mail we sent whose Sent copy never showed up (the send could not check): file it."""
        before = self.box.clock() - SENT_COPY_GRACE
        with self.box.transaction() as boxes:
            emails = EmailRepository(boxes.session)
            missing = [
                (email.message_id, email.raw, email.date or email.created_at)
                for email in emails.unplaced(self.box.access.id, self.role.value, before)
                if email.message_id
            ]
        for message_id, raw, when in missing:
            assert message_id is not None
            self.box.check_stopping()
            ensure_sent_copy(self.imap, self.name, message_id, raw, when)
            self.box.report.sent_copies_filed += 1

    def _row(self, boxes: MailboxRepository) -> MailboxFolderState:
        row = boxes.folder(self.box.access.id, self.role.value)
        if row is None:
            raise Transient("the folder's sync state vanished")
        return row
