"""The pipeline steps, one job per module; ``STEPS`` maps each step's name to its function."""

from collections.abc import Callable

from crmmail.processor.context import MessageContext
from crmmail.processor.steps import (
    attach_note,
    authenticate,
    classify,
    create_contacts,
    create_lead,
    dedupe,
    dmarc_policy,
    parse,
    participants,
    record,
    visibility,
)

Step = Callable[[MessageContext], None]

STEPS: dict[str, Step] = {
    "parse": parse.run,
    "classify": classify.run,
    "authenticate": authenticate.run,
    "dmarc_policy": dmarc_policy.run,
    "dedupe": dedupe.run,
    "visibility": visibility.run,
    "participants": participants.run,
    "attach_note": attach_note.run,
    "create_contacts": create_contacts.run,
    "create_lead": create_lead.run,
    "record": record.run,
}
