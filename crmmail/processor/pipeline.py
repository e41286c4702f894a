"""The named pipeline a spooled message runs through, and the runner that decides its outcome.

Steps raise ``Ignore`` to end a message as ``ignored`` with a reason, always before they write
CRM data (``dmarc_policy`` keeps the authentication verdict on the spool row first); anything
else they raise is a failure: the transaction is rolled back and the worker counts an attempt.

``authenticate`` runs before the first step that touches the database, so its DNS queries never
hold a transaction open. A step that did less than asked (the loop guard) leaves a ``remark``:
it becomes the reason of a ``done`` message, and replaces ``no_match`` when nothing was left.

The creating actions (``+contact``, ``+lead``) run before the note, so the note goes on every
card that exists after them, whichever of a message's smart addresses came first.
"""

from dataclasses import dataclass

from crmmail.processor.context import Ignore, MessageContext
from crmmail.processor.steps import STEPS
from crmmail.storage.models import InboundStatus

SMART_ADDRESS_PIPELINE: tuple[str, ...] = (
    "parse",
    "classify",
    "authenticate",
    "dmarc_policy",
    "dedupe",
    "visibility",
    "participants",
    "create_contacts",
    "create_lead",
    "attach_note",
    "record",
)


@dataclass(frozen=True)
class Outcome:
    """How a message ended."""

    status: InboundStatus
    reason: str | None = None


def run_pipeline(
    ctx: MessageContext, pipeline: tuple[str, ...] = SMART_ADDRESS_PIPELINE
) -> Outcome:
    """Run the steps in order; an ``Ignore`` from any of them ends the message there."""
    try:
        for name in pipeline:
            STEPS[name](ctx)
    except Ignore as outcome:
        if outcome.reason == "no_match" and ctx.remark:
            return Outcome(InboundStatus.IGNORED, ctx.remark)
        return Outcome(InboundStatus.IGNORED, outcome.reason)
    return Outcome(InboundStatus.DONE, ctx.remark)
