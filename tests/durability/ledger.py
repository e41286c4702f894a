"""The end-of-run audit: what the clients were told against what the database holds."""

import hashlib
from collections import Counter
from dataclasses import dataclass

from sqlalchemy import select

from crmmail.storage.database import Database
from crmmail.storage.models import InboundMessage, Note


@dataclass(frozen=True)
class Audit:
    """Figures of one run; ``lost`` and the lists must be empty for the run to pass."""

    spooled: int  # spool rows
    spool_duplicates: int  # spool rows beyond the first for one message (dropped by the worker)
    lost: list[str]  # answered 250, yet no note
    noted_twice: list[str]  # more than one note for one message
    half_stored: list[int]  # spool rows whose bytes are not exactly a message sent
    unfinished: list[int]  # spool rows neither done nor ignored
    not_dropped: list[str]  # not one row done and every other row dropped as a duplicate


def audit(db: Database, sent: dict[str, bytes], accepted: set[str]) -> Audit:
    by_digest = {hashlib.sha256(raw).hexdigest(): message_id for message_id, raw in sent.items()}
    with db.read() as session:
        rows = session.execute(
            select(
                InboundMessage.id, InboundMessage.raw, InboundMessage.status, InboundMessage.reason
            ).order_by(InboundMessage.id)
        ).all()
        # The note keeps the Message-ID without its angle brackets.
        notes = Counter(f"<{mid}>" for mid in session.scalars(select(Note.message_id)))
    half_stored, unfinished = [], []
    outcomes: dict[str, list[tuple[str, str | None]]] = {}
    for row in rows:
        message_id = by_digest.get(hashlib.sha256(row.raw).hexdigest())
        if message_id is None:
            half_stored.append(row.id)
        elif row.status not in ("done", "ignored"):
            unfinished.append(row.id)
        else:
            outcomes.setdefault(message_id, []).append((row.status, row.reason))
    once = ("done", None)
    dropped = ("ignored", "duplicate")
    not_dropped = sorted(
        message_id
        for message_id, seen in outcomes.items()
        if Counter(seen) != Counter([once] + [dropped] * (len(seen) - 1))
    )
    return Audit(
        spooled=len(rows),
        spool_duplicates=sum(len(seen) - 1 for seen in outcomes.values()),
        lost=sorted(message_id for message_id in accepted if notes[message_id] == 0),
        noted_twice=sorted(message_id for message_id, count in notes.items() if count > 1),
        half_stored=half_stored,
        unfinished=unfinished,
        not_dropped=not_dropped,
    )
