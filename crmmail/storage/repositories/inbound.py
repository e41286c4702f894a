"""The spool of received messages: store, claim with a lease, finish, retry, list."""

import hashlib
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cached_property
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, func, insert, or_, select, update
from sqlalchemy.orm import Session

from crmmail.storage.base import utcnow
from crmmail.storage.models import InboundMessage, InboundStatus

CLAIM_RACES = 10  # claims lost to other workers before giving up for this round
MAX_RETRY_DELAY = 3600.0  # seconds


@dataclass(frozen=True)
class SpoolEntry:
    """What the SMTP intake hands to the spool for one account."""

    account_id: int
    peer: str
    helo: str
    mail_from: str
    rcpt_tos: list[str]
    raw: bytes
    message_id: str | None = None  # read from the header block at intake; the worker's replaces it

    @cached_property
    def sha256(self) -> str:
        return hashlib.sha256(self.raw).hexdigest()


@dataclass(frozen=True)
class ClaimedMessage:
    """A snapshot of a claimed spool row, usable outside the transaction that claimed it."""

    id: int
    token: str
    account_id: int
    mail_from: str
    rcpt_tos: list[str]
    raw: bytes
    sha256: str
    attempts: int
    peer: str = ""  # "ip:port" of the SMTP client
    helo: str = ""
    received_at: datetime | None = None  # when the intake spooled it (answered 250)


def _spool_row(entry: SpoolEntry) -> dict[str, object]:
    """The columns of a new spool row."""
    return {
        "account_id": entry.account_id,
        "peer": entry.peer,
        "helo": entry.helo,
        "mail_from": entry.mail_from,
        "rcpt_tos": list(entry.rcpt_tos),
        "raw": entry.raw,
        "size": len(entry.raw),
        "sha256": entry.sha256,
        "message_id": entry.message_id,
        "status": InboundStatus.QUEUED.value,
    }


def _holds(token: str | None) -> ColumnElement[bool]:
    """The row is still in the state we read: same claim token (or still unclaimed)."""
    if token is None:
        return InboundMessage.claim_token.is_(None)
    return InboundMessage.claim_token == token


