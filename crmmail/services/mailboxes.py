"""Mailbox operations: connect (checked, discovered, verified), list, new password, sync now."""

import os
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from crmmail.config import Settings
from crmmail.connector import facade as connector
from crmmail.connector.facade import Endpoint, Security, ServerSettings
from crmmail.errors import AlreadyExists, Hint, NotFound, UserInputError
from crmmail.services.accounts import get_account
from crmmail.services.results import Result
from crmmail.services.validation import checked_email
from crmmail.storage.base import utcnow
from crmmail.storage.database import Database
from crmmail.storage.models import Mailbox, MailboxKind, MailboxStatus, User, UserRole
from crmmail.storage.repositories.accounts import AccountRepository
from crmmail.storage.repositories.mailboxes import MailboxRepository

DEFAULT_PORTS = {
    ("imap", Security.SSL): 993,
    ("imap", Security.STARTTLS): 143,
    ("smtp", Security.SSL): 465,
    ("smtp", Security.STARTTLS): 587,
}


@dataclass(frozen=True, eq=False)
class MailboxView(Result):
    """A connected box as the faces show it: never a secret."""

    id: int
    email: str
    kind: str
    owner: str  # the owner's address
    status: str
    last_sync_at: datetime | None
    last_error: str | None


@dataclass(frozen=True, eq=False)
class ConnectedMailbox(MailboxView):
    """A box just connected, and where its server settings came from."""

    source: str


@dataclass(frozen=True)
class HostChoice:
    """What the user gave for one server (all optional)."""

    host: str | None = None
    port: int | None = None
    security: str | None = None

    def given(self) -> bool:
        return self.host is not None or self.port is not None or self.security is not None


@dataclass(frozen=True)
class ConnectRequest:
    """What connecting a mailbox needs."""

    slug: str
    user_email: str
    email: str
    password: str
    shared: bool = False
    share_with_admin: bool = False
    imap: HostChoice = HostChoice()
    smtp: HostChoice = HostChoice()
    sent_folder: str | None = None


def password_from_env(variable: str) -> str:
    """The password held by an environment variable (never taken from the command line)."""
    value = os.environ.get(variable)
    if not value:
        raise UserInputError(
            f"environment variable {variable} is not set or empty: put the password there"
        )
    return value


def connect_mailbox(db: Database, settings: Settings, request: ConnectRequest) -> ConnectedMailbox:
    """Check, discover, verify with a real login, then save; nothing is saved on any failure.

    A box that was disconnected is connected again in place: its kept emails and folder states
    stay, so the sync resumes where it stopped, without duplicates.
    """
    connector.check_address(request.email, settings.smart_domains)
    email = checked_email(request.email)
    keys = connector.load_key_ring(settings)  # no key: fail before talking to anyone
    with db.read() as session:
        _check_connect_rights(session, request, email)
    server = _chosen_servers(request, email, settings)
    connector.check_server_settings(server, settings.allow_private_mail_hosts)
    try:
        connector.verify_login(server, email, request.password, settings, request.sent_folder)
    except connector.AuthFailed as error:
        raise UserInputError(f"{error}: check the password; nothing was saved") from None
    except connector.ConnectorError as error:
        raise UserInputError(f"cannot use this mailbox: {error}; nothing was saved") from None
    with db.transaction() as session:
        owner = _check_connect_rights(session, request, email)
        boxes = MailboxRepository(session)
        existing = boxes.by_email(owner.account_id, email)
        mailbox = existing or Mailbox(account_id=owner.account_id, email=email, username=email)
        mailbox.owner_id = owner.id
        mailbox.kind = (MailboxKind.SHARED if request.shared else MailboxKind.PERSONAL).value
        mailbox.share_with_admin = (request.share_with_admin and not request.shared) or (
            existing is not None and existing.share_with_admin
        )
        mailbox.imap_host = server.imap.host
        mailbox.imap_port = server.imap.port
        mailbox.imap_security = server.imap.security.value
        mailbox.smtp_host = server.smtp.host
        mailbox.smtp_port = server.smtp.port
        mailbox.smtp_security = server.smtp.security.value
        mailbox.sent_folder = request.sent_folder
        mailbox.status = (
            MailboxStatus.ACTIVE if _imported(session, mailbox.id) else MailboxStatus.IMPORTING
        ).value
        mailbox.last_error = None
        mailbox.failures = 0
        mailbox.next_sync_at = utcnow()
        if existing is None:
            boxes.add(mailbox)
        key_id, blob = connector.seal_password(keys, mailbox.id, request.password)
        MailboxRepository(session).set_credential(mailbox.id, key_id, blob)
        return ConnectedMailbox(*mailbox_fields(mailbox, owner.email), source=server.source)


def _check_connect_rights(session: Session, request: ConnectRequest, email: str) -> User:
    account = get_account(session, request.slug)
    users = AccountRepository(session)
    owner = users.user_by_email(account.id, checked_email(request.user_email))
    if owner is None:
        raise NotFound(f"no user {request.user_email} in account {request.slug}: add them first")
    if request.shared and request.share_with_admin:
        raise UserInputError(
            "only a personal mailbox is shared with the admin", hint=Hint("unshare_shared_box")
        )
    if request.shared and owner.role != UserRole.ADMIN.value:
        raise UserInputError(f"{owner.email} is not an admin: only admins connect shared mailboxes")
    existing = MailboxRepository(session).by_email(account.id, email)
    if existing is not None:
        _check_reconnect(existing, owner.id, request)
    return owner


