"""Group commit: the spool rows of concurrent SMTP sessions are written in one transaction.

A durable commit costs an fsync (SQLite) or a WAL flush and a round trip (PostgreSQL) however
few rows it carries, so one transaction per message caps the intake at the disk's flush rate.
:meth:`SpoolCommitter.spool` queues a message's entries and returns a future; one drain task
at a time takes what is queued (up to ``MAX_BATCH_MESSAGES`` messages or ``MAX_BATCH_BYTES``),
commits it in a thread, and resolves each message's future with its row ids. Messages that
arrive while a commit runs form the next batch, so batches grow with the load and a lone
message waits for nobody.

Every ``250`` still waits for its own message's durable commit: a future is resolved only once
the transaction that holds its rows has committed. When a batch fails, a storage outage
(``OperationalError``: connection lost, database locked or read-only) fails each of its
messages (``451``); any other error may come from one message (a row the database refuses), so
each message is retried alone, in its own transaction, and only the ones that fail again get an
error. A message's rows (one per account) are stored together or not at all, as before.

The drain task never looks at who waits: a session whose client hangs up leaves its message in
the queue, and a commit once queued is carried out (the client's retry is a duplicate the
worker drops, never a loss).
"""

import asyncio
import logging
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass, field

from sqlalchemy.exc import OperationalError

from crmmail.storage.database import Database
from crmmail.storage.repositories.inbound import InboundRepository, SpoolEntry
from crmmail.storage.write_priority import WritePriority

log = logging.getLogger(__name__)

MAX_BATCH_MESSAGES = 64
MAX_BATCH_BYTES = 32 * 1024 * 1024  # a batch takes at least one message, however large

BatchObserver = Callable[[int], None]  # told the size of each batch, stored or not


@dataclass
class _Queued:
    entries: list[SpoolEntry]
    done: "asyncio.Future[list[int]]"
    size: int = field(init=False)

    def __post_init__(self) -> None:
        self.size = sum(len(entry.raw) for entry in self.entries)


class SpoolCommitter:
    """Commits the spool entries of concurrent messages together; one instance per event loop."""

    def __init__(
        self,
        db: Database,
        max_messages: int = MAX_BATCH_MESSAGES,
        max_bytes: int = MAX_BATCH_BYTES,
        on_batch: BatchObserver | None = None,
        priority: WritePriority | None = None,
    ) -> None:
        self.db = db
        self.priority = priority
        self.max_messages = max_messages
        self.max_bytes = max_bytes
        self.on_batch = on_batch
        self.waiting = 0  # messages queued or being committed
        self._queue: list[_Queued] = []
        self._drain: asyncio.Task[None] | None = None

    def spool(self, entries: list[SpoolEntry]) -> "asyncio.Future[list[int]]":
        """Queue one message's entries; the future gives their row ids once committed."""
        loop = asyncio.get_running_loop()
        queued = _Queued(entries, loop.create_future())
        self._queue.append(queued)
        self.waiting += 1
        if self._drain is None or self._drain.done():
            if self.priority is not None:
                self.priority.set_spooling(True)
            self._drain = loop.create_task(self._drain_queue(), name="crmmail-spool-commit")
        return queued.done

    async def flushed(self) -> None:
        """Wait until every queued message has been committed (or has failed)."""
        while self._drain is not None and not self._drain.done():
            await asyncio.wait([self._drain])

    async def _drain_queue(self) -> None:
        try:
            await self._commit_queued()
        finally:
            if self.priority is not None:
                self.priority.set_spooling(False)

    async def _commit_queued(self) -> None:
        while self._queue:
            batch = self._next_batch()
            try:
                outcomes = await asyncio.to_thread(self._commit, [q.entries for q in batch])
            except asyncio.CancelledError:  # the loop is closing: nobody waits for a reply
                for queued in batch + self._queue:
                    queued.done.cancel()
                self._queue.clear()
                self.waiting = 0
                raise
            self.waiting -= len(batch)
            if self.on_batch is not None:
                self.on_batch(len(batch))
            for queued, outcome in zip(batch, outcomes, strict=True):
                if queued.done.done():  # cancelled by its owner: nothing to tell
                    continue
                if isinstance(outcome, BaseException):
                    queued.done.set_exception(outcome)
                else:
                    queued.done.set_result(outcome)

    def _next_batch(self) -> list[_Queued]:
        taken, size = 0, 0
        for queued in self._queue:
            if taken and (taken >= self.max_messages or size + queued.size > self.max_bytes):
                break
            taken += 1
            size += queued.size
        batch, self._queue = self._queue[:taken], self._queue[taken:]
        return batch

    def _commit(self, messages: list[list[SpoolEntry]]) -> list[list[int] | Exception]:
        """Each message's row ids, or the error that kept it out of the spool (in a thread).

        The errors are not logged here: the handler logs each one with its session.
        """
        try:
            return self._commit_together(messages)
        except OperationalError as error:  # the database is away: no message can be stored
            return [error] * len(messages)
        except Exception as error:  # noqa: BLE001  (perhaps one message's row: isolate it)
            if len(messages) == 1:
                return [error]
            log.warning(
                "a spool batch of %d messages failed (%s); committing each alone",
                len(messages),
                type(error).__name__,
            )
        outcomes: list[list[int] | Exception] = []
        for entries in messages:
            try:
                outcomes.extend(self._commit_together([entries]))
            except Exception as error:  # noqa: BLE001  (answered 451, logged by the handler)
                outcomes.append(error)
        return outcomes

    def _commit_together(self, messages: list[list[SpoolEntry]]) -> list[list[int] | Exception]:
        """Every message's rows in one transaction; each message's row ids."""
        writing = nullcontext() if self.priority is None else self.priority.writing
        with writing, self.db.transaction() as session:
            rows = [entry for entries in messages for entry in entries]
            ids = InboundRepository(session).spool(rows)
        outcomes: list[list[int] | Exception] = []
        for entries in messages:
            outcomes.append(ids[: len(entries)])
            ids = ids[len(entries) :]
        return outcomes
