"""Sync of one folder of a box (Inbox or Sent): decide from STATUS, then import, re-map, notice
expunges and file missing Sent copies. ``MailboxSync`` (``sync.py``) runs one per folder."""

import hashlib
import logging
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING

from crmmail.connector.batch_capture import capture_batch
from crmmail.connector.capture import Captured, Destination, Incoming, Placement
from crmmail.connector.errors import Transient
from crmmail.connector.imap import FolderStatus, ImapSession
from crmmail.connector.parsing import MailParser, ParseJob, worker_count
from crmmail.connector.sent_copy import ensure_sent_copy
from crmmail.mail.keys import message_key
from crmmail.mail.message import parse_message
from crmmail.storage.models import FolderRole, MailboxFolderState
from crmmail.storage.repositories.emails import EmailRepository
from crmmail.storage.repositories.mailboxes import MailboxRepository

if TYPE_CHECKING:
    from crmmail.connector.sync import MailboxSync

log = logging.getLogger(__name__)

INBOX = "INBOX"
SENT_COPY_GRACE = timedelta(minutes=5)  # time a provider gets to file its own copy
HEADER_BATCHES = 20  # Message-ID headers are small: fetch this many batches' worth at once
# Batches fetched (and being parsed) ahead of the one being stored. Each holds up to
# ``import_batch`` whole messages in memory, so only one: memory stays bounded by two batches.
READ_AHEAD = 1


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


class FolderMode(StrEnum):
    """What a folder's sync has to do, decided from STATUS and the stored state."""

    UNCHANGED = "unchanged"
    FIRST_IMPORT = "first_import"
    INCREMENTAL = "incremental"


class FolderSync:
    """Sync of one folder (Inbox or Sent) of a box: ``prepare`` decides, ``finish`` does."""

    def __init__(self, box: "MailboxSync", imap: ImapSession, role: FolderRole, name: str) -> None:
        self.box = box
        self.imap = imap
        self.role = role
        self.name = name
        self.mode = FolderMode.UNCHANGED
        self.uidvalidity = 0
        self.last_uid = 0
        self.status = FolderStatus(0, 0, 0)
        self.in_window: list[int] = []  # first import: UIDs that arrived within the window

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
            self.in_window = self.imap.uids_since(since)

    def arrivals(self) -> list[tuple[datetime, int]]:
        """When each message of the window arrived ``(INTERNALDATE, UID)``: asked only when the
        window holds more than the import limit (``MailboxSync`` then keeps the newest)."""
        if self.imap.examine(self.name) != self.uidvalidity:
            raise Transient(f"the UIDVALIDITY of {self.name} changed during the sync")
        return [(when, uid) for uid, when in self.imap.internal_dates(self.in_window).items()]

    def finish(self, planned: list[int]) -> None:
        """Import (the ``planned`` UIDs on a first import), note expunges, file Sent copies."""
        if self.mode is not FolderMode.UNCHANGED:
            if self.imap.examine(self.name) != self.uidvalidity:
                raise Transient(f"the UIDVALIDITY of {self.name} changed during the sync")
            if self.mode is FolderMode.FIRST_IMPORT:
                self._import([uid for uid in planned if uid > self.last_uid])
                newest = max(self.in_window, default=0)
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
        """Fetch the next batches on a reader thread, and parse them in worker processes (when
        there is more than one batch: ``parsing.py``), while this thread stores the last.

        Only the reader uses the IMAP connection meanwhile; the transactions stay on this thread
        and never wait for the network. Messages without a usable Date are dated by their arrival
        on the server (INTERNALDATE), asked of the reader once their batch is parsed, so that the
        email and its notes are stored with it; a batch whose mail is all dated asks nothing.
        """
        size = self.box.settings.import_batch
        batches = [uids[start : start + size] for start in range(0, len(uids), size)]
        if not batches:
            return
        workers = worker_count() if len(batches) > 1 else 0
        with (
            MailParser(workers) as parser,
            ThreadPoolExecutor(max_workers=1, thread_name_prefix="imap-reader") as reader,
        ):
            ahead = [reader.submit(self._read, parser, batch) for batch in batches[:READ_AHEAD]]
            for index, batch in enumerate(batches):
                self.box.check_stopping()
                uids_fetched, parsing = ahead.pop(0).result()
                if index + READ_AHEAD < len(batches):
                    ahead.append(reader.submit(self._read, parser, batches[index + READ_AHEAD]))
                parsed = list(zip(uids_fetched, parsing.result(), strict=True))
                self._date_by_arrival(reader, parsed)
                self._store(parsed, max(batch))

    def _read(self, parser: MailParser, batch: Sequence[int]) -> tuple[list[int], ParseJob]:
        """Fetch the batch and set its parsing going (no transaction is open here)."""
        fetched = self.imap.fetch(batch)
        if len(fetched) < len(batch):
            log.info(
                "mailbox %s %s: %d of %d messages vanished before they were fetched",
                self.box.access.id,
                self.role.value,
                len(batch) - len(fetched),
                len(batch),
            )
        return [m.uid for m in fetched], parser.submit([m.raw for m in fetched])

    def _date_by_arrival(
        self, reader: ThreadPoolExecutor, parsed: list[tuple[int, Incoming]]
    ) -> None:
        """Give the messages without a usable Date their INTERNALDATE, as the intake dates a
        smart-address note by its arrival. The question goes to the reader thread, behind the
        fetch it may be running: the IMAP connection is never used by two threads at once."""
        undated = {uid: incoming for uid, incoming in parsed if incoming.message.date is None}
        if not undated:
            return
        arrived = reader.submit(self.imap.internal_dates, list(undated)).result()
        for uid, incoming in undated.items():
            incoming.message.date = arrived.get(uid)

    def _store(self, parsed: list[tuple[int, Incoming]], last_uid: int) -> None:
        access = self.box.access
        report = self.box.report
        batch = [
            (
                Placement(access.account_id, access.id, self.role.value, self.uidvalidity, uid),
                incoming,
            )
            for uid, incoming in parsed
        ]
        with self.box.transaction() as boxes:
            destination = Destination.load(boxes.session, access.id)
            outcomes = capture_batch(
                boxes.session, destination, batch, self.box.settings.smart_domains
            )
            row = self._row(boxes)
            row.uidvalidity = self.uidvalidity
            row.last_uid = max(row.last_uid, last_uid)
        report.bytes_fetched += sum(len(incoming.raw) for _, incoming in parsed)
        report.imported += outcomes.count(Captured.NEW)
        report.quarantined += outcomes.count(Captured.QUARANTINED)
        report.known += outcomes.count(Captured.KNOWN)

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
