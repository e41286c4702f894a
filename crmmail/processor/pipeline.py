"""The named pipeline a spooled message runs through, and the runner that decides its outcome.

Steps raise ``Ignore`` to end a message as ``ignored`` with a reason; anything else they raise
is a failure: the transaction is rolled back and the worker counts an attempt.
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

# Steps that only read the message: they run before the transaction touches the database.
PURE_STEPS = frozenset({"parse", "classify"})


@dataclass(frozen=True)
class Outcome:
    """How a message ended."""

    status: InboundStatus
    reason: str | None = None


def run_pipeline(
    ctx: MessageContext, pipeline: tuple[str, ...] = SMART_ADDRESS_PIPELINE
) -> Outcome:
    """Run the steps in order; an ``Ignore`` from any of them ends the message there.

    The steps' writes sit in a savepoint, so an ignored message leaves no CRM rows behind.
    """
    savepoint = None
    try:
        for name in pipeline:
            if savepoint is None and name not in PURE_STEPS:
                savepoint = ctx.session.begin_nested()
            STEPS[name](ctx)
    except Ignore as outcome:
        if savepoint is not None:
            savepoint.rollback()
        return Outcome(InboundStatus.IGNORED, outcome.reason)
    if savepoint is not None:
        savepoint.commit()
    return Outcome(InboundStatus.DONE)
