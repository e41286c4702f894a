"""Prometheus metrics of one ``serve`` process, in its own registry (no global state).

Counters count what this process did; the spool and mailbox gauges are read from the database
at scrape time, so every replica reports the same shared queue.

- ``crmmail_messages_accepted_total``: answered ``250`` and spooled.
- ``crmmail_messages_refused_total{reason}``: refused at RCPT or DATA, or sessions cut
  (``crmmail.smtpd.refusals.RefusalReason`` lists the reasons).
- ``crmmail_messages_processed_total{status}``: outcomes of the worker, one per attempt:
  ``done``, ``ignored``, ``queued`` (failed, back in the queue for a retry) or ``dead``.
- ``crmmail_processing_seconds``: histogram of the worker's time per attempt, from the claim of
  a message to its outcome committed (time waiting in the queue is not in it).
- ``crmmail_inbound_messages{status}``: spooled messages by status; ``status="queued"`` is the
  queue depth (messages waiting, due now or after a retry backoff).
- ``crmmail_mailboxes{status}``: connected mailboxes by status.
"""

import logging
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy.exc import SQLAlchemyError

from crmmail.smtpd.refusals import RefusalReason
from crmmail.storage.database import Database
from crmmail.storage.models import InboundStatus, MailboxStatus
from crmmail.storage.repositories.inbound import InboundRepository
from crmmail.storage.repositories.mailboxes import MailboxRepository

log = logging.getLogger(__name__)

# Worker attempts last milliseconds (a note) to seconds (a big message on a busy database).
PROCESSING_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
# Delivery includes the wait in the queue and retries with backoff: up to hours.
DELIVERY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 1800.0, 7200.0)
PROCESSED_STATUSES = (
    InboundStatus.DONE,
    InboundStatus.IGNORED,
    InboundStatus.QUEUED,
    InboundStatus.DEAD,
)


class StorageCollector(Collector):
    """``crmmail_inbound_messages{status}`` and ``crmmail_mailboxes{status}`` from the database."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def collect(self) -> Iterator[GaugeMetricFamily]:
        try:
            with self.db.read() as session:
                spool = InboundRepository(session).count_by_status()
                boxes = MailboxRepository(session).count_by_status()
        except SQLAlchemyError:
            log.warning("metrics: the database did not answer")
            return
        inbound = GaugeMetricFamily(
            "crmmail_inbound_messages",
            'Spooled messages by status; status="queued" is the queue depth',
            labels=["status"],
        )
        for status in InboundStatus:
            inbound.add_metric([status.value], spool.get(status.value, 0))
        yield inbound
        mailboxes = GaugeMetricFamily(
            "crmmail_mailboxes", "Connected mailboxes by status", labels=["status"]
        )
        for box_status in MailboxStatus:
            mailboxes.add_metric([box_status.value], boxes.get(box_status.value, 0))
        yield mailboxes


class Metrics:
    """The registry and the counters the process updates."""

    def __init__(self, db: Database) -> None:
        self.registry = CollectorRegistry()
        self.accepted = Counter(
            "crmmail_messages_accepted",
            "Messages answered 250 and spooled by this process",
            registry=self.registry,
        )
        self.refused = Counter(
            "crmmail_messages_refused",
            "Messages refused (or SMTP sessions cut) by this process, by reason",
            ["reason"],
            registry=self.registry,
        )
        for reason in RefusalReason:  # every reason shows, at 0 until it happens
            self.refused.labels(reason.value)
        self.processed = Counter(
            "crmmail_messages_processed",
            "Worker outcomes by status (queued: failed, back in the queue for a retry)",
            ["status"],
            registry=self.registry,
        )
        for status in PROCESSED_STATUSES:
            self.processed.labels(status.value)
        self.processing_seconds = Histogram(
            "crmmail_processing_seconds",
            "Worker time per attempt, from the claim to the committed outcome",
            buckets=PROCESSING_BUCKETS,
            registry=self.registry,
        )
        self.delivery_seconds = Histogram(
            "crmmail_delivery_seconds",
            "From the spool commit (the 250) to the final outcome (done, ignored or dead)",
            buckets=DELIVERY_BUCKETS,
            registry=self.registry,
        )
        self.registry.register(StorageCollector(db))

    def message_refused(self, reason: RefusalReason) -> None:
        """Count one refusal (the intake's ``on_refused``)."""
        self.refused.labels(reason.value).inc()

    def message_processed(
        self, status: InboundStatus, seconds: float, since_spooled: float
    ) -> None:
        """Count one worker outcome and its times (the worker's ``on_processed``)."""
        self.processed.labels(status.value).inc()
        self.processing_seconds.observe(seconds)
        if status is not InboundStatus.QUEUED:  # a retry is not the end of the message's way
            self.delivery_seconds.observe(since_spooled)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
