"""Accounts (the CRM tenants that own smart addresses), the slugs they hold, and their users."""

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


class ReservedSlug(Base):
    """A slug an account has used, now or before a rename: it belongs to that account for good.

    Mail to a renamed account's old addresses goes on arriving (ongoing threads still CC them);
    those addresses are refused, and no other account may ever take them, so that such mail can
    never reach another tenant (and a cached slug -> account answer can only name this account).
    """

    __tablename__ = "reserved_slug"

    slug: Mapped[str] = mapped_column(String(63), primary_key=True)
    account_id: Mapped[int] = mapped_column(
        ForeignKey("account.id", ondelete="CASCADE"), index=True
    )
    reserved_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


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
