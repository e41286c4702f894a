"""The worker: claims spooled messages one at a time and runs each through the pipeline.

Each message takes three short transactions: the claim (a lease, so a crashed worker's message
is taken again), the pipeline with the final status, and, only if the pipeline raised, the
failure record (back to the queue with a backoff, or ``dead`` after the last attempt). Parsing
happens before the pipeline's transaction touches the database, so no lock is held meanwhile.

While draining (``run_until_idle``, ``run``), the claim of the next message rides in the
transaction that records the outcome of the current one: one commit (one fsync on SQLite) less
per message. The claim is still committed before that message's pipeline starts, so a crash
during its processing counts an attempt as before; a worker told to stop first finishes the
message it has claimed ahead.

Each outcome (``done``, ``ignored``, back to ``queued`` for a retry, ``dead``) goes to the
optional ``on_processed`` callable (``serve`` feeds /metrics) with two durations: seconds from
the claim to the outcome, and seconds since the message was spooled (its ``250``).

A failure is logged as one line at ERROR, and recorded as the message's ``last_error``, from
``failure_summary``: the exception's type, a short reason and where, never the statement, its
parameters or the message's text. The frames it passed are logged at DEBUG, on one line too.
"""

import logging
import threading
import time
from collections.abc import Callable
from datetime import timedelta

from sqlalchemy.exc import SQLAlchemyError

from crmmail.config import Settings
from crmmail.processor.context import MessageContext
from crmmail.processor.pipeline import SMART_ADDRESS_PIPELINE, run_pipeline
from crmmail.storage.base import utcnow
from crmmail.storage.database import Database
from crmmail.storage.failures import failure_frames, failure_summary
from crmmail.storage.models import InboundStatus
from crmmail.storage.repositories.inbound import ClaimedMessage, InboundRepository

log = logging.getLogger(__name__)

MAX_ERROR_TEXT = 2000


class LeaseLost(Exception):
    """Another worker took the message over (our lease ran out); our work is rolled back."""


class Worker:
    """Drains the spool; any number of workers may share one database."""

    def __init__(
        self,
        db: Database,
        settings: Settings,
        pipeline: tuple[str, ...] = SMART_ADDRESS_PIPELINE,
        *,
        on_processed: Callable[[InboundStatus, float, float], None] | None = None,
    ) -> None:
        self.db = db
        self.settings = settings
        self.pipeline = pipeline
        self.on_processed = on_processed
        self.wakeup = threading.Event()
        self._claimed_ahead: ClaimedMessage | None = None

    def process_next(self, *, claim_ahead: bool = False) -> bool:
        """Process one due message; ``False`` when none is due.

        With ``claim_ahead`` the next due message is claimed in the transaction that finishes
        this one; the next call processes it. Only a caller that keeps calling may ask for it.
        """
        claimed, self._claimed_ahead = self._claimed_ahead, None
        if claimed is None:
            with self.db.transaction() as session:
                claimed = self._claim(InboundRepository(session))
        if claimed is None:
            return False
        started = time.monotonic()
        about = {"inbound_id": claimed.id}  # every log line about the message names it
        status: InboundStatus | None
        try:
            status = self._process(claimed, claim_ahead)
        except LeaseLost:
            log.warning(
                "inbound %d: lease lost to another worker; left to it", claimed.id, extra=about
            )
            status = None
        except Exception as error:  # noqa: BLE001  (recorded: the attempt counts, the mail is kept)
            log.error(
                "inbound %d: processing failed (attempt %d): %s",
                claimed.id,
                claimed.attempts,
                failure_summary(error),
                extra=about,
            )
            log.debug("inbound %d: failed in %s", claimed.id, failure_frames(error), extra=about)
            status = self._record_failure(claimed, error)
        if status is not None and self.on_processed is not None:
            since_spooled = (utcnow() - (claimed.received_at or utcnow())).total_seconds()
            self.on_processed(status, time.monotonic() - started, max(0.0, since_spooled))
        return True

    def _claim(self, spool: InboundRepository) -> ClaimedMessage | None:
        return spool.claim_next(
            timedelta(seconds=self.settings.lease_seconds), self.settings.max_attempts
        )

    def _process(self, claimed: ClaimedMessage, claim_ahead: bool = False) -> InboundStatus:
        with self.db.transaction() as session:
            ctx = MessageContext(
                session=session,
                inbound=claimed,
                smart_domains=self.settings.smart_domains,
                settings=self.settings,
            )
            outcome = run_pipeline(ctx, self.pipeline)
            message_id = ctx.parsed.message_id if ctx.parsed else None
            spool = InboundRepository(session)
            finished = spool.finish(
                claimed, outcome.status, outcome.reason, message_id, ctx.message_key
            )
            if not finished:
                raise LeaseLost()
            if claim_ahead:
                self._claimed_ahead = self._claim(spool)
        log.info(
            "inbound %d: %s%s",
            claimed.id,
            outcome.status.value,
            f" ({outcome.reason})" if outcome.reason else "",
            extra={"inbound_id": claimed.id},
        )
        return outcome.status

    def _record_failure(self, claimed: ClaimedMessage, error: Exception) -> InboundStatus | None:
        text = failure_summary(error)[:MAX_ERROR_TEXT]
        about = {"inbound_id": claimed.id}
        with self.db.transaction() as session:
            status = InboundRepository(session).record_failure(
                claimed, text, self.settings.max_attempts, self.settings.retry_base_delay
            )
            if status is None:
                log.warning(
                    "inbound %d: lease lost to another worker; failure not recorded",
                    claimed.id,
                    extra=about,
                )
            elif status is InboundStatus.DEAD:
                log.error(
                    "inbound %d: dead after %d attempts", claimed.id, claimed.attempts, extra=about
                )
        return status

    def run_until_idle(self) -> int:
        """Process every due message, then return how many were taken."""
        count = 0
        while self.process_next(claim_ahead=True):
            count += 1
        return count

    def run(self, stop: threading.Event) -> None:
        """Work until ``stop`` is set; sleeps when idle until woken or the poll interval passes."""
        while not stop.is_set() or self._claimed_ahead is not None:
            self.wakeup.clear()  # before looking: a message spooled from now on wakes us
            try:
                worked = self.process_next(claim_ahead=not stop.is_set())
            except SQLAlchemyError as error:
                log.error("worker: database unavailable (%s); retrying", failure_summary(error))
                log.debug("worker: failed in %s", failure_frames(error))
                worked = False
            except Exception as error:  # noqa: BLE001  (the worker outlives any bug; mail is kept)
                log.error("worker: unexpected error (%s); retrying", failure_summary(error))
                log.debug("worker: failed in %s", failure_frames(error))
                worked = False
            if not worked and not stop.is_set():
                self.wakeup.wait(self.settings.worker_idle_poll)
