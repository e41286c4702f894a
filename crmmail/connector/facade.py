"""The connector as the services see it: connect, sync, send, fetch a stored message.

The services import this module only (never ``imap``, ``smtp``, ``tls`` or ``lease``): each
operation here opens and closes its own connections and takes the box's sync lease where one
IMAP user at a time is the rule. What they end in is the connector's narrow error tree
(``crmmail.connector.errors``, re-exported here): ``AuthFailed`` (the user must change the
password), ``Transient`` (try again later), ``Permanent`` (will not work as set up), and
``MailSettingsRefused`` / ``DiscoveryFailed`` (settings we will not use, or could not find).
"""

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from email.message import EmailMessage

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from crmmail.config import Settings
from crmmail.connector.access import MailboxAccess, mailbox_access, secret_owner, verify
from crmmail.connector.access import server_settings as stored_server_settings
from crmmail.connector.capture import Destination, Incoming, Placement, capture
from crmmail.connector.compose import Draft, compose, refuse_line_breaks
from crmmail.connector.credentials import KeyRing, ensure_key_file, load_key_ring
from crmmail.connector.discovery import discover
from crmmail.connector.endpoints import Endpoint, Security, ServerSettings
from crmmail.connector.errors import (
    AuthFailed,
    ConnectorError,
    DiscoveryFailed,
    MailSettingsRefused,
    Permanent,
    Transient,
)
from crmmail.connector.folders import find_sent
from crmmail.connector.grouping import counterpart_of, place_in_thread
from crmmail.connector.hosts import check_address, check_endpoint_names, check_server_settings
from crmmail.connector.imap import imap_session
from crmmail.connector.lease import give_back, take_box
from crmmail.connector.scheduler import MailboxBusy, SyncResult, SyncScheduler
from crmmail.connector.sent_copy import SentCopy, ensure_sent_copy
from crmmail.connector.smtp import submit
from crmmail.connector.sync import SyncReport
from crmmail.connector.tls import client_context
from crmmail.storage.base import utcnow
from crmmail.storage.database import Database
from crmmail.storage.models import FolderRole, Mailbox, MailboxCredential

__all__ = [
    "AuthFailed",
    "BoxBusy",
    "Composed",
    "ConnectorError",
    "DiscoveryFailed",
    "Draft",
    "Endpoint",
    "KeyRing",
    "MailSettingsRefused",
    "MailboxAccess",
    "MailboxBusy",
    "Permanent",
    "Renumbered",
    "Security",
    "SentCopy",
    "ServerSettings",
    "SyncReport",
    "SyncResult",
    "Transient",
    "box_lease",
    "check_address",
    "check_endpoint_names",
    "check_server_settings",
    "compose_message",
    "counterpart_of",
    "discover",
    "ensure_key_file",
    "fetch_message",
    "file_sent_copy",
    "give_back",
    "load_key_ring",
    "open_access",
    "place_in_thread",
    "record_sent",
    "refuse_line_breaks",
    "seal_password",
    "stored_server_settings",
    "submit_message",
    "sync_due",
    "sync_mailbox",
    "take_box",
    "verify_login",
]

log = logging.getLogger(__name__)


class BoxBusy(Exception):
    """A sync held the box longer than we waited for it (not an error of the connector's)."""


class Renumbered(Permanent):
    """The server renumbered the folder's messages (a new UIDVALIDITY) since the last sync."""


@dataclass(frozen=True)
class Composed:
    """A message ready to submit: its bytes and its Message-ID (without angle brackets)."""

    raw: bytes
    message_id: str

    @classmethod
    def of(cls, message: EmailMessage) -> "Composed":
        return cls(message.as_bytes(), str(message["Message-ID"]).strip().strip("<>"))


# -- connect ------------------------------------------------------------------------------------


def verify_login(
    server: ServerSettings,
    username: str,
    password: str,
    settings: Settings,
    sent_folder: str | None = None,
) -> None:
    """Log in to IMAP (and find the Sent folder if one was named) and to SMTP, TLS verified:
    a box is saved only once this passed (after ``check_server_settings``)."""
    verify(server, username, password, settings, sent_folder)


def open_access(mailbox: Mailbox, credential: MailboxCredential, keys: KeyRing) -> MailboxAccess:
    """A snapshot of how to reach the box, its password opened, usable outside the session."""
    return mailbox_access(mailbox, credential, keys)


def seal_password(keys: KeyRing, mailbox_id: int, password: str) -> tuple[str, bytes]:
    """The box's password sealed for storage: (key id, blob)."""
    sealed = keys.seal(password, secret_owner(mailbox_id))
    return sealed.key_id, sealed.blob


