"""Store a message of a connected box and put it on the CRM's cards, as smart addresses do.

The same building blocks as the smart-address pipeline, from ``crmmail.mail``: ``parse_message``
(never raises on bad mail), the message key (Message-ID, else the SHA-256 of the bytes), the
participants (From/To/Cc less the account's users and our smart addresses) and notes put on the
cards of known contacts, their open leads and customers (``mail.cards``). The ``note`` entry of
the dedupe ledger is shared with the ``{slug}@`` address, so a message both synced and sent to a
smart address lands on each card once; our addresses in its headers trigger no action here.

A message that will not store as parsed is kept bare (raw bytes, no header columns), and one
whose linking fails is kept unlinked; either way the reason is recorded on the row
(``quarantined``) and the rest of the batch goes on. Only a database that is itself failing
(connection lost, locked) fails the batch, which the next sync retries.
"""

import hashlib
import logging
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from sqlalchemy.exc import DBAPIError, OperationalError, SQLAlchemyError
from sqlalchemy.orm import Session

from crmmail.connector.grouping import counterpart_of, place_in_thread
from crmmail.mail.cards import format_addresses, put_on_cards_once
from crmmail.mail.keys import message_key
from crmmail.mail.message import ParsedMessage, parse_message
from crmmail.mail.participants import participants_of
from crmmail.routing.address import Action
from crmmail.storage.models import Email, EmailAttachment, Mailbox
from crmmail.storage.repositories.accounts import AccountRepository
from crmmail.storage.repositories.crm import CrmRepository
from crmmail.storage.repositories.emails import EmailRepository
from crmmail.storage.repositories.ledger import LedgerRepository

log = logging.getLogger(__name__)


class Captured(StrEnum):
    """What storing one message came to."""

    NEW = "new"
    KNOWN = "known"  # already stored for this box and folder (maybe re-placed)
    QUARANTINED = "quarantined"  # stored, but linking failed: kept with the reason


@dataclass(frozen=True)
class Placement:
    """Where a message sits: box, folder and (once seen on the server) UIDVALIDITY and UID."""

    account_id: int
    mailbox_id: int
    folder: str
    uidvalidity: int | None = None
    uid: int | None = None


@dataclass(frozen=True)
class AttachedFile:
    """What the email row keeps of an attachment: the bytes stay on the server."""

    filename: str
    content_type: str
    size: int


@dataclass(frozen=True)
class ParsedMail:
    """What parsing the bytes gives (small to send back from a parser process): the parsed
    message without its attachments' contents, and their names, types and sizes."""

    sha256: str
    message: ParsedMessage
    key: str
    files: tuple[AttachedFile, ...]


def parse_mail(raw: bytes) -> ParsedMail:
    """Parse one message for capture; a plain function, so that a process pool can run it."""
    sha256 = hashlib.sha256(raw).hexdigest()
    message = parse_message(raw)
    files = tuple(
        AttachedFile(attachment.filename, attachment.content_type, len(attachment.content))
        for attachment in message.attachments
    )
    message.attachments = []  # only ``files`` is used from here on
    return ParsedMail(sha256, message, message_key(message.message_id, sha256), files)


@dataclass(frozen=True)
class Incoming:
    """A message parsed before any transaction opens (parsing holds no database lock)."""

    raw: bytes
    sha256: str
    message: ParsedMessage  # without attachment contents: see ``files``
    key: str
    files: tuple[AttachedFile, ...] = ()

    @classmethod
    def parse(cls, raw: bytes) -> "Incoming":
        return cls.of(raw, parse_mail(raw))

    @classmethod
    def of(cls, raw: bytes, parsed: ParsedMail) -> "Incoming":
        return cls(raw, parsed.sha256, parsed.message, parsed.key, parsed.files)


@dataclass(frozen=True)
class Destination:
    """The box messages are captured into and its account's users, read once per transaction."""

    mailbox: Mailbox
    users: set[str]

    @classmethod
    def load(cls, session: Session, mailbox_id: int) -> "Destination":
        mailbox = session.get(Mailbox, mailbox_id)
        if mailbox is None:
            raise LookupError(f"mailbox {mailbox_id} vanished")
        return cls(mailbox, AccountRepository(session).user_emails(mailbox.account_id))


