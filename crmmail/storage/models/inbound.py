"""The spool: every message answered ``250`` is a row here, raw bytes and envelope included.

A row moves ``queued -> processing -> done | ignored``; a failure sends it back to ``queued``
with a later ``next_attempt_at`` and, after the last attempt, to ``dead`` (kept, never dropped).
Each claim counts an attempt and carries a fresh ``claim_token``; only the holder of the token
may record the outcome. A ``processing`` row whose lease has run out is claimable again, so a
crashed worker loses nothing, and a message that kills its worker every time still ends ``dead``.
"""

from datetime import datetime
from enum import StrEnum

from sqlalchemy import JSON, ForeignKey, Index, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from crmmail.storage.base import Base, UTCDateTime, utcnow


class InboundStatus(StrEnum):
    """Where a spooled message is in its processing."""

    QUEUED = "queued"
    PROCESSING = "processing"
    DONE = "done"
    IGNORED = "ignored"
    DEAD = "dead"


class InboundMessage(Base):
    """One received message for one account, with its envelope."""

    __tablename__ = "inbound_message"
    __table_args__ = (
        Index(None, "status", "next_attempt_at"),
        Index(None, "account_id", "message_key"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("account.id", ondelete="CASCADE"))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    peer: Mapped[str] = mapped_column(String(300), default="")
    helo: Mapped[str] = mapped_column(String(300), default="")
    mail_from: Mapped[str] = mapped_column(Text, default="")
    rcpt_tos: Mapped[list[str]] = mapped_column(JSON)
    raw: Mapped[bytes] = mapped_column(LargeBinary)
    size: Mapped[int]
    sha256: Mapped[str] = mapped_column(String(64))
    message_id: Mapped[str | None] = mapped_column(Text)
    message_key: Mapped[str | None] = mapped_column(String(300))
    status: Mapped[str] = mapped_column(String(16), default=InboundStatus.QUEUED.value)
    reason: Mapped[str | None] = mapped_column(String(64))
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    claim_token: Mapped[str | None] = mapped_column(String(32))
    last_error: Mapped[str | None] = mapped_column(Text)
    processed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Our RFC 8601 Authentication-Results value (SPF, DKIM, DMARC), set by the worker; NULL
    # when not checked (a trusted network, or the message ended before the check).
    auth_results: Mapped[str | None] = mapped_column(Text)
    # What the account's DMARC policy did with a DMARC failure: accept, tag or quarantine.
    auth_disposition: Mapped[str | None] = mapped_column(String(16))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)


class AppliedAction(Base):
    """That one smart-address action already acted on one message (the dedupe ledger).

    Unique per (account, message key, action): two copies of a message, even processed at the
    same moment by two workers, apply each action once. A mailbox sync records the ``note``
    action too (with its ``email_id``), so a message both synced and sent to a smart address
    lands on each card once.
    """

    __tablename__ = "applied_action"
    __table_args__ = (UniqueConstraint("account_id", "message_key", "action"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("account.id", ondelete="CASCADE"))
    message_key: Mapped[str] = mapped_column(String(300))
    action: Mapped[str] = mapped_column(String(16))
    inbound_id: Mapped[int | None] = mapped_column(
        ForeignKey("inbound_message.id", ondelete="CASCADE")
    )
    email_id: Mapped[int | None] = mapped_column(ForeignKey("email.id", ondelete="CASCADE"))
