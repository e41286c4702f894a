"""Parse the raw bytes (bounded, never raising on bad mail) and note the envelope's actions.

What the parser's limits cut (``ParsedMessage.limits``) is logged as one warning with the
inbound id; the message goes on through the pipeline with what was read. A message without a
usable Date (absent, or one the parser could not read or write in UTC) is dated by its arrival
here: when the intake answered ``250``.
"""

import logging

from crmmail.mail.message import parse_message
from crmmail.processor.context import MessageContext
from crmmail.routing.resolve import accepted_addresses

log = logging.getLogger(__name__)


def run(ctx: MessageContext) -> None:
    ctx.parsed = parse_message(ctx.inbound.raw)
    if ctx.parsed.date is None:
        ctx.parsed.date = ctx.inbound.received_at
    if ctx.parsed.limits:
        log.warning(
            "inbound %d: parsed within limits: %s", ctx.inbound.id, "; ".join(ctx.parsed.limits)
        )
    ctx.addressed = accepted_addresses(ctx.inbound.rcpt_tos, ctx.smart_domains)
    ctx.actions.update(smart.action for smart in ctx.addressed)
