"""The dedupe ledger (``applied_action``): which actions already acted on a message, per account.

Both capture paths read and write it here, and only here: the worker records every action of a
smart-address copy it applied, the mailbox sync records the note it placed (with the email it
came from). Its unique key (account, message key, action) makes two copies apply an action
once, even processed at the same moment; a note action shared by both paths makes a message
that is both synced and sent to a smart address land on each card once.
"""

from collections.abc import Iterable, Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from crmmail.storage.models import AppliedAction
from crmmail.storage.repositories.chunks import in_chunks


class LedgerRepository:
    """Reads and writes the dedupe ledger inside the caller's transaction."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def actions(self, account_id: int, message_key: str) -> set[str]:
        """The actions that already acted on this message in this account."""
        return set(
            self.session.scalars(
                select(AppliedAction.action).where(
                    AppliedAction.account_id == account_id,
                    AppliedAction.message_key == message_key,
                )
            )
        )

    def holding(self, account_id: int, action: str, message_keys: Sequence[str]) -> set[str]:
        """Which of these messages ``action`` already acted on in this account."""
        found: set[str] = set()
        for chunk in in_chunks(message_keys):
            found.update(
                self.session.scalars(
                    select(AppliedAction.message_key).where(
                        AppliedAction.account_id == account_id,
                        AppliedAction.message_key.in_(chunk),
                        AppliedAction.action == action,
                    )
                )
            )
        return found

    def holds(self, account_id: int, action: str, message_key: str) -> bool:
        """Whether ``action`` already acted on this message in this account."""
        found = self.session.scalar(
            select(AppliedAction.id).where(
                AppliedAction.account_id == account_id,
                AppliedAction.message_key == message_key,
                AppliedAction.action == action,
            )
        )
        return found is not None

    def record(
        self,
        account_id: int,
        message_key: str,
        actions: Iterable[str],
        *,
        inbound_id: int | None = None,
        email_id: int | None = None,
    ) -> None:
        """These actions acted on the message, from this spooled message or this email.

        Flushed at once: an action recorded meanwhile by another copy raises ``IntegrityError``
        here (the caller decides: a worker's transaction fails and is retried, a sync's
        savepoint lets the other copy win)."""
        self.session.add_all(
            AppliedAction(
                account_id=account_id,
                message_key=message_key,
                action=action,
                inbound_id=inbound_id,
                email_id=email_id,
            )
            for action in actions
        )
        self.session.flush()
