"""Capture a batch of messages fetched from one folder with a handful of statements.

The outcome is what ``capture`` one message at a time gives, only cheaper: the new messages
(their key not yet in the folder, the first of their key in the batch) are stored together, with
one lookup of the keys already held, one lookup and one INSERT of threads, one INSERT of emails
(batched by SQLAlchemy) and one of attachment rows, one lookup of contacts and one INSERT of
links; notes go on cards per message, as before. Everything else goes through ``capture`` one
by one, after the new ones: messages already stored (re-placed there), a key met twice in the
batch, and every new message when storing them together fails, so that only the one message
that will not store is kept bare (``quarantined``). In the same way, when linking them together
fails, each email is linked on its own and only the one that fails is kept unlinked. A database
that is itself failing (connection lost, locked) fails the batch, as in ``capture``.
"""

import logging
from collections.abc import Sequence

from sqlalchemy.exc import DBAPIError, OperationalError, SQLAlchemyError
from sqlalchemy.orm import Session

from crmmail.connector.capture import (
    Captured,
    Destination,
    Incoming,
    Placement,
    attachment_rows,
    capture,
    email_row,
    link_or_quarantine,
)
from crmmail.connector.grouping import counterpart_of, place_in_threads
from crmmail.mail.cards import put_on_cards_once
from crmmail.mail.participants import participants_of
from crmmail.routing.address import Action
from crmmail.storage.models import Email
from crmmail.storage.repositories.crm import CrmRepository
from crmmail.storage.repositories.emails import EmailRepository
from crmmail.storage.repositories.ledger import LedgerRepository

log = logging.getLogger(__name__)

Stored = list[tuple[Email, Incoming]]


def capture_batch(
    session: Session,
    destination: Destination,
    batch: Sequence[tuple[Placement, Incoming]],
    smart_domains: tuple[str, ...],
) -> list[Captured]:
    """Store and link messages of one box and folder; what happened to each (in no order)."""
    if not batch:
        return []
    first = batch[0][0]
    if any((p.mailbox_id, p.folder) != (first.mailbox_id, first.folder) for p, _ in batch):
        raise ValueError("a batch holds the messages of one box and folder")
    held = EmailRepository(session).find_many(
        first.mailbox_id, first.folder, [incoming.key for _, incoming in batch]
    )
    fresh: list[tuple[Placement, Incoming]] = []
    one_by_one: list[tuple[Placement, Incoming]] = []
    for placement, incoming in batch:
        (one_by_one if incoming.key in held else fresh).append((placement, incoming))
        held.add(incoming.key)
    outcomes: list[Captured] = []
    stored = _store_together(session, destination, fresh)
    if stored is None:
        one_by_one = fresh + one_by_one
    else:
        outcomes.extend(_link_together(session, stored, destination.users, smart_domains))
    for placement, incoming in one_by_one:
        outcome, _ = capture(session, destination, placement, incoming, smart_domains)
        outcomes.append(outcome)
    return outcomes


def _store_together(
    session: Session, destination: Destination, fresh: list[tuple[Placement, Incoming]]
) -> Stored | None:
    """Insert the new messages with their threads and attachment rows; ``None`` if that fails."""
    if not fresh:
        return []
    mailbox, users = destination.mailbox, destination.users
    rows: list[Email] = []
    for placement, incoming in fresh:
        email = email_row(placement, incoming.raw, incoming.sha256, incoming.key, incoming.message)
        email.counterpart = counterpart_of(mailbox, users, placement.folder, incoming.message)
        rows.append(email)
    emails = EmailRepository(session)
    try:
        with session.begin_nested():
            place_in_threads(session, mailbox, rows)
            emails.add_many(rows)
            emails.add_attachments(
                attachment
                for email, (_, incoming) in zip(rows, fresh, strict=True)
                for attachment in attachment_rows(email.id, incoming.files)
            )
            session.flush()
    except DBAPIError as exc:
        if isinstance(exc, OperationalError) or exc.connection_invalidated:
            raise  # the database itself is in trouble: the batch fails and is retried
        log.info(
            "mailbox %s: %d messages did not store together (%s): one by one",
            mailbox.id,
            len(fresh),
            type(exc.orig).__name__,
        )
        return None
    return [(email, incoming) for email, (_, incoming) in zip(rows, fresh, strict=True)]


def _link_together(
    session: Session, stored: Stored, users: set[str], smart_domains: tuple[str, ...]
) -> list[Captured]:
    """Link the stored emails to their contacts and cards; one by one if that fails."""
    if not stored:
        return []
    account_id = stored[0][0].account_id
    crm = CrmRepository(session, account_id)
    emails = EmailRepository(session)
    addresses = {
        email.id: {m.address for m in participants_of(incoming.message, users, smart_domains)}
        for email, incoming in stored
    }
    contact_of = crm.contacts_by_email(set().union(*addresses.values()))
    contacts = {
        email_id: sorted({contact_of[a] for a in wanted if a in contact_of})
        for email_id, wanted in addresses.items()
    }
    try:
        with session.begin_nested():
            emails.link_many(
                (email.id, contact_id) for email, _ in stored for contact_id in contacts[email.id]
            )
            on_cards = [(email, incoming) for email, incoming in stored if contacts[email.id]]
            noted = LedgerRepository(session).holding(
                account_id, Action.NOTE.value, [email.message_key for email, _ in on_cards]
            )
            for email, incoming in on_cards:
                if email.message_key not in noted:
                    put_on_cards_once(
                        session,
                        crm,
                        contacts[email.id],
                        incoming.message,
                        email.message_key,
                        email.id,
                    )
    except SQLAlchemyError as exc:
        log.info("%d emails did not link together (%s): one by one", len(stored), exc)
        return [
            link_or_quarantine(session, email, incoming.message, users, smart_domains)
            for email, incoming in stored
        ]
    return [Captured.NEW] * len(stored)
