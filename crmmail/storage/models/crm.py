"""The CRM cards mail is attached to: contacts (with several addresses), leads and customers."""

from datetime import datetime
from enum import StrEnum

from sqlalchemy import Column, ForeignKey, Index, String, Table, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from crmmail.storage.base import Base, UTCDateTime, utcnow


class LeadStatus(StrEnum):
    """Where a lead stands; only open leads receive notes from mail."""

    OPEN = "open"
    WON = "won"
    LOST = "lost"


class Contact(Base):
    """A person known to the account."""

    __tablename__ = "contact"
    __table_args__ = (
        Index("ix_contact_source_sender", "account_id", "source_sender", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(
        ForeignKey("account.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(200))
    first_name: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    # The From address of the received message that created it (the loop guard counts these).
    source_sender: Mapped[str | None] = mapped_column(String(320))


class ContactEmail(Base):
    """One address of a contact, stored lower-cased; unique within the account."""

    __tablename__ = "contact_email"
    __table_args__ = (UniqueConstraint("account_id", "email"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("account.id", ondelete="CASCADE"))
    contact_id: Mapped[int] = mapped_column(
        ForeignKey("contact.id", ondelete="CASCADE"), index=True
    )
    email: Mapped[str] = mapped_column(String(320))


lead_contact = Table(
    "lead_contact",
    Base.metadata,
    Column("lead_id", ForeignKey("lead.id", ondelete="CASCADE"), primary_key=True),
    Column("contact_id", ForeignKey("contact.id", ondelete="CASCADE"), primary_key=True),
    Index(None, "contact_id"),
)

customer_contact = Table(
    "customer_contact",
    Base.metadata,
    Column("customer_id", ForeignKey("customer.id", ondelete="CASCADE"), primary_key=True),
    Column("contact_id", ForeignKey("contact.id", ondelete="CASCADE"), primary_key=True),
    Index(None, "contact_id"),
)


class Lead(Base):
    """A sales opportunity with its contacts."""

    __tablename__ = "lead"
    __table_args__ = (Index("ix_lead_source_sender", "account_id", "source_sender", "created_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(
        ForeignKey("account.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(300))
    status: Mapped[str] = mapped_column(String(16), default=LeadStatus.OPEN.value)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    # The From address of the received message that created it (the loop guard counts these).
    source_sender: Mapped[str | None] = mapped_column(String(320))


class Customer(Base):
    """A customer company or person with its contacts."""

    __tablename__ = "customer"

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(
        ForeignKey("account.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(300))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
