"""Spool operations: list an account's received messages, requeue one."""

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from crmmail.errors import Hint, NotFound, UserInputError
from crmmail.services.accounts import get_account
from crmmail.services.results import Result
from crmmail.storage.models import InboundStatus
from crmmail.storage.repositories.inbound import InboundRepository


@dataclass(frozen=True, eq=False)
class InboundView(Result):
    """A received message in the spool, with how its processing stands."""

    id: int
    status: str
    reason: str | None
    message_id: str | None
    received_at: datetime
    mail_from: str
    rcpt_tos: list[str]
    size: int
    attempts: int
    last_error: str | None


@dataclass(frozen=True, eq=False)
class InboundStatusView(Result):
    """A spooled message's status after a change."""

    id: int
    status: str


def list_inbound(session: Session, slug: str) -> list[InboundView]:
    account = get_account(session, slug)
    return [
        InboundView(
            id=message.id,
            status=message.status,
            reason=message.reason,
            message_id=message.message_id,
            received_at=message.received_at,
            mail_from=message.mail_from,
            rcpt_tos=message.rcpt_tos,
            size=message.size,
            attempts=message.attempts,
            last_error=message.last_error,
        )
        for message in InboundRepository(session).list_for_account(account.id)
    ]


RETRYABLE = (InboundStatus.DEAD.value, InboundStatus.IGNORED.value)


def retry_inbound(session: Session, inbound_id: int) -> InboundStatusView:
    """Queue a dead or ignored message again (after fixing what made it fail or not match)."""
    repo = InboundRepository(session)
    message = repo.get(inbound_id)
    if message is None:
        raise NotFound(f"no inbound message {inbound_id}", hint=Hint("list_inbound"))
    if message.status not in RETRYABLE:
        raise UserInputError(
            f"inbound message {inbound_id} is {message.status}: "
            "only dead or ignored messages can be retried"
        )
    repo.requeue(inbound_id)
    return InboundStatusView(message.id, message.status)
