"""Place an email on the cards of an account as notes, once per card: for both capture paths.

The smart-address worker (``processor/notes.py``) and the mailbox sync (``connector/capture``)
both come here, so a message that arrives by a smart address and by a sync lands once on each
card, through the same code: ``put_on_cards`` turns the parsed message into what a note shows
(``NoteContent``) and hands it to ``NoteRepository.put_on_cards``, which skips the cards that
show the message already and gives its content back to notes that lost it (a disconnected box).
A sync notes a message only while the dedupe ledger holds no note of it (``put_on_cards_once``).
"""

import logging
from dataclasses import dataclass

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from crmmail.mail.message import NamedAddress, ParsedMessage
from crmmail.routing.address import Action
from crmmail.storage.models import EntityType
from crmmail.storage.repositories.crm import CrmRepository
from crmmail.storage.repositories.ledger import LedgerRepository
from crmmail.storage.repositories.notes import NoteContent, NoteRepository

NAME_SPECIALS = frozenset('()<>[]:;@\\,"')

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Card:
    """A contact, lead or customer card of an account."""

    account_id: int
    entity_type: EntityType
    entity_id: int

    @property
    def key(self) -> tuple[EntityType, int]:
        return (self.entity_type, self.entity_id)

    @property
    def row(self) -> tuple[str, int]:
        """How a note names its card: ``(entity_type, entity_id)`` as stored."""
        return (self.entity_type.value, self.entity_id)


def cards_of(crm: CrmRepository, contact_ids: list[int]) -> list[Card]:
    """The cards an email to these contacts goes on: theirs, their open leads', customers'."""
    account = crm.account_id
    leads, customers = crm.linked_cards(contact_ids)
    return [
        *(Card(account, EntityType.CONTACT, cid) for cid in contact_ids),
        *(Card(account, EntityType.LEAD, lid) for lid in leads),
        *(Card(account, EntityType.CUSTOMER, cid) for cid in customers),
    ]


def put_on_cards(
    notes: NoteRepository,
    cards: list[Card],
    message: ParsedMessage,
    message_key: str | None,
    inbound_id: int | None = None,
    email_id: int | None = None,
    *,
    restore: bool = True,
) -> list[Card]:
    """Add the message as a note to each card that does not show it yet; the cards it went on.

    With ``restore``, a card whose note of the message lost its content gets it back instead of
    a second note: the message came again, by a sync or a smart address. Callers restore only
    while the dedupe ledger holds no note of the message: an email deleted in the CRM and
    purged keeps its ledger entry (its tombstone), and its notes stay without content.
    """
    if not cards:
        return []
    content = NoteContent(
        message_key=message_key,
        message_id=message.message_id,
        subject=message.subject,
        from_addr=format_addresses(message.from_),
        to_addrs=format_addresses(message.to),
        cc_addrs=format_addresses(message.cc),
        date=message.date,
        text_body=message.text,
        html_body=message.html,
        inbound_id=inbound_id,
        email_id=email_id,
    )
    by_row = {card.row: card for card in cards}
    placed = notes.put_on_cards(cards[0].account_id, list(by_row), content, restore=restore)
    return [by_row[row] for row in placed]


def put_on_cards_once(
    session: Session,
    crm: CrmRepository,
    contact_ids: list[int],
    message: ParsedMessage,
    message_key: str,
    email_id: int,
) -> None:
    """Note a synced email on its contacts' cards (``cards_of``) and record the note in the
    dedupe ledger; a copy that did so meanwhile (the ledger's unique key) wins, and this one
    changes nothing."""
    try:
        with session.begin_nested():
            cards = cards_of(crm, contact_ids)
            put_on_cards(NoteRepository(session), cards, message, message_key, None, email_id)
            LedgerRepository(session).record(
                crm.account_id, message_key, [Action.NOTE.value], email_id=email_id
            )
    except IntegrityError:
        log.info("email %s went onto its cards through another copy meanwhile", email_id)


def format_addresses(addresses: list[NamedAddress]) -> str:
    """Addresses as a header would show them (decoded names, quoted where they need it).

    >>> format_addresses([NamedAddress("Lee, Ann", "ann@x.test"), NamedAddress("", "bob@y.test")])
    '"Lee, Ann" <ann@x.test>, bob@y.test'
    """
    return ", ".join(_format_address(named) for named in addresses)


def _format_address(named: NamedAddress) -> str:
    if not named.name:
        return named.address
    name = named.name
    if any(ch in NAME_SPECIALS for ch in name):
        name = '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return f"{name} <{named.address}>"
