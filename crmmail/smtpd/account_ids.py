"""A short-lived cache of account ids by slug, so that RCPT rarely waits for the database.

Every ``RCPT TO`` needs the account behind a smart address's slug. An account's id is kept
for ``ttl`` seconds (``CRMMAIL_RECIPIENT_CACHE_TTL``, 5 by default; 0 turns the cache off) in a
bounded, least-recently-used table. "No such account" is never kept: that answer is a ``550``,
a bounce, and an account just created by another process must not get one; a slug that names
no account is asked of the database each time, as before the cache.

Staleness: a rename (or a new account) made in this process is seen at once: the account
services call :meth:`AccountIdCache.forget` once their transaction has committed, and a lookup
that was reading the database meanwhile does not store its (possibly older) answer. A rename
made by another process (``crmmail account rename``, another ``serve`` replica) is seen here
within ``ttl`` seconds: until then the old address may still be accepted (its mail is stored
for the account, never lost); the new address is accepted at once. A storage failure empties
the cache (see ``IntakeHandler``), so that RCPT answers from the database's health again.

A stale answer can only ever name the right account: a slug belongs for good to the first
account that had it (``reserved_slug``; ``crmmail account create`` and ``rename`` refuse a slug
another account had), so a slug that once named account 7 names account 7 or nothing, in every
process, for as long as any cache may remember it. Staleness never sends mail to another tenant;
at worst the renamed account receives, for ``ttl`` seconds, mail to an address it gave up.
"""

import asyncio
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

DEFAULT_TTL = 5.0  # seconds
DEFAULT_MAX_ENTRIES = 10_000

AccountIdLoader = Callable[[str], int | None]
Clock = Callable[[], float]


@dataclass(frozen=True)
class _Known:
    account_id: int
    expires_at: float


class AccountIdCache:
    """Account id (or ``None``) per slug, read through ``load`` (run in a thread) on a miss."""

    def __init__(
        self,
        load: AccountIdLoader,
        ttl: float = DEFAULT_TTL,
        max_entries: int = DEFAULT_MAX_ENTRIES,
        clock: Clock = time.monotonic,
    ) -> None:
        self.load = load
        self.ttl = ttl
        self.max_entries = max_entries
        self.clock = clock
        self._known: OrderedDict[str, _Known] = OrderedDict()
        self._generation = 0  # moves on every forget(): answers read before it are not stored
        self._lock = threading.Lock()  # forget() may come from any thread

    async def account_id(self, slug: str, timeout: float | None = None) -> int | None:
        """The id of the account named ``slug``, or ``None`` when there is none.

        A miss reads the database in a thread, for at most ``timeout`` seconds (``TimeoutError``).
        """
        with self._lock:
            known = self._known.get(slug)
            if known is not None and known.expires_at > self.clock():
                self._known.move_to_end(slug)
                return known.account_id
            generation = self._generation
        account_id = await asyncio.wait_for(asyncio.to_thread(self.load, slug), timeout)
        self._remember(slug, account_id, generation)
        return account_id

    def forget(self, *slugs: str) -> None:
        """Drop what is known of these slugs (all of them when none is given)."""
        with self._lock:
            self._generation += 1
            if not slugs:
                self._known.clear()
            for slug in slugs:
                self._known.pop(slug, None)

    def __len__(self) -> int:
        return len(self._known)

    def _remember(self, slug: str, account_id: int | None, generation: int) -> None:
        if self.ttl <= 0 or account_id is None:  # a refusal is never answered from memory
            return
        with self._lock:
            if generation != self._generation:  # forgotten while we read: maybe stale
                return
            self._known[slug] = _Known(account_id, self.clock() + self.ttl)
            self._known.move_to_end(slug)
            while len(self._known) > self.max_entries:
                self._known.popitem(last=False)
