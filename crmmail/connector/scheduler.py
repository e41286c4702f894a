"""Run the mailbox syncs that are due and record how each ended, for ``serve`` and the CLI.

Outcomes: success (``active``, or ``importing`` until the first import is complete) schedules
the next sync 15-30 minutes later; ``AuthFailed`` sets ``auth_failed`` and stops syncing the box
until its password changes; ``Transient`` sets ``error`` and backs off; ``Permanent`` (and a
refused host) sets ``error`` and looks again at the slow end of the interval. A bug in one
box's sync is logged and handled like a transient failure: the other boxes go on.

When a box syncs next (``Schedule``) is pure arithmetic on a given ``now`` and a given random
source, so a seeded ``random.Random`` makes the schedule reproducible in tests.
"""

import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

from crmmail.config import Settings
from crmmail.connector.access import MailboxAccess, mailbox_access
from crmmail.connector.credentials import KeyRing, SecretUnreadable, load_key_ring
from crmmail.connector.errors import AuthFailed, MailSettingsRefused, Permanent, Transient
from crmmail.connector.hosts import check_server_settings
from crmmail.connector.imap import imap_session
from crmmail.connector.sync import MailboxSync, SyncInterrupted, SyncReport
from crmmail.connector.tls import client_context
from crmmail.errors import Hint, NotFound, UserInputError
from crmmail.storage.base import utcnow
from crmmail.storage.database import Database
from crmmail.storage.models import MailboxStatus
from crmmail.storage.repositories.mailboxes import MailboxRepository

log = logging.getLogger(__name__)

FIRST_RETRY = 60.0  # seconds after the first transient failure
MAX_RETRY = 3600.0


@dataclass(frozen=True)
class Schedule:
    """The interval bounds (seconds) and the random source of the jitter."""

    interval_min: float
    interval_max: float
    rng: random.Random

    def after_success(self, now: datetime) -> datetime:
        """Somewhere in [min, max] from now, so boxes do not all poll at once."""
        return now + timedelta(seconds=self.rng.uniform(self.interval_min, self.interval_max))

    def after_failure(self, now: datetime, failures: int) -> datetime:
        """Doubling from a minute up to an hour, with ±20 % jitter.

        >>> from datetime import UTC
        >>> s = Schedule(900, 1800, random.Random(1))
        >>> t0 = datetime(2026, 1, 1, tzinfo=UTC)
        >>> [round((s.after_failure(t0, n) - t0).total_seconds()) for n in (1, 2, 3, 9)]
        [51, 137, 265, 3247]
        """
        base = min(FIRST_RETRY * 2 ** max(failures - 1, 0), MAX_RETRY)
        return now + timedelta(seconds=base * self.rng.uniform(0.8, 1.2))

    def after_permanent_failure(self, now: datetime) -> datetime:
        """Something the user must fix: look again at the slow end of the interval."""
        return now + timedelta(seconds=self.interval_max)


class MailboxBusy(UserInputError):
    """Another sync holds the box right now."""


@dataclass(frozen=True)
class SyncResult:
    """How one sync of one box ended."""

    mailbox_id: int
    status: str
    error: str | None
    report: SyncReport

    def as_dict(self) -> dict[str, Any]:
        return {
            "mailbox_id": self.mailbox_id,
            "status": self.status,
            "error": self.error,
        } | asdict(self.report)


