"""Keep only the actions whose smart address is visible in To or Cc; envelope-only means BCC."""

from crmmail.processor.context import Ignore, MessageContext
from crmmail.routing.address import parse as parse_address


def run(ctx: MessageContext) -> None:
    visible = {mailbox.address for mailbox in (*ctx.message.to, *ctx.message.cc)}
    actions = set()
    for recipient in ctx.inbound.rcpt_tos:
        smart = parse_address(recipient, ctx.smart_domains)
        if smart is not None and smart.action in ctx.actions and recipient.lower() in visible:
            actions.add(smart.action)
    if not actions:
        raise Ignore("bcc")
    ctx.actions = actions
