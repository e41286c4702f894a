"""Parse the raw bytes (bounded, never raising on bad mail) and note the envelope's actions."""

from crmmail.processor.context import MessageContext
from crmmail.processor.message import parse_message
from crmmail.routing.address import parse as parse_address


def run(ctx: MessageContext) -> None:
    ctx.parsed = parse_message(ctx.inbound.raw)
    for recipient in ctx.inbound.rcpt_tos:
        smart = parse_address(recipient, ctx.smart_domains)
        if smart is not None:
            ctx.addressed.append(smart)
            ctx.actions.add(smart.action)