class SyncScheduler:
    """Claims due boxes one at a time (a lease per box) and syncs them."""

    def __init__(
        self,
        db: Database,
        settings: Settings,
        keys: KeyRing,
        schedule: Schedule,
        clock: Callable[[], datetime],
    ) -> None:
        self.db = db
        self.settings = settings
        self.keys = keys
        self.schedule = schedule
        self.clock = clock
        self.lease = timedelta(seconds=settings.lease_seconds)
        self.stop = threading.Event()

    @classmethod
    def from_settings(
        cls, db: Database, settings: Settings, rng: random.Random | None = None
    ) -> "SyncScheduler":
        """The scheduler with the settings' key ring and interval, on the real clock."""
        schedule = Schedule(
            settings.sync_interval_min, settings.sync_interval_max, rng or random.Random()
        )
        return cls(db, settings, load_key_ring(settings), schedule, utcnow)

    def sync_next(self) -> SyncResult | None:
        """Sync the box that is due first; ``None`` when none is due."""
        with self.db.transaction() as session:
            claimed = MailboxRepository(session).claim(None, self.clock(), self.lease)
        if claimed is None:
            return None
        return self._sync(*claimed)

    def sync_mailbox(self, mailbox_id: int) -> SyncResult:
        """Sync one box now, whatever its schedule.

        Not a box that cannot log in (retrying a refused password can lock the account at the
        provider) nor a disconnected one.
        """
        with self.db.transaction() as session:
            boxes = MailboxRepository(session)
            mailbox = boxes.get(mailbox_id)
            if mailbox is None:
                raise NotFound(f"no mailbox {mailbox_id}", hint=Hint("list_mailboxes"))
            if mailbox.status == MailboxStatus.AUTH_FAILED.value:
                raise UserInputError(
                    f"mailbox {mailbox_id} cannot log in: set its password",
                    hint=Hint("set_password", {"mailbox_id": mailbox_id}),
                )
            if mailbox.status == MailboxStatus.DISCONNECTED.value:
                raise UserInputError(f"mailbox {mailbox_id} is disconnected")
            claimed = boxes.claim(mailbox_id, self.clock(), self.lease)
        if claimed is None:
            raise MailboxBusy(f"mailbox {mailbox_id} is being synced right now: try again later")
        return self._sync(*claimed)

    def run_until_idle(self) -> list[SyncResult]:
        """Sync every due box once."""
        results = []
        while (result := self.sync_next()) is not None:
            results.append(result)
        return results

    def run(self, stop: threading.Event, poll: float = 5.0) -> None:
        """Keep syncing due boxes until ``stop`` is set (``serve``).

        A sync in progress stops between two batches once ``stop`` is set.
        """
        self.stop = stop
        while not stop.is_set():
            try:
                synced = self.sync_next() is not None
            except Exception:  # the database is away: keep the scheduler alive, look later
                log.exception("the mailbox scheduler could not claim a box")
                synced = False
            if not synced:
                stop.wait(poll)

    def _sync(self, mailbox_id: int, token: str) -> SyncResult:
        started = time.monotonic()
        report = SyncReport()
        try:
            access = self._access(mailbox_id, token)
            check_server_settings(access.server, self.settings.allow_private_mail_hosts)
            context = client_context(self.settings)
            with imap_session(
                access.imap, access.username, access.password, context, self.settings.mail_timeout
            ) as imap:
                sync = MailboxSync(
                    self.db, self.settings, access, token, self.clock, self.stop.is_set
                )
                report = sync.run(imap)
        except SyncInterrupted:
            return self._release(mailbox_id, token, report)
        except AuthFailed as error:
            return self._finish(mailbox_id, token, report, MailboxStatus.AUTH_FAILED, str(error))
        except (Permanent, MailSettingsRefused, SecretUnreadable) as error:
            return self._finish(
                mailbox_id, token, report, MailboxStatus.ERROR, str(error), slow=True
            )
        except Transient as error:
            return self._finish(mailbox_id, token, report, MailboxStatus.ERROR, str(error))
        except Exception as error:
            log.exception("mailbox %s: the sync failed unexpectedly", mailbox_id)
            reason = f"internal error ({type(error).__name__}); see the server log"
            return self._finish(mailbox_id, token, report, MailboxStatus.ERROR, reason)
        status = MailboxStatus.ACTIVE if report.complete else MailboxStatus.IMPORTING
        log.info(
            "mailbox %s synced in %.1f s: %d new, %d expunged, %d re-mapped",
            mailbox_id,
            time.monotonic() - started,
            report.imported,
            report.expunged,
            report.remapped,
        )
        return self._finish(mailbox_id, token, report, status, None)

    def _access(self, mailbox_id: int, token: str) -> MailboxAccess:
        with self.db.read() as session:
            boxes = MailboxRepository(session)
            mailbox = boxes.holds(mailbox_id, token)
            credential = boxes.credential(mailbox_id)
            if mailbox is None or credential is None:
                raise Transient("the mailbox changed while its sync started")
            return mailbox_access(mailbox, credential, self.keys)

    def _release(self, mailbox_id: int, token: str, report: SyncReport) -> SyncResult:
        """Give the box back as it is, still due: the next run resumes the import."""
        with self.db.transaction() as session:
            MailboxRepository(session).release(mailbox_id, token)
        return SyncResult(mailbox_id, "interrupted", None, report)

    def _finish(
        self,
        mailbox_id: int,
        token: str,
        report: SyncReport,
        status: MailboxStatus,
        error: str | None,
        *,
        slow: bool = False,
    ) -> SyncResult:
        now = self.clock()
        with self.db.transaction() as session:
            mailbox = MailboxRepository(session).holds(mailbox_id, token)
            if mailbox is None:  # our lease ran out and another sync took the box over
                return SyncResult(mailbox_id, "lease_lost", error, report)
            mailbox.sync_token = None
            mailbox.sync_lease_until = None
            mailbox.status = status.value
            mailbox.last_error = error
            if status is MailboxStatus.AUTH_FAILED:
                mailbox.next_sync_at = None
                mailbox.failures += 1
            elif error is None:
                mailbox.last_sync_at = now
                mailbox.failures = 0
                mailbox.next_sync_at = self.schedule.after_success(now)
            else:
                mailbox.failures += 1
                mailbox.next_sync_at = (
                    self.schedule.after_permanent_failure(now)
                    if slow
                    else self.schedule.after_failure(now, mailbox.failures)
                )
        if error is not None:
            log.warning("mailbox %s: %s", mailbox_id, error)
        return SyncResult(mailbox_id, status.value, error, report)
