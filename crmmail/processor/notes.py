"""Put the message on a card as a note, once per card, with its attachments stored once."""

from crmmail.processor.context import MessageContext
from crmmail.processor.message import Mailbox
from crmmail.storage.models import Attachment, EntityType, Note
from crmmail.storage.repositories.notes import NoteRepository

NAME_SPECIALS = frozenset('()<>[]:;@\\,"')


def attach(ctx: MessageContext, entity_type: EntityType, entity_id: int) -> None:
    """Put the email on a card, once per card whatever the number of actions."""
    if (entity_type, entity_id) in ctx.noted:
        return
    ctx.noted.add((entity_type, entity_id))
    notes = NoteRepository(ctx.session)
    message = ctx.message
    notes.add(
        Note(
            account_id=ctx.inbound.account_id,
            entity_type=entity_type.value,
            entity_id=entity_id,
            inbound_id=ctx.inbound.id,
            subject=message.subject,
            from_addr=format_mailboxes(message.from_),
            to_addrs=format_mailboxes(message.to),
            cc_addrs=format_mailboxes(message.cc),
            date=message.date,
            text_body=message.text,
            html_body=message.html,
            message_id=message.message_id,
        )
    )
    if not ctx.attachments_stored:
        ctx.attachments_stored = True
        for attachment in message.attachments:
            notes.add_attachment(
                Attachment(
                    inbound_id=ctx.inbound.id,
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
