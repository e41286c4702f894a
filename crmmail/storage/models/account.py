"""Accounts (the CRM tenants that own smart addresses) and their users."""

from datetime import datetime
from enum import StrEnum

from sqlalchemy import ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from crmmail.storage.base import Base, UTCDateTime, utcnow


class UserRole(StrEnum):
    """What a user may do in the account."""

    ADMIN = "admin"
    MEMBER = "member"


class DmarcPolicy(StrEnum):
    """What the account does with a message that fails DMARC."""

    ACCEPT = "accept"  # process it like any other
    TAG = "tag"  # process it, the failure shown with its notes
    QUARANTINE = "quarantine"  # act on nothing: kept in the spool as ignored (dmarc_fail)


class Account(Base):
    """A CRM account; its slug names its smart addresses (``slug[+action]@domain``)."""

    __tablename__ = "account"

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(63), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    dmarc_policy: Mapped[str] = mapped_column(
        String(16), default=DmarcPolicy.TAG.value, server_default=DmarcPolicy.TAG.value
    )


class User(Base):
    """A person who works in the account; their own address is never a participant."""

    __tablename__ = "user_account"
    __table_args__ = (UniqueConstraint("account_id", "email"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("account.id", ondelete="CASCADE"))
    email: Mapped[str] = mapped_column(String(320))
    name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(16), default=UserRole.MEMBER.value)
    email_access: Mapped[bool] = mapped_column(default=True)
