"""The loop guard: how many contacts and leads the sender of a message may still create this hour.

Two systems mailing each other through a ``+contact`` or ``+lead`` address (auto-responders,
forwarding loops, a misconfigured script) must not fill the CRM. Each contact and lead records
the From address of the message that created it; mail from one sender creates at most
``CRMMAIL_MAX_CREATIONS_PER_SENDER_HOUR`` (default 20) in a rolling hour per account. Beyond
that the message still goes on the cards of known contacts; the step leaves the remark
``loop_guard``, which becomes the message's reason.
"""

import logging
from datetime import timedelta

from crmmail.processor.context import MessageContext
from crmmail.storage.base import utcnow

WINDOW = timedelta(hours=1)
DEFAULT_CAP = 20  # when the context carries no settings
REMARK = "loop_guard"

log = logging.getLogger(__name__)


def creation_budget(ctx: MessageContext) -> int:
    """How many more contacts and leads this message's sender may create now."""
    cap = ctx.settings.max_creations_per_sender_hour if ctx.settings else DEFAULT_CAP
    used = ctx.crm.created_by_sender(ctx.sender, utcnow() - WINDOW)
    return max(0, cap - used)


def note_capped(ctx: MessageContext, wanted: int, allowed: int) -> None:
    """Remember (and log) that the guard held back some creations."""
    ctx.remark = REMARK
    log.warning(
        "inbound %d: loop guard: %s may create %d more contact(s)/lead(s) this hour; "
        "%d of %d created",
        ctx.inbound.id,
        ctx.sender or "(no From)",
        allowed,
        allowed,
        wanted,
    )
