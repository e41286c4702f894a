"""On SQLite, the intake's spool commits go before the other writers of the ``serve`` process.

SQLite has one writer at a time, and a writer that finds the database locked does not queue:
its busy handler sleeps (1, 2, 5, 10... up to 100 ms) and tries again. The worker, which
writes back to back (claim, then the outcome, then the next claim), takes the lock again the
moment it lets it go, so a spool commit, and every ``250`` waiting on it, could sleep through
many of the worker's transactions. :class:`WritePriority` lets the intake say "spooling" while
it has messages queued or being committed; :class:`SpoolFirstDatabase`, the database handle
``serve`` gives the worker (and other background writers), waits for that to end before each
transaction begins, at most ``MAX_WAIT`` seconds, so the worker is slowed but never starved.
Both sides also take one in-process lock (``WritePriority.writing``) around their write
transactions (a background writer from its first statement on), so that one waits for the
other on that lock, woken the moment it is free, instead of in SQLite's sleeping busy handler.

PostgreSQL locks rows, not the database: the worker and the intake write side by side, and
``serve`` does not use this there (tried: holding the worker back did not raise the intake rate).
"""

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy.orm import Session

from crmmail.storage.database import BEFORE_WRITE_OPTION, Database

MAX_WAIT = 0.25  # seconds a background writer waits for the intake at most, per transaction


class WritePriority:
    """Whether the intake is spooling; other writers wait for it (thread-safe)."""

    def __init__(self, max_wait: float = MAX_WAIT) -> None:
        self.max_wait = max_wait
        self._changed = threading.Condition()
        self._spooling = False
        # One write transaction of this process at a time (reentrant: a writer may nest).
        self.writing = threading.RLock()

    def set_spooling(self, spooling: bool) -> None:
        with self._changed:
            self._spooling = spooling
            if not spooling:
                self._changed.notify_all()

    def wait_turn(self) -> None:
        """Return once the intake is not spooling, or after ``max_wait`` seconds."""
        with self._changed:
            self._changed.wait_for(lambda: not self._spooling, self.max_wait)


class SpoolFirstDatabase(Database):
    """The same engine as a ``Database``, whose write transactions let the intake go first.

    The in-process write lock is taken when SQLite's write transaction begins, at the
    transaction's first statement, not when the block is entered: the worker opens its
    transaction before the steps that ask DNS (sender authentication), and the intake must not
    wait for those.
    """

    def __init__(self, db: Database, priority: WritePriority) -> None:
        super().__init__(db.engine.execution_options(**{BEFORE_WRITE_OPTION: self._writes}))
        self.priority = priority
        self._held = threading.local()  # how often this thread took ``writing``

    def _writes(self) -> None:
        self.priority.writing.acquire()
        self._held.count = getattr(self._held, "count", 0) + 1

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        self.priority.wait_turn()
        try:
            with super().transaction() as session:
                yield session
        finally:
            for _ in range(getattr(self._held, "count", 0)):
                self.priority.writing.release()
            self._held.count = 0