class InboundRepository:
    """Reads and writes spooled messages inside the caller's transaction."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def spool(self, entries: Iterable[SpoolEntry]) -> list[int]:
        """Store received messages as ``queued``; returns their ids, in the order given.

        One multi-row INSERT ... RETURNING for all of them (the intake commits the messages of
        concurrent sessions together), without the ORM's per-object bookkeeping.
        """
        rows = [_spool_row(entry) for entry in entries]
        if not rows:
            return []
        inserted = insert(InboundMessage).returning(InboundMessage.id, sort_by_parameter_order=True)
        return list(self.session.scalars(inserted, rows))

    def get(self, inbound_id: int) -> InboundMessage | None:
        return self.session.get(InboundMessage, inbound_id)

    def claim_next(
        self, lease: timedelta, max_attempts: int, now: datetime | None = None
    ) -> ClaimedMessage | None:
        """Take the next due message for this worker, or ``None`` when there is none.

        Due means queued with ``next_attempt_at`` passed, or processing with an expired lease
        (its worker died). On PostgreSQL ``FOR UPDATE SKIP LOCKED`` lets any number of workers
        claim side by side; the conditional UPDATE keeps the claim exclusive on SQLite too, and a
        claim lost to another worker moves on to the next candidate.
        """
        now = now or utcnow()
        for _ in range(CLAIM_RACES):
            row = self.session.execute(self._next_due(now)).first()
            if row is None:
                return None
            if row.attempts >= max_attempts:  # its worker died during every attempt
                self._give_up(row.id, row.claim_token, row.attempts)
                continue
            token = secrets.token_hex(16)
            claimed = self.session.execute(
                update(InboundMessage)
                .where(InboundMessage.id == row.id, _holds(row.claim_token))
                .values(
                    status=InboundStatus.PROCESSING.value,
                    lease_until=now + lease,
                    attempts=row.attempts + 1,
                    claim_token=token,
                )
                .execution_options(synchronize_session=False)
            )
            if claimed.rowcount == 1:  # type: ignore[attr-defined]
                return ClaimedMessage(
                    id=row.id,
                    token=token,
                    account_id=row.account_id,
                    mail_from=row.mail_from,
                    rcpt_tos=list(row.rcpt_tos),
                    raw=row.raw,
                    sha256=row.sha256,
                    attempts=row.attempts + 1,
                    peer=row.peer,
                    helo=row.helo,
                    received_at=row.received_at,
                )
        return None

    def _next_due(self, now: datetime) -> Select[*tuple[Any, ...]]:
        """The next due row with what a claim snapshots, read in the same statement."""
        due = or_(
            and_(
                InboundMessage.status == InboundStatus.QUEUED.value,
                InboundMessage.next_attempt_at <= now,
            ),
            and_(
                InboundMessage.status == InboundStatus.PROCESSING.value,
                InboundMessage.lease_until < now,
            ),
        )
        query: Select[*tuple[Any, ...]] = (
            select(
                InboundMessage.id,
                InboundMessage.attempts,
                InboundMessage.claim_token,
                InboundMessage.account_id,
                InboundMessage.mail_from,
                InboundMessage.rcpt_tos,
                InboundMessage.raw,
                InboundMessage.sha256,
                InboundMessage.peer,
                InboundMessage.helo,
                InboundMessage.received_at,
            )
            .where(due)
            .order_by(InboundMessage.next_attempt_at, InboundMessage.id)
            .limit(1)
        )
        if self.session.get_bind().dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True)
        return query

    def _give_up(self, inbound_id: int, token: str | None, attempts: int) -> None:
        self.session.execute(
            update(InboundMessage)
            .where(InboundMessage.id == inbound_id, _holds(token))
            .values(
                status=InboundStatus.DEAD.value,
                reason="error",
                last_error=f"gave up: the worker stopped during each of {attempts} attempts",
                lease_until=None,
                claim_token=None,
                processed_at=utcnow(),
            )
            .execution_options(synchronize_session=False)
        )

    def record_authentication(self, inbound_id: int, results: str, disposition: str | None) -> None:
        """Keep our Authentication-Results value and what the DMARC policy did on the row."""
        self.session.execute(
            update(InboundMessage)
            .where(InboundMessage.id == inbound_id)
            .values(auth_results=results, auth_disposition=disposition)
            .execution_options(synchronize_session=False)
        )

    def finish(
        self,
        claimed: ClaimedMessage,
        status: InboundStatus,
        reason: str | None,
        message_id: str | None,
        message_key: str | None,
    ) -> bool:
        """Record the outcome of a claimed message; ``False`` if the claim was lost meanwhile."""
        result = self.session.execute(
            update(InboundMessage)
            .where(InboundMessage.id == claimed.id, _holds(claimed.token))
            .values(
                status=status.value,
                reason=reason,
                message_id=message_id,
                message_key=message_key,
                lease_until=None,
                claim_token=None,
                processed_at=utcnow(),
                updated_at=utcnow(),
            )
            .execution_options(synchronize_session=False)
        )
        return bool(result.rowcount == 1)  # type: ignore[attr-defined]

    def record_failure(
        self, claimed: ClaimedMessage, error: str, max_attempts: int, base_delay: float
    ) -> InboundStatus | None:
        """A failed attempt: back to the queue with a backoff, or ``dead`` after the last one.

        Returns the new status, or ``None`` when the claim was lost meanwhile (the message is
        another worker's now and is left alone).
        """
        now = utcnow()
        if claimed.attempts >= max_attempts:
            status = InboundStatus.DEAD
            changes = {"status": status.value, "reason": "error", "processed_at": now}
        else:
            status = InboundStatus.QUEUED
            delay = min(base_delay * 2 ** (claimed.attempts - 1), MAX_RETRY_DELAY)
            changes = {"status": status.value, "next_attempt_at": now + timedelta(seconds=delay)}
        result = self.session.execute(
            update(InboundMessage)
            .where(InboundMessage.id == claimed.id, _holds(claimed.token))
            .values(last_error=error, lease_until=None, claim_token=None, updated_at=now, **changes)
            .execution_options(synchronize_session=False)
        )
        return status if result.rowcount == 1 else None  # type: ignore[attr-defined]

    def requeue(self, inbound_id: int) -> InboundMessage | None:
        """Put a message back in the queue for a fresh round of attempts."""
        message = self.session.get(InboundMessage, inbound_id)
        if message is None:
            return None
        message.status = InboundStatus.QUEUED.value
        message.reason = None
        message.attempts = 0
        message.next_attempt_at = utcnow()
        message.lease_until = None
        message.claim_token = None
        return message

    def count_by_status(self) -> dict[str, int]:
        """How many spooled messages are in each status (all accounts)."""
        rows = self.session.execute(
            select(InboundMessage.status, func.count()).group_by(InboundMessage.status)
        )
        return {status: int(count) for status, count in rows}

    def list_for_account(self, account_id: int) -> list[InboundMessage]:
        return list(
            self.session.scalars(
                select(InboundMessage)
                .where(InboundMessage.account_id == account_id)
                .order_by(InboundMessage.id)
            )
        )

    def note_found_no_card(self, account_id: int, message_key: str) -> bool:
        """Whether an earlier copy of this message asked for a note and found no card
        (it ended ``ignored: no_match``, so the ledger does not hold its note action)."""
        found = self.session.scalar(
            select(InboundMessage.id)
            .where(
                InboundMessage.account_id == account_id,
                InboundMessage.message_key == message_key,
                InboundMessage.status == InboundStatus.IGNORED.value,
                InboundMessage.reason == "no_match",
            )
            .limit(1)
        )
        return found is not None
