"""The spool of received messages: store, claim with a lease, finish, retry, list."""

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cached_property

from sqlalchemy import and_, or_, select, update
from sqlalchemy.orm import Session

from crmmail.storage.base import utcnow
from crmmail.storage.models import AppliedAction, InboundMessage, InboundStatus


@dataclass(frozen=True)
class SpoolEntry:
    """What the SMTP intake hands to the spool for one account."""

    account_id: int
    peer: str
    helo: str
    mail_from: str
    rcpt_tos: list[str]
    raw: bytes

    @cached_property
    def sha256(self) -> str:
        return hashlib.sha256(self.raw).hexdigest()


@dataclass(frozen=True)
class ClaimedMessage:
    """A snapshot of a claimed spool row, usable outside the transaction that claimed it."""

    id: int
    account_id: int
    mail_from: str
    rcpt_tos: list[str]
    raw: bytes
    sha256: str
    attempts: int


class InboundRepository:
    """Reads and writes spooled messages inside the caller's transaction."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def spool(self, entries: Iterable[SpoolEntry]) -> list[int]:
        """Store received messages as ``queued``; returns their ids."""
        rows = [
            InboundMessage(
                account_id=entry.account_id,
                peer=entry.peer,
                helo=entry.helo,
                mail_from=entry.mail_from,
                rcpt_tos=list(entry.rcpt_tos),
                raw=entry.raw,
                size=len(entry.raw),
                sha256=entry.sha256,
                status=InboundStatus.QUEUED.value,
            )
            for entry in entries
        ]
        self.session.add_all(rows)
        self.session.flush()
        return [row.id for row in rows]

    def get(self, inbound_id: int) -> InboundMessage | None:
        return self.session.get(InboundMessage, inbound_id)

    def claim_next(self, lease: timedelta, now: datetime | None = None) -> ClaimedMessage | None:
        """Take the next due message for this worker, or ``None`` when there is none.

        Due means queued with ``next_attempt_at`` passed, or processing with an expired lease
        (its worker died). On PostgreSQL ``FOR UPDATE SKIP LOCKED`` lets any number of workers
        claim side by side; the conditional UPDATE keeps the claim exclusive on SQLite too.
        """
        now = now or utcnow()
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
        query = (
            select(InboundMessage.id, InboundMessage.status)
            .where(due)
            .order_by(InboundMessage.next_attempt_at, InboundMessage.id)
            .limit(1)
        )
        if self.session.get_bind().dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True)
        row = self.session.execute(query).first()
        if row is None:
            return None
        claimed = self.session.execute(
            update(InboundMessage)
            .where(InboundMessage.id == row.id, InboundMessage.status == row.status)
            .values(status=InboundStatus.PROCESSING.value, lease_until=now + lease)
            .execution_options(synchronize_session=False)
        )
        if claimed.rowcount != 1:  # type: ignore[attr-defined]
            return None
        message = self.session.get(InboundMessage, row.id, populate_existing=True)
        assert message is not None
        return ClaimedMessage(
            id=message.id,
            account_id=message.account_id,
            mail_from=message.mail_from,
            rcpt_tos=list(message.rcpt_tos),
            raw=message.raw,
            sha256=message.sha256,
            attempts=message.attempts,
        )

    def finish(
        self,
        inbound_id: int,
        status: InboundStatus,
        reason: str | None,
        message_id: str | None,
        message_key: str | None,
    ) -> bool:
        """Record the outcome of a claimed message; ``False`` if the claim was lost meanwhile."""
        result = self.session.execute(
            update(InboundMessage)
            .where(
                InboundMessage.id == inbound_id,
                InboundMessage.status == InboundStatus.PROCESSING.value,
            )
            .values(
                status=status.value,
                reason=reason,
                message_id=message_id,
                message_key=message_key,
                lease_until=None,
                processed_at=utcnow(),
                updated_at=utcnow(),
            )
            .execution_options(synchronize_session=False)
        )
        return bool(result.rowcount == 1)  # type: ignore[attr-defined]

    def record_failure(
        self, inbound_id: int, error: str, max_attempts: int, base_delay: float
    ) -> InboundMessage | None:
        """Count a failed attempt: back to the queue with a backoff, or ``dead`` at the last."""
        message = self.session.get(InboundMessage, inbound_id, populate_existing=True)
        if message is None:
            return None
        message.attempts += 1
        message.last_error = error
        message.lease_until = None
        if message.attempts >= max_attempts:
            message.status = InboundStatus.DEAD.value
            message.reason = "error"
            message.processed_at = utcnow()
        else:
            message.status = InboundStatus.QUEUED.value
            delay = min(base_delay * 2 ** (message.attempts - 1), 3600.0)
            message.next_attempt_at = utcnow() + timedelta(seconds=delay)
        return message

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
        return message

    def list_for_account(self, account_id: int) -> list[InboundMessage]:
        return list(
            self.session.scalars(
                select(InboundMessage)
                .where(InboundMessage.account_id == account_id)
                .order_by(InboundMessage.id)
            )
        )

    def applied_actions(self, account_id: int, message_key: str) -> set[str]:
        """The actions that already acted on this message in this account."""
        return set(
            self.session.scalars(
                select(AppliedAction.action).where(
                    AppliedAction.account_id == account_id,
                    AppliedAction.message_key == message_key,
                )
            )
        )

    def record_actions(
        self, account_id: int, message_key: str, actions: Iterable[str], inbound_id: int
    ) -> None:
        self.session.add_all(
            AppliedAction(
                account_id=account_id, message_key=message_key, action=action, inbound_id=inbound_id
            )
            for action in actions
        )
        self.session.flush()
