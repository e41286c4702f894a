"""Spool operations: list an account's received messages, requeue one."""

from typing import Any

from sqlalchemy.orm import Session

from crmmail.errors import NotFound, UserInputError
from crmmail.services.accounts import get_account
from crmmail.storage.models import InboundStatus
from crmmail.storage.repositories.inbound import InboundRepository


def list_inbound(session: Session, slug: str) -> list[dict[str, Any]]:
    account = get_account(session, slug)
    return [
        {
            "id": message.id,
            "status": message.status,
            "reason": message.reason,
            "message_id": message.message_id,
            "received_at": message.received_at.isoformat(),
            "mail_from": message.mail_from,
            "rcpt_tos": message.rcpt_tos,
            "size": message.size,
            "attempts": message.attempts,
            "last_error": message.last_error,
        }
        for message in InboundRepository(session).list_for_account(account.id)
    ]


RETRYABLE = (InboundStatus.DEAD.value, InboundStatus.IGNORED.value)


def retry_inbound(session: Session, inbound_id: int) -> dict[str, Any]:
    """Queue a dead or ignored message again (after fixing what made it fail or not match)."""
    repo = InboundRepository(session)
    message = repo.get(inbound_id)
    if message is None:
        raise NotFound(f"no inbound message {inbound_id}: see `crmmail inbound list SLUG`")
    if message.status not in RETRYABLE:
        raise UserInputError(
            f"inbound message {inbound_id} is {message.status}: "
            "only dead or ignored messages can be retried"
        )
    repo.requeue(inbound_id)
    return {"id": message.id, "status": message.status}
