"""Put a spooled message on cards as a note (``crmmail.mail.cards``), once per card and message,
its attachments stored once."""

from crmmail.mail.cards import Card, put_on_cards
from crmmail.mail.message import ParsedMessage
from crmmail.processor.context import MessageContext
from crmmail.storage.models import Attachment, EntityType
from crmmail.storage.repositories.notes import NoteRepository


def attach(ctx: MessageContext, entity_type: EntityType, entity_id: int) -> None:
    """Put the email on a card, once per card whatever the number of actions."""
    attach_all(ctx, [Card(ctx.inbound.account_id, entity_type, entity_id)])


def attach_all(ctx: MessageContext, cards: list[Card]) -> None:
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
