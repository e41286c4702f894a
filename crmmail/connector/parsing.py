"""Parse fetched messages in worker processes, so that parsing overlaps fetching and storing.

``parse_message`` is pure Python: in a thread it would only queue for the interpreter lock
behind the IMAP reads and the inserts, so a first import spreads it over worker processes.

The workers are forked (a few milliseconds, the parser already imported) when the import
starts, before its reader thread exists, and only in a process that has no other thread
(``crmmail mailbox sync``, ``crmmail sync``; never inside ``serve``). ``spawn`` and
``forkserver`` would re-run the main module in every worker, which costs more than the parsing
saves and breaks scripts without a ``__main__`` guard. A worker only runs ``parse_mail`` on
the bytes it is sent and returns what it found: it touches no database connection, socket or
log handler inherited from us. Each sync starts its own few and stops them at its end; an
import of one batch or less is parsed here. Should a worker die (the pool is then broken), the
rest of the sync parses here.
"""

import logging
import math
import multiprocessing
import os
import threading
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from types import TracebackType

from crmmail.connector.capture import Incoming, ParsedMail, parse_mail

log = logging.getLogger(__name__)

MAX_WORKERS = 2


def worker_count() -> int:
    """Parser processes worth starting here (0: parse in this process).

    Only a process with one thread forks: in ``serve`` other threads (the SMTP loop, the worker,
    the HTTP endpoint) may hold a lock at the moment of the fork, which the child would inherit
    held, and a parser stuck on it would stop the sync. There the import parses in-process.
    """
    cores = os.cpu_count() or 1
    if cores < 2 or threading.active_count() > 1:
        return 0
    return min(MAX_WORKERS, cores)


class MailParser:
    """Parses batches of raw messages into ``Incoming``; a context manager that owns its pool."""

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self._pool: ProcessPoolExecutor | None = None

    def __enter__(self) -> "MailParser":
        if self.workers > 0:
            context = multiprocessing.get_context("fork")
            self._pool = ProcessPoolExecutor(self.workers, mp_context=context)
            self._pool.submit(len, b"").result()  # fork every worker now, from this thread
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def parse(self, raws: list[bytes]) -> list[Incoming]:
        """Each message parsed, in order."""
        return self.submit(raws).result()

    def submit(self, raws: list[bytes]) -> "ParseJob":
        """Start parsing in the workers (at once) or here (when the result is asked for)."""
        if self._pool is None or len(raws) < 2:
            return ParseJob(self, raws, None)
        chunk = math.ceil(len(raws) / self.workers)
        try:
            return ParseJob(self, raws, self._pool.map(parse_mail, raws, chunksize=chunk))
        except BrokenProcessPool:
            self._broken()
            return ParseJob(self, raws, None)

    def _broken(self) -> None:
        log.warning("a parser process died: the rest of this sync parses in-process")
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None


class ParseJob:
    """A batch being parsed; ``result()`` waits for it."""

    def __init__(
        self, parser: MailParser, raws: list[bytes], running: Iterator[ParsedMail] | None
    ) -> None:
        self._parser = parser
        self._raws = raws
        self._running = running

    def result(self) -> list[Incoming]:
        parsed: list[ParsedMail] | None = None
        if self._running is not None:
            try:
                parsed = list(self._running)
            except BrokenProcessPool:
                self._parser._broken()
        if parsed is None:
            return [Incoming.parse(raw) for raw in self._raws]
        return [Incoming.of(raw, mail) for raw, mail in zip(self._raws, parsed, strict=True)]
