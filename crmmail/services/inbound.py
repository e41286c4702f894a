"""Spool operations: list an account's received messages, requeue one."""

from typing import Any

from sqlalchemy.orm import Session

from crmmail.errors import NotFound
from crmmail.services.accounts import get_account
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


def retry_inbound(session: Session, inbound_id: int) -> dict[str, Any]:
    message = InboundRepository(session).requeue(inbound_id)
    if message is None:
        raise NotFound(f"no inbound message {inbound_id}: see `crmmail inbound list SLUG`")
    return {"id": message.id, "status": message.status}
