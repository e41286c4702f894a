"""The aiosmtpd handler: recipients checked at RCPT, message spooled durably before ``250``.

The handler only decides "accept or refuse" and stores bytes; parsing and CRM work happen in
the worker. Database work runs in a thread, so the event loop keeps serving other sessions and
a client that hangs up cannot stop a commit half-way; a database that does not answer within
``storage_timeout`` gets ``451``. (A message committed for a client that never saw its ``250``
is a duplicate the worker drops, never a loss.) Every failure answers ``451 4.3.0`` without
internal detail: a temporary failure makes the sending MTA retry, which "never lose mail" needs.

Two things keep the database off the hot path: RCPT asks a short-lived cache of account ids
(``crmmail.smtpd.account_ids``), and the spool rows of concurrent sessions are committed
together (``crmmail.smtpd.group_commit``), each ``250`` still waiting for its own message's
commit. A failed spool commit empties the account cache, so that while storage is failing RCPT
reads the database again and answers ``451`` there, before the sender transfers a message.

Each refusal (here and in the listener, through :meth:`IntakeHandler.refused`) is reported to the
``on_refused`` observer with its reason; ``serve`` counts them for ``/metrics``.
"""

import asyncio
import logging
import re
from collections.abc import Callable
from typing import Protocol
from weakref import WeakKeyDictionary

from aiosmtpd.smtp import SMTP, Envelope, Session, TLSSetupException

from crmmail.config import Settings
from crmmail.routing.resolve import Refusal, Route, resolve_async
from crmmail.smtpd import replies
from crmmail.smtpd.account_ids import AccountIdCache
from crmmail.smtpd.group_commit import SpoolCommitter
from crmmail.smtpd.message_id import message_id_of
from crmmail.smtpd.refusals import RefusalObserver, RefusalReason
from crmmail.storage.database import Database
from crmmail.storage.repositories.accounts import AccountRepository
from crmmail.storage.repositories.inbound import SpoolEntry
from crmmail.storage.text import clean_text

log = logging.getLogger(__name__)

# aiosmtpd passes a bare CR, TAB, ESC, DEL... through in HELO and MAIL FROM (only LF ends a
# command line). Stored envelope text is listed to users and may be written into headers, so
# each control character is replaced by U+FFFD: visible, and never a line break.
_CONTROL_CHARACTER = re.compile("[\x00-\x1f\x7f]")

REFUSAL_REPLIES = {
    Refusal.UNKNOWN_ADDRESS: replies.UNKNOWN_ADDRESS,
    Refusal.RELAY_DENIED: replies.RELAY_DENIED,
}
REFUSAL_REASONS = {
    Refusal.UNKNOWN_ADDRESS: RefusalReason.UNKNOWN_ADDRESS,
    Refusal.RELAY_DENIED: RefusalReason.RELAY_DENIED,
}


def envelope_text(value: str) -> str:
    """Envelope text made safe to store: ``clean_text`` (NUL dropped), then no control left.

    >>> envelope_text("bad\\rhelo\\x00\\x1b[0m") == "bad\\ufffdhelo\\ufffd[0m"
    True
    """
    return _CONTROL_CHARACTER.sub("\ufffd", clean_text(value))


def _unanswered_commit_done(commit: "asyncio.Future[list[int]]") -> None:
    """Log how a commit ended whose client got no ``250`` (it hung up, or got a late ``451``)."""
    if commit.cancelled() or commit.exception() is not None:
        log.warning("a spool commit whose client got no 250 failed; it will send again")
    else:
        ids = commit.result()
        log.info("spooled as inbound %s for a client that got no 250 (a duplicate to come)", ids)


