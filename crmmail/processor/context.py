"""The state one message carries through the pipeline, and the outcome exception steps raise."""

from dataclasses import dataclass, field

from sqlalchemy.orm import Session

from crmmail.config import Settings
from crmmail.mail.message import NamedAddress, ParsedMessage
from crmmail.routing.address import Action, SmartAddress
from crmmail.sender_auth.results import SenderAuthentication
from crmmail.storage.models import EntityType
from crmmail.storage.repositories.accounts import AccountRepository
from crmmail.storage.repositories.crm import CrmRepository
from crmmail.storage.repositories.inbound import ClaimedMessage, InboundRepository
from crmmail.storage.repositories.ledger import LedgerRepository


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
    settings: Settings | None = None  # None: no sender authentication, default loop guard
    parsed: ParsedMessage | None = None
    authentication: SenderAuthentication | None = None  # None: not checked
    remark: str | None = None  # why a finished message did less than asked (``loop_guard``)
    message_key: str | None = None
    addressed: list[SmartAddress] = field(default_factory=list)  # from the envelope
    actions: set[Action] = field(default_factory=set)
    note_acted_before: bool = False  # an earlier copy's note action is in the dedupe ledger
    note_found_no_card_before: bool = False  # an earlier copy's note ended ignored: no_match
    participants: list[NamedAddress] = field(default_factory=list)
    applied: set[Action] = field(default_factory=set)
    noted: set[tuple[EntityType, int]] = field(default_factory=set)
    attachments_stored: bool = False

    @property
    def message(self) -> ParsedMessage:
        if self.parsed is None:
            raise RuntimeError("the parse step has not run")
        return self.parsed

    @property
    def sender(self) -> str:
        """The message's From address (the first), or ``""``."""
        return self.message.from_[0].address if self.message.from_ else ""

    @property
    def crm(self) -> CrmRepository:
        """The account's cards; what it creates is marked as made by this message's sender."""
        sender = self.sender if self.parsed is not None else None
        return CrmRepository(self.session, self.inbound.account_id, source_sender=sender)

    @property
    def spool(self) -> InboundRepository:
        return InboundRepository(self.session)

    @property
    def ledger(self) -> LedgerRepository:
        return LedgerRepository(self.session)

    @property
    def accounts(self) -> AccountRepository:
        return AccountRepository(self.session)
