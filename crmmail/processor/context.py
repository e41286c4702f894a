"""The state one message carries through the pipeline, and the outcome exception steps raise."""

from dataclasses import dataclass, field

from sqlalchemy.orm import Session

from crmmail.processor.message import Mailbox, ParsedMessage
from crmmail.routing.address import Action, SmartAddress
from crmmail.storage.models import EntityType
from crmmail.storage.repositories.accounts import AccountRepository
from crmmail.storage.repositories.crm import CrmRepository
from crmmail.storage.repositories.inbound import ClaimedMessage, InboundRepository


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
    addressed: list[SmartAddress] = field(default_factory=list)  # from the envelope
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
