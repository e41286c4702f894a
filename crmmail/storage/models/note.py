"""Notes (an email attached to a card) and the attachments of the message behind them."""

from datetime import datetime
from enum import StrEnum

from sqlalchemy import ForeignKey, Index, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from crmmail.storage.base import Base, UTCDateTime, utcnow


class EntityType(StrEnum):
    """The kinds of card a note can sit on."""

    CONTACT = "contact"
    LEAD = "lead"
    CUSTOMER = "customer"


class Note(Base):
    """An email shown on one card; one message may give notes on several cards."""

    __tablename__ = "note"
    __table_args__ = (
        Index(None, "account_id", "entity_type", "entity_id"),
        Index("ix_note_account_id_message_key", "account_id", "message_key"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("account.id", ondelete="CASCADE"))
    entity_type: Mapped[str] = mapped_column(String(16))
    entity_id: Mapped[int]
    inbound_id: Mapped[int | None] = mapped_column(
        ForeignKey("inbound_message.id", ondelete="SET NULL"), index=True
    )
    email_id: Mapped[int | None] = mapped_column(
        ForeignKey("email.id", ondelete="SET NULL"), index=True
    )
    message_key: Mapped[str | None] = mapped_column(String(300))
    subject: Mapped[str] = mapped_column(Text, default="")
    from_addr: Mapped[str] = mapped_column(Text, default="")
    to_addrs: Mapped[str] = mapped_column(Text, default="")
    cc_addrs: Mapped[str] = mapped_column(Text, default="")
    date: Mapped[datetime | None] = mapped_column(UTCDateTime())
    text_body: Mapped[str] = mapped_column(Text, default="")
    html_body: Mapped[str] = mapped_column(Text, default="")
    message_id: Mapped[str | None] = mapped_column(Text)
    content_removed: Mapped[bool] = mapped_column(default=False)  # its email was deleted for good
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Attachment(Base):
    """A file from a received message, stored once per message whatever the number of notes."""

    __tablename__ = "attachment"

    id: Mapped[int] = mapped_column(primary_key=True)
    inbound_id: Mapped[int] = mapped_column(
        ForeignKey("inbound_message.id", ondelete="CASCADE"), index=True
    )
    filename: Mapped[str] = mapped_column(Text, default="")
    content_type: Mapped[str] = mapped_column(String(255))
    size: Mapped[int]
    sha256: Mapped[str] = mapped_column(String(64))
    content: Mapped[bytes] = mapped_column(LargeBinary)
