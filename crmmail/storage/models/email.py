"""Emails of connected mailboxes: one row per message and folder, and the contacts it is on."""

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Column,
    ForeignKey,
    Index,
    LargeBinary,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from crmmail.storage.base import Base, UTCDateTime, utcnow


class Email(Base):
    """A message in a box's Inbox or Sent, found by sync or written through crmmail.

    Unique per (box, folder, message key): a re-sync, a UIDVALIDITY change or our own sent copy
    coming back from the server finds the row instead of adding one. ``uid`` is ``None`` for a
    message we sent whose server copy has not been seen yet.
    """

    __tablename__ = "email"
    __table_args__ = (
        UniqueConstraint("mailbox_id", "folder", "message_key"),
        Index(None, "mailbox_id", "folder", "uidvalidity", "uid"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("account.id", ondelete="CASCADE"))
    mailbox_id: Mapped[int] = mapped_column(ForeignKey("mailbox.id", ondelete="CASCADE"))
    folder: Mapped[str] = mapped_column(String(16))
    uidvalidity: Mapped[int | None] = mapped_column(BigInteger)
    uid: Mapped[int | None] = mapped_column(BigInteger)
    message_key: Mapped[str] = mapped_column(String(300))
    message_id: Mapped[str | None] = mapped_column(Text)
    sha256: Mapped[str] = mapped_column(String(64))
    subject: Mapped[str] = mapped_column(Text, default="")
    from_addr: Mapped[str] = mapped_column(Text, default="")
    to_addrs: Mapped[str] = mapped_column(Text, default="")
    cc_addrs: Mapped[str] = mapped_column(Text, default="")
    date: Mapped[datetime | None] = mapped_column(UTCDateTime())
    raw: Mapped[bytes] = mapped_column(LargeBinary)
    size: Mapped[int]
    deleted_on_server: Mapped[bool] = mapped_column(default=False)
    quarantined: Mapped[str | None] = mapped_column(Text)  # why linking it failed, if it did
    counterpart: Mapped[str] = mapped_column(String(320), default="")
    thread_id: Mapped[int | None] = mapped_column(
        ForeignKey("thread.id", ondelete="SET NULL"), index=True
    )
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime())  # in the Deleted folder
    deleted_by: Mapped[int | None] = mapped_column(
        ForeignKey("user_account.id", ondelete="SET NULL")
    )
    purged: Mapped[bool] = mapped_column(default=False)  # content removed for good: a tombstone
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Thread(Base):
    """Messages of one box with the same counterpart and normalised subject (or one message,
    when the box does not group)."""

    __tablename__ = "thread"
    __table_args__ = (UniqueConstraint("mailbox_id", "key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    mailbox_id: Mapped[int] = mapped_column(ForeignKey("mailbox.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(300))
    counterpart: Mapped[str] = mapped_column(String(320), default="")
    subject: Mapped[str] = mapped_column(Text, default="")


class EmailAttachment(Base):
    """What a message carries as files; the content is read from the server on demand."""

    __tablename__ = "email_attachment"

    id: Mapped[int] = mapped_column(primary_key=True)
    email_id: Mapped[int] = mapped_column(ForeignKey("email.id", ondelete="CASCADE"), index=True)
    position: Mapped[int]  # its place among the message's attachments
    filename: Mapped[str] = mapped_column(Text, default="")
    content_type: Mapped[str] = mapped_column(String(255))
    size: Mapped[int]


email_contact = Table(
    "email_contact",
    Base.metadata,
    Column("email_id", ForeignKey("email.id", ondelete="CASCADE"), primary_key=True),
    Column("contact_id", ForeignKey("contact.id", ondelete="CASCADE"), primary_key=True),
    Index(None, "contact_id"),
)
