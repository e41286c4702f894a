"""Connected mailboxes: their servers, sealed credentials and the sync state of each folder."""

from datetime import datetime
from enum import StrEnum

from sqlalchemy import BigInteger, ForeignKey, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from crmmail.storage.base import Base, UTCDateTime, utcnow


class MailboxKind(StrEnum):
    """Who sees a box: its owner (personal) or every user with email access (shared)."""

    PERSONAL = "personal"
    SHARED = "shared"


class MailboxStatus(StrEnum):
    """Where a box stands; ``auth_failed`` and ``disconnected`` boxes are not synced."""

    IMPORTING = "importing"
    ACTIVE = "active"
    AUTH_FAILED = "auth_failed"
    ERROR = "error"
    DISCONNECTED = "disconnected"


class FolderRole(StrEnum):
    """The two folders crmmail syncs."""

    INBOX = "inbox"
    SENT = "sent"


class Mailbox(Base):
    """A user's (or the team's) mailbox: IMAP in, SMTP out, and when it syncs next.

    ``sync_token``/``sync_lease_until`` make sure only one sync (one IMAP connection) runs per
    box at a time, across processes.
    """

    __tablename__ = "mailbox"
    __table_args__ = (UniqueConstraint("account_id", "email"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("account.id", ondelete="CASCADE"))
    owner_id: Mapped[int] = mapped_column(ForeignKey("user_account.id", ondelete="CASCADE"))
    email: Mapped[str] = mapped_column(String(320))
    kind: Mapped[str] = mapped_column(String(16))
    username: Mapped[str] = mapped_column(String(320))
    imap_host: Mapped[str] = mapped_column(String(253))
    imap_port: Mapped[int]
    imap_security: Mapped[str] = mapped_column(String(16))
    smtp_host: Mapped[str] = mapped_column(String(253))
    smtp_port: Mapped[int]
    smtp_security: Mapped[str] = mapped_column(String(16))
    sent_folder: Mapped[str | None] = mapped_column(Text)  # the user's override
    share_with_admin: Mapped[bool] = mapped_column(default=False)  # personal boxes only
    threads: Mapped[bool] = mapped_column(default=True)  # group messages into threads
    status: Mapped[str] = mapped_column(String(16), default=MailboxStatus.IMPORTING.value)
    last_sync_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_error: Mapped[str | None] = mapped_column(Text)
    failures: Mapped[int] = mapped_column(default=0)
    next_sync_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), index=True)
    sync_token: Mapped[str | None] = mapped_column(String(32))
    sync_lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class MailboxCredential(Base):
    """The sealed secret a box logs in with; ``kind`` leaves room for OAuth tokens."""

    __tablename__ = "mailbox_credential"

    mailbox_id: Mapped[int] = mapped_column(
        ForeignKey("mailbox.id", ondelete="CASCADE"), primary_key=True
    )
    kind: Mapped[str] = mapped_column(String(16), default="password")
    key_id: Mapped[str] = mapped_column(String(32))
    secret: Mapped[bytes] = mapped_column(LargeBinary)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)


class MailboxFolderState(Base):
    """How far one folder is synced: its UIDVALIDITY, the last UID imported, the last STATUS."""

    __tablename__ = "mailbox_folder"
    __table_args__ = (UniqueConstraint("mailbox_id", "role"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    mailbox_id: Mapped[int] = mapped_column(ForeignKey("mailbox.id", ondelete="CASCADE"))
    role: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(Text)
    uidvalidity: Mapped[int | None] = mapped_column(BigInteger)
    last_uid: Mapped[int] = mapped_column(BigInteger, default=0)
    uidnext: Mapped[int | None] = mapped_column(BigInteger)
    messages: Mapped[int | None]
    imported: Mapped[bool] = mapped_column(default=False)  # the first import is complete
