"""The named pipeline a spooled message runs through, and the runner that decides its outcome.

Steps raise ``Ignore`` to end a message as ``ignored`` with a reason, always before they write
anything; anything else they raise is a failure: the transaction is rolled back and the worker
counts an attempt.
"""

from dataclasses import dataclass

from crmmail.processor.context import Ignore, MessageContext
from crmmail.processor.steps import STEPS
from crmmail.storage.models import InboundStatus

SMART_ADDRESS_PIPELINE: tuple[str, ...] = (
    "parse",
    "classify",
    "dedupe",
    "visibility",
    "participants",
    "attach_note",
    "create_contacts",
    "create_lead",
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
        return Outcome(InboundStatus.IGNORED, outcome.reason)
    return Outcome(InboundStatus.DONE)