@contextmanager
def box_lease(db: Database, mailbox_id: int, settings: Settings) -> Iterator[str]:
    """Hold the box's sync lease for the block (waiting a little for a sync in progress);
    ``BoxBusy`` when it is not free in time. The token lets the caller give the lease back
    in its own transaction (the block may end with it given back already)."""
    token = take_box(db, mailbox_id, settings)
    if token is None:
        raise BoxBusy(mailbox_id)
    try:
        yield token
    finally:
        give_back(db, mailbox_id, token)


# -- sync ---------------------------------------------------------------------------------------


def sync_mailbox(db: Database, settings: Settings, mailbox_id: int) -> SyncResult:
    """Sync one box now, whatever its schedule."""
    return SyncScheduler.from_settings(db, settings).sync_mailbox(mailbox_id)


def sync_due(db: Database, settings: Settings) -> list[SyncResult]:
    """Sync every box that is due, once."""
    return SyncScheduler.from_settings(db, settings).run_until_idle()


# -- send ---------------------------------------------------------------------------------------


def compose_message(draft: Draft, settings: Settings) -> Composed:
    """The draft as a message dated now (checked: recipients, line breaks, sizes)."""
    return Composed.of(compose(draft, utcnow(), settings.smart_domains))


def submit_message(
    access: MailboxAccess, settings: Settings, message: Composed, to: list[str]
) -> None:
    """Submit through the box's SMTP server, the envelope from the box's address."""
    check_server_settings(access.server, settings.allow_private_mail_hosts)
    submit(
        access.smtp,
        access.username,
        access.password,
        client_context(settings),
        settings.mail_timeout,
        (access.email, to),
        message.raw,
    )


def record_sent(session: Session, access: MailboxAccess, raw: bytes, settings: Settings) -> int:
    """Store a message we sent as the box's Sent email, linked to its cards; its id."""
    _, email_id = capture(
        session,
        Destination.load(session, access.id),
        Placement(access.account_id, access.id, FolderRole.SENT.value),
        Incoming.parse(raw),
        settings.smart_domains,
    )
    assert email_id is not None
    return email_id


def file_sent_copy(
    db: Database, settings: Settings, access: MailboxAccess, message: Composed
) -> SentCopy:
    """Under the box's lease (one IMAP connection per box), find or APPEND the Sent copy.

    The mail is out already, so nothing here fails the send: what could not be done now is
    ``pending``, and the sync does it later.
    """
    try:
        token = take_box(db, access.id, settings)
    except SQLAlchemyError:
        log.exception("mailbox %s: could not take the box to file a Sent copy", access.id)
        return SentCopy.PENDING
    if token is None:
        return SentCopy.PENDING
    try:
        context = client_context(settings)
        with imap_session(
            access.imap, access.username, access.password, context, settings.mail_timeout
        ) as imap:
            folder = find_sent(imap.folders(), access.sent_folder)
            if folder is None:
                return SentCopy.PENDING
            return ensure_sent_copy(
                imap, folder, message.message_id, message.raw, utcnow(), settings.sent_copy_wait
            )
    except ConnectorError as error:
        log.warning("mailbox %s: the Sent copy waits for the next sync: %s", access.id, error)
        return SentCopy.PENDING
    finally:
        _release(db, access.id, token)


# -- fetch --------------------------------------------------------------------------------------


def fetch_message(
    db: Database,
    settings: Settings,
    access: MailboxAccess,
    where: tuple[str, int, int],
) -> bytes | None:
    """The raw message at ``where`` (folder name, UIDVALIDITY, UID), read under the box's lease
    with ``BODY.PEEK[]``; ``None`` when it is no longer on the server.

    ``BoxBusy`` when a sync holds the box, ``Renumbered`` when the folder's UIDVALIDITY moved.
    """
    folder, uidvalidity, uid = where
    with box_lease(db, access.id, settings):
        context = client_context(settings)
        with imap_session(
            access.imap, access.username, access.password, context, settings.mail_timeout
        ) as imap:
            if imap.examine(folder) != uidvalidity:
                raise Renumbered("the server renumbered its messages")
            fetched = imap.fetch([uid])
    return fetched[0].raw if fetched else None


def _release(db: Database, mailbox_id: int, token: str) -> None:
    try:
        give_back(db, mailbox_id, token)
    except SQLAlchemyError:  # the lease runs out by itself
        log.exception("mailbox %s: could not give the box back", mailbox_id)
