"""The state one message carries through the pipeline, and the outcome exception steps raise."""

from dataclasses import dataclass, field

from sqlalchemy.orm import Session

from crmmail.processor.message import Mailbox, ParsedMessage
from crmmail.routing.address import Action
from crmmail.storage.models import Attachment, EntityType, Note
from crmmail.storage.repositories.accounts import AccountRepository
from crmmail.storage.repositories.crm import CrmRepository
from crmmail.storage.repositories.inbound import ClaimedMessage, InboundRepository
from crmmail.storage.repositories.notes import NoteRepository


class Ignore(Exception):
    """A step decided the message ends here as ``ignored``, for ``reason``; nothing is written."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass
class MessageContext:
    """One spooled message on its way through the steps, inside one transaction.

    The session is used lazily: steps that only read the message (parse, classify) run before
    the transaction touches the database, so no lock is held while bytes are parsed.
    """

    session: Session
    inbound: ClaimedMessage
    smart_domains: tuple[str, ...]
    parsed: ParsedMessage | None = None
    message_key: str | None = None
    actions: set[Action] = field(default_factory=set)
    participants: list[Mailbox] = field(default_factory=list)
    applied: set[Action] = field(default_factory=set)
    noted: set[tuple[EntityType, int]] = field(default_factory=set)
    attachments_stored: bool = False

    @property
    def message(self) -> ParsedMessage:
        if self.parsed is None:
            raise RuntimeError("the parse step has not run")
        return self.parsed

    @property
    def crm(self) -> CrmRepository:
        return CrmRepository(self.session, self.inbound.account_id)

    @property
    def spool(self) -> InboundRepository:
        return InboundRepository(self.session)

    @property
    def accounts(self) -> AccountRepository:
        return AccountRepository(self.session)

    def attach(self, entity_type: EntityType, entity_id: int) -> None:
        """Put the email on a card, once per card whatever the number of actions."""
        if (entity_type, entity_id) in self.noted:
            return
        self.noted.add((entity_type, entity_id))
        notes = NoteRepository(self.session)
        message = self.message
        notes.add(
            Note(
                account_id=self.inbound.account_id,
                entity_type=entity_type.value,
                entity_id=entity_id,
                inbound_id=self.inbound.id,
                subject=message.subject,
                from_addr=_format(message.from_),
                to_addrs=_format(message.to),
                cc_addrs=_format(message.cc),
                date=message.date,
                text_body=message.text,
                html_body=message.html,
                message_id=message.message_id,
            )
        )
        if not self.attachments_stored:
            self.attachments_stored = True
            for attachment in message.attachments:
                notes.add_attachment(
                    Attachment(
                        inbound_id=self.inbound.id,
                        filename=attachment.filename,
                        content_type=attachment.content_type,
                        size=len(attachment.content),
                        sha256=attachment.sha256,
                        content=attachment.content,
                    )
                )


def _format(mailboxes: list[Mailbox]) -> str:
    return ", ".join(f"{m.name} <{m.address}>" if m.name else m.address for m in mailboxes)
