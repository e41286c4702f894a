"""Notes on cards and the attachments of the messages behind them."""

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select, tuple_, update
from sqlalchemy.orm import Session

from crmmail.storage.base import utcnow
from crmmail.storage.models import Attachment, InboundMessage, Note


@dataclass(frozen=True)
class NoteContent:
    """What a note shows of its message, and where the message is kept (the spooled message of
    a smart address, or the email of a connected box)."""

    message_key: str | None
    message_id: str | None
    subject: str
    from_addr: str
    to_addrs: str
    cc_addrs: str
    date: datetime | None
    text_body: str
    html_body: str
    inbound_id: int | None = None
    email_id: int | None = None


class NoteRepository:
    """Reads and writes notes and attachments inside the caller's transaction."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def put_on_cards(
        self,
        account_id: int,
        cards: Sequence[tuple[str, int]],
        content: NoteContent,
        *,
        restore: bool = True,
    ) -> list[tuple[str, int]]:
        """Add the message as a note to each card (entity type, id) of the account that does
        not show it yet; the cards it went on.

        One query finds the cards that already show the message (same key), one insert adds the
        rest, whatever the number of cards. With ``restore``, a card whose note of the message
        lost its content (its box was disconnected with its emails) gets the content back in
        that note instead of a second one (one update).
        """
        if not cards:
            return []
        key = content.message_key
        removed: list[tuple[str, int]] = []
        if key is not None:
            shown = self._cards_showing(account_id, key, cards)
            removed = [card for card in cards if restore and shown.get(card) is False]
            cards = [card for card in cards if card not in shown]
        if not cards and not removed:
            return []
        values = {**asdict(content), "content_removed": False}
        if removed and key is not None:
            self._restore_content(account_id, key, removed, values)
        if cards:
            created_at = utcnow()
            self.session.execute(
                insert(Note),
                [
                    {
                        **values,
                        "created_at": created_at,
                        "account_id": account_id,
                        "entity_type": entity_type,
                        "entity_id": entity_id,
                    }
                    for entity_type, entity_id in cards
                ],
            )
        return removed + list(cards)

    def _cards_showing(
        self, account_id: int, message_key: str, cards: Iterable[tuple[str, int]]
    ) -> dict[tuple[str, int], bool]:
        """Which of these cards (entity type, id) already have a note for this message, each
        with whether it is readable (``False``: only notes whose content was removed)."""
        wanted = sorted(set(cards))
        if not wanted:
            return {}
        rows = self.session.execute(
            select(Note.entity_type, Note.entity_id, Note.content_removed).where(
                Note.account_id == account_id,
                Note.message_key == message_key,
                tuple_(Note.entity_type, Note.entity_id).in_(wanted),
            )
        )
        shown: dict[tuple[str, int], bool] = {}
        for entity_type, entity_id, removed in rows:
            card = (entity_type, entity_id)
            shown[card] = shown.get(card, False) or not removed
        return shown

    def _restore_content(
        self,
        account_id: int,
        message_key: str,
        cards: Iterable[tuple[str, int]],
        values: dict[str, Any],
    ) -> None:
        """Give these cards' notes of this message whose content was removed their content back
        (column values): the message came again."""
        wanted = sorted(set(cards))
        if not wanted:
            return
        self.session.execute(
            update(Note)
            .where(
                Note.account_id == account_id,
                Note.message_key == message_key,
                Note.content_removed.is_(True),
                tuple_(Note.entity_type, Note.entity_id).in_(wanted),
            )
            .values(**values)
            .execution_options(synchronize_session=False)
        )

    def of_emails(self, email_ids: list[int]) -> list[Note]:
        if not email_ids:
            return []
        return list(self.session.scalars(select(Note).where(Note.email_id.in_(email_ids))))

    def remove_content(self, email_ids: list[int]) -> None:
        """The emails behind these notes are gone: the notes stay, saying so (until the message
        comes again: ``restore_content``)."""
        for note in self.of_emails(email_ids):
            note.content_removed = True
            note.subject = note.from_addr = note.to_addrs = note.cc_addrs = ""
            note.text_body = note.html_body = ""
            note.message_id = None
            note.email_id = None
        self.session.flush()

    def add_attachment(self, attachment: Attachment) -> None:
        self.session.add(attachment)

    def list_for_account(self, account_id: int) -> list[Note]:
        return list(
            self.session.scalars(
                select(Note).where(Note.account_id == account_id).order_by(Note.id)
            )
        )

    def authentication_of(self, inbound_ids: Iterable[int]) -> dict[int, tuple[str, str | None]]:
        """Our Authentication-Results value and DMARC disposition of each checked message."""
        wanted = sorted(set(inbound_ids))
        if not wanted:
            return {}
        rows = self.session.execute(
            select(
                InboundMessage.id, InboundMessage.auth_results, InboundMessage.auth_disposition
            ).where(InboundMessage.id.in_(wanted), InboundMessage.auth_results.is_not(None))
        )
        return {row.id: (row.auth_results, row.auth_disposition) for row in rows}
