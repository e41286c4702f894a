"""Prometheus metrics of one ``serve`` process, in its own registry (no global state).

Counters count what this process did; the spool and mailbox gauges are read from the database
at scrape time, so every replica reports the same shared queue.
"""

import logging
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy.exc import SQLAlchemyError

from crmmail.storage.database import Database
from crmmail.storage.models import InboundStatus, MailboxStatus
from crmmail.storage.repositories.inbound import InboundRepository
from crmmail.storage.repositories.mailboxes import MailboxRepository

log = logging.getLogger(__name__)


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
            "crmmail_inbound_messages", "Spooled messages by status", labels=["status"]
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
        self.registry.register(StorageCollector(db))

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