class SmtpHooks(Protocol):
    """The hooks aiosmtpd finds by name; a misspelt one would be silently ignored."""

    async def handle_RCPT(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str: ...

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str: ...

    async def handle_exception(self, error: Exception) -> str: ...


class IntakeHandler:
    """Accepts mail for real smart addresses only and spools it before answering ``250``."""

    def __init__(
        self,
        db: Database,
        settings: Settings,
        on_spooled: Callable[[], None] | None = None,
        on_refused: RefusalObserver | None = None,
        account_ids: AccountIdCache | None = None,
        committer: SpoolCommitter | None = None,
    ) -> None:
        self.db = db
        self.settings = settings
        self.on_spooled = on_spooled
        self.on_refused = on_refused
        self.account_ids = account_ids or AccountIdCache(
            self._account_id_for_slug, ttl=settings.recipient_cache_ttl
        )
        self.committer = committer or SpoolCommitter(db)
        self._routes: WeakKeyDictionary[Envelope, list[Route]] = WeakKeyDictionary()

    async def handle_RCPT(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        if len(envelope.rcpt_tos) >= self.settings.max_recipients:
            self.refused(RefusalReason.TOO_MANY_RECIPIENTS)
            return replies.TOO_MANY_RECIPIENTS
        try:
            verdict = await resolve_async(
                address, self.settings.smart_domains, self._cached_account_id
            )
        except Exception:
            log.exception("RCPT %r from %s: lookup failed", address, session.peer)
            self.refused(RefusalReason.TEMPORARY_FAILURE)
            return replies.TEMPORARY_FAILURE
        if isinstance(verdict, Refusal):
            log.info("RCPT %r from %s refused: %s", address, session.peer, verdict.value)
            self.refused(REFUSAL_REASONS[verdict])
            return REFUSAL_REPLIES[verdict]
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        self._routes.setdefault(envelope, []).append(verdict)
        return replies.RCPT_OK

    async def _cached_account_id(self, slug: str) -> int | None:
        """The account a slug names, from the short-lived cache (``smtpd.account_ids``)."""
        return await self.account_ids.account_id(slug, self.settings.storage_timeout)

    def _account_id_for_slug(self, slug: str) -> int | None:
        with self.db.read() as session:
            return AccountRepository(session).id_for_slug(slug)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or b""
        entries = self._spool_entries(session, envelope, self._routes.pop(envelope, []), raw)
        # aiosmtpd cancels this hook when the client hangs up; the queued commit goes on without
        # it, so that it is never cut half-way nor dropped before it began (the client's retry
        # is a duplicate the worker drops).
        commit = self.committer.spool(entries)
        try:
            ids = await asyncio.wait_for(asyncio.shield(commit), self.settings.storage_timeout)
        except asyncio.CancelledError:
            log.warning("DATA from %s: client gone; the spool commit goes on", session.peer)
            commit.add_done_callback(_unanswered_commit_done)
            raise
        except TimeoutError:
            log.error("DATA from %s: spool commit too slow; answered 451", session.peer)
            commit.add_done_callback(_unanswered_commit_done)
            return self._storage_failed()
        except Exception:
            log.exception("DATA from %s: spool commit failed; answered 451", session.peer)
            return self._storage_failed()
        log.info(
            "DATA from %s: %d bytes spooled as inbound %s",
            session.peer,
            len(raw),
            ids,
            extra={"inbound_id": ids[0] if len(ids) == 1 else ids},
        )
        if self.on_spooled is not None:
            self.on_spooled()
        return replies.QUEUED

    def _spool_entries(
        self, session: Session, envelope: Envelope, routes: list[Route], raw: bytes
    ) -> list[SpoolEntry]:
        """One spool row per account addressed (a message may reach several accounts)."""
        by_account: dict[int, list[str]] = {}
        for accepted, address in zip(routes, envelope.rcpt_tos, strict=True):
            by_account.setdefault(accepted.account_id, []).append(address)
        peer = session.peer
        peer_text = f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else str(peer or "")
        message_id = message_id_of(raw)  # a bounded scan of the header block, no parsing
        return [
            SpoolEntry(
                account_id=account_id,
                peer=clean_text(peer_text)[:300],
                helo=envelope_text(session.host_name or "")[:300],
                mail_from=envelope_text(envelope.mail_from or ""),
                rcpt_tos=[envelope_text(address) for address in addresses],
                raw=raw,
                message_id=message_id,
            )
            for account_id, addresses in by_account.items()
        ]

    def _storage_failed(self) -> str:
        """A spool commit failed: 451, and RCPT reads the database again (see the docstring)."""
        self.account_ids.forget()
        self.refused(RefusalReason.TEMPORARY_FAILURE)
        return replies.TEMPORARY_FAILURE

    async def handle_exception(self, error: Exception) -> str:
        """Any unexpected error in a session: a temporary failure, no internal text."""
        if isinstance(error, TLSSetupException):  # aiosmtpd hangs up; common on the internet
            log.info("STARTTLS handshake failed: %s", error.__cause__)
            self.refused(RefusalReason.TLS_HANDSHAKE)
            return replies.TEMPORARY_FAILURE
        log.error("SMTP session error: %s", type(error).__name__, exc_info=error)
        self.refused(RefusalReason.TEMPORARY_FAILURE)
        return replies.TEMPORARY_FAILURE

    def refused(self, reason: RefusalReason) -> None:
        """Report one refusal (a reply, or a session cut) to the observer, if any."""
        if self.on_refused is not None:
            self.on_refused(reason)
