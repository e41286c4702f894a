"""Put the message on a card as a note, once per card and message, its attachments stored once."""

from dataclasses import dataclass

from crmmail.processor.context import MessageContext
from crmmail.processor.message import Mailbox, ParsedMessage
from crmmail.storage.base import utcnow
from crmmail.storage.models import Attachment, EntityType
from crmmail.storage.repositories.crm import CrmRepository
from crmmail.storage.repositories.notes import NoteRepository

NAME_SPECIALS = frozenset('()<>[]:;@\\,"')


def attach(ctx: MessageContext, entity_type: EntityType, entity_id: int) -> None:
    """Put the email on a card, once per card whatever the number of actions."""
    attach_all(ctx, [Card(ctx.inbound.account_id, entity_type, entity_id)])


def attach_all(ctx: MessageContext, cards: list["Card"]) -> None:
    """Put the email on these cards (each once per message) with one query and one insert."""
    fresh = [card for card in dict.fromkeys(cards) if card.key not in ctx.noted]
    if not fresh:
        return
    ctx.noted.update(card.key for card in fresh)
    notes = NoteRepository(ctx.session)
    # Once the ledger holds the note, a removed content stays removed (the purge's tombstone).
    restore = not ctx.note_acted_before
    put_on_cards(notes, fresh, ctx.message, ctx.message_key, ctx.inbound.id, restore=restore)
    if not ctx.attachments_stored:
        ctx.attachments_stored = True
        store_attachments(notes, ctx.message, ctx.inbound.id)


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


def put_on_card(
    notes: NoteRepository,
    card: Card,
    message: ParsedMessage,
    message_key: str | None,
    inbound_id: int | None = None,
    email_id: int | None = None,
) -> bool:
    """Add the message to the card as a note, unless the card shows it already (same key)."""
    return bool(put_on_cards(notes, [card], message, message_key, inbound_id, email_id))


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

    One query finds the cards that already show the message (same key), one insert adds the
    rest, whatever the number of cards. With ``restore``, a card whose note of the message lost
    its content (its box was disconnected with its emails) gets the content back in that note
    instead of a second one: the message came again, by a sync or a smart address. Callers
    restore only while the dedupe ledger holds no note of the message: an email deleted in the
    CRM and purged keeps its ledger entry (its tombstone), and its notes stay without content.
    """
    if not cards:
        return []
    removed: list[Card] = []
    if message_key is not None:
        shown = notes.cards_showing(cards[0].account_id, message_key, (c.row for c in cards))
        removed = [card for card in cards if restore and shown.get(card.row) is False]
        cards = [card for card in cards if card.row not in shown]
    if not cards and not removed:
        return []
    content = {
        "inbound_id": inbound_id,
        "email_id": email_id,
        "message_key": message_key,
        "subject": message.subject,
        "from_addr": format_mailboxes(message.from_),
        "to_addrs": format_mailboxes(message.to),
        "cc_addrs": format_mailboxes(message.cc),
        "date": message.date,
        "text_body": message.text,
        "html_body": message.html,
        "message_id": message.message_id,
        "content_removed": False,
    }
    if removed and message_key is not None:
        notes.restore_content(removed[0].account_id, message_key, (c.row for c in removed), content)
    created_at = utcnow()
    notes.add_many(
        [
            {
                **content,
                "created_at": created_at,
                "account_id": card.account_id,
                "entity_type": card.entity_type.value,
                "entity_id": card.entity_id,
            }
            for card in cards
        ]
    )
    return removed + cards


def store_attachments(notes: NoteRepository, message: ParsedMessage, inbound_id: int) -> None:
    """Keep the files of a received message, once per message."""
    for attachment in message.attachments:
        notes.add_attachment(
            Attachment(
                inbound_id=inbound_id,
                filename=attachment.filename,
                content_type=attachment.content_type,
                size=len(attachment.content),
                sha256=attachment.sha256,
                content=attachment.content,
            )
        )


def format_mailboxes(mailboxes: list[Mailbox]) -> str:
    """Addresses as a header would show them (decoded names, quoted where they need it).

    >>> format_mailboxes([Mailbox("Lee, Ann", "ann@x.test"), Mailbox("", "bob@y.test")])
    '"Lee, Ann" <ann@x.test>, bob@y.test'
    """
    return ", ".join(_format_mailbox(mailbox) for mailbox in mailboxes)


def _format_mailbox(mailbox: Mailbox) -> str:
    if not mailbox.name:
        return mailbox.address
    name = mailbox.name
    if any(ch in NAME_SPECIALS for ch in name):
        name = '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return f"{name} <{mailbox.address}>"