def capture(
    session: Session,
    destination: Destination,
    placement: Placement,
    incoming: Incoming,
    smart_domains: tuple[str, ...],
) -> tuple[Captured, int]:
    """Store a message once per box and folder and link it; returns what happened and its id."""
    raw, sha256, message, key = incoming.raw, incoming.sha256, incoming.message, incoming.key
    mailbox, users = destination.mailbox, destination.users
    emails = EmailRepository(session)
    known = emails.find(placement.mailbox_id, placement.folder, key)
    if known is not None:
        if known.thread_id is None and not known.purged:  # stored before threads existed
            known.counterpart = counterpart_of(mailbox, users, placement.folder, message)
            place_in_thread(session, mailbox, known)
        if placement.uid is not None and (known.uid, known.uidvalidity) != (
            placement.uid,
            placement.uidvalidity,
        ):
            emails.place(known.id, placement.uidvalidity or 0, placement.uid)
        return Captured.KNOWN, known.id
    try:
        with session.begin_nested():
            email = email_row(placement, raw, sha256, key, message)
            email.counterpart = counterpart_of(mailbox, users, placement.folder, message)
            place_in_thread(session, mailbox, email)  # before the INSERT: one statement
            emails.add(email)
            emails.add_attachments(attachment_rows(email.id, incoming.files))
    except DBAPIError as exc:
        if isinstance(exc, OperationalError) or exc.connection_invalidated:
            raise  # the database itself is in trouble: the batch fails and is retried
        log.exception("mailbox %s: a message could not be stored as is", placement.mailbox_id)
        row = Email(**_bare_row(placement, raw, sha256, key), subject="", counterpart="")
        row.quarantined = f"storing failed: {type(exc.orig).__name__}"
        with session.begin_nested():  # if even this fails, the batch fails and is retried
            place_in_thread(session, mailbox, row)
            emails.add(row)
        return Captured.QUARANTINED, row.id
    return link_or_quarantine(session, email, message, users, smart_domains), email.id


def email_row(
    placement: Placement, raw: bytes, sha256: str, key: str, message: ParsedMessage
) -> Email:
    """The email's row as parsed (not yet in a thread, no counterpart)."""
    return Email(
        **_bare_row(placement, raw, sha256, key),
        message_id=message.message_id,
        subject=message.subject,
        from_addr=format_addresses(message.from_),
        to_addrs=format_addresses(message.to),
        cc_addrs=format_addresses(message.cc),
        date=message.date,
    )


def attachment_rows(email_id: int, files: tuple[AttachedFile, ...]) -> list[EmailAttachment]:
    """What the message carries; the bytes stay on the server and are read on demand."""
    return [
        EmailAttachment(
            email_id=email_id,
            position=position,
            filename=file.filename,
            content_type=file.content_type,
            size=file.size,
        )
        for position, file in enumerate(files)
    ]


def _bare_row(placement: Placement, raw: bytes, sha256: str, key: str) -> dict[str, Any]:
    """The columns that need no parsing: enough to keep a message that will not store."""
    return {
        "account_id": placement.account_id,
        "mailbox_id": placement.mailbox_id,
        "folder": placement.folder,
        "uidvalidity": placement.uidvalidity,
        "uid": placement.uid,
        "message_key": key,
        "sha256": sha256,
        "raw": raw,
        "size": len(raw),
    }


def link_or_quarantine(
    session: Session,
    email: Email,
    message: ParsedMessage,
    users: set[str],
    smart_domains: tuple[str, ...],
) -> Captured:
    """Link a stored email; when that fails, keep it unlinked with the reason (``QUARANTINED``)."""
    try:
        with session.begin_nested():
            _link(session, email, message, users, smart_domains)
    except SQLAlchemyError as exc:
        log.exception("email %s of mailbox %s could not be linked", email.id, email.mailbox_id)
        email.quarantined = f"linking failed: {type(exc).__name__}"
        return Captured.QUARANTINED
    return Captured.NEW


def _link(
    session: Session,
    email: Email,
    message: ParsedMessage,
    users: set[str],
    smart_domains: tuple[str, ...],
) -> None:
    """Link the email to its participants' contacts and, once per account, to their cards."""
    participants = participants_of(message, users, smart_domains)
    crm = CrmRepository(session, email.account_id)
    contact_ids = sorted(set(crm.contacts_by_email(m.address for m in participants).values()))
    EmailRepository(session).link(email.id, contact_ids)
    ledger = LedgerRepository(session)
    if not contact_ids or ledger.holds(email.account_id, Action.NOTE.value, email.message_key):
        return
    put_on_cards_once(session, crm, contact_ids, message, email.message_key, email.id)