def _check_reconnect(existing: Mailbox, owner_id: int, request: ConnectRequest) -> None:
    """A disconnected box comes back as it was: same owner for a personal box, same type."""
    if existing.status != MailboxStatus.DISCONNECTED.value:
        raise AlreadyExists(f"{existing.email} is connected already in account {request.slug}")
    was_shared = existing.kind == MailboxKind.SHARED.value
    if request.shared != was_shared:
        kind = "shared" if was_shared else "personal"
        raise UserInputError(
            f"{existing.email} was a {kind} mailbox: connect it again as one",
            hint=Hint("change_mailbox_type"),
        )
    if not was_shared and existing.owner_id != owner_id:
        raise UserInputError(
            f"{existing.email} is another user's personal mailbox: only they can connect it again"
        )


def _chosen_servers(request: ConnectRequest, email: str, settings: Settings) -> ServerSettings:
    if not request.imap.given() and not request.smtp.given():
        return connector.discover(email, settings)
    if request.imap.host is None or request.smtp.host is None:
        raise UserInputError("give both --imap-host and --smtp-host, or neither to discover them")
    server = ServerSettings(
        imap=_endpoint("imap", request.imap), smtp=_endpoint("smtp", request.smtp), source="given"
    )
    connector.check_endpoint_names(server.imap, "IMAP")
    connector.check_endpoint_names(server.smtp, "SMTP")
    return server


def _endpoint(kind: str, choice: HostChoice) -> Endpoint:
    assert choice.host is not None
    if choice.security is not None:
        security = Security(choice.security)
    else:  # by the port, as mail clients guess: 143 and 587 (or any other SMTP port) upgrade
        upgrades = choice.port == 143 if kind == "imap" else choice.port not in (None, 465)
        security = Security.STARTTLS if upgrades else Security.SSL
    port = choice.port if choice.port is not None else DEFAULT_PORTS[(kind, security)]
    return Endpoint(choice.host.strip().lower().rstrip("."), port, security)


MailboxFields = tuple[int, str, str, str, str, datetime | None, str | None]


def mailbox_fields(mailbox: Mailbox, owner: str) -> MailboxFields:
    """The fields of ``MailboxView`` (the first ones of the views that extend it), in order."""
    return (
        mailbox.id,
        mailbox.email,
        mailbox.kind,
        owner,
        mailbox.status,
        mailbox.last_sync_at,
        mailbox.last_error,
    )


def describe_mailbox(mailbox: Mailbox, owner: str) -> MailboxView:
    return MailboxView(*mailbox_fields(mailbox, owner))


def list_mailboxes(session: Session, slug: str) -> list[MailboxView]:
    account = get_account(session, slug)
    return [
        describe_mailbox(mailbox, owner)
        for mailbox, owner in MailboxRepository(session).list_for_account(account.id)
    ]


def change_password(
    db: Database, settings: Settings, mailbox_id: int, password: str
) -> MailboxView:
    """Verify the new password, seal it, and put the box back on the schedule at once.

    The box's lease is taken first (waiting a little for a sync in progress), so the check is
    the box's only IMAP connection and no sync on the old password records over the new one.
    """
    keys = connector.load_key_ring(settings)
    with db.read() as session:
        mailbox = _get(session, mailbox_id)
        server = connector.stored_server_settings(mailbox)
        username, sent_folder = mailbox.username, mailbox.sent_folder
    connector.check_server_settings(server, settings.allow_private_mail_hosts)
    token = connector.take_box(db, mailbox_id, settings)
    if token is None:
        raise UserInputError(
            f"mailbox {mailbox_id} is being synced right now: try again in a minute;"
            " nothing was changed"
        )
    try:
        connector.verify_login(server, username, password, settings, sent_folder)
    except connector.AuthFailed as error:
        connector.give_back(db, mailbox_id, token)
        raise UserInputError(f"{error}: check the password; nothing was changed") from None
    except connector.ConnectorError as error:
        connector.give_back(db, mailbox_id, token)
        raise UserInputError(f"cannot use this mailbox: {error}; nothing was changed") from None
    key_id, blob = connector.seal_password(keys, mailbox_id, password)
    with db.transaction() as session:
        mailbox = _get(session, mailbox_id)
        MailboxRepository(session).set_credential(mailbox.id, key_id, blob)
        imported = _imported(session, mailbox.id)
        mailbox.status = (MailboxStatus.ACTIVE if imported else MailboxStatus.IMPORTING).value
        mailbox.last_error = None
        mailbox.failures = 0
        mailbox.next_sync_at = utcnow()
        mailbox.sync_token = None  # gives the lease back
        mailbox.sync_lease_until = None
        owner = AccountRepository(session).user(mailbox.owner_id)
        return describe_mailbox(mailbox, owner.email if owner else "")


def _imported(session: Session, mailbox_id: int | None) -> bool:
    if mailbox_id is None:
        return False
    boxes = MailboxRepository(session)
    states = [boxes.folder(mailbox_id, role) for role in ("inbox", "sent")]
    inbox = states[0]
    return inbox is not None and inbox.imported and (states[1] is None or states[1].imported)


def _get(session: Session, mailbox_id: int) -> Mailbox:
    mailbox = MailboxRepository(session).get(mailbox_id)
    if mailbox is None:
        raise NotFound(f"no mailbox {mailbox_id}", hint=Hint("list_mailboxes"))
    return mailbox
