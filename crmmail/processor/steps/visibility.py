"""Keep only the actions whose smart address is visible in To or Cc; envelope-only means BCC.

Addresses are compared as smart addresses (slug and action), not as strings, so case, quoting
and which of our domains was written make no difference.
"""

from crmmail.processor.context import Ignore, MessageContext
from crmmail.routing.address import parse as parse_address


def run(ctx: MessageContext) -> None:
    visible = set()
    for named in (*ctx.message.to, *ctx.message.cc):
        smart = parse_address(named.address, ctx.smart_domains)
        if smart is not None:
            visible.add((smart.slug, smart.action))
    actions = {
        smart.action
        for smart in ctx.addressed
        if smart.action in ctx.actions and (smart.slug, smart.action) in visible
    }
    if not actions:
        raise Ignore("bcc")
    ctx.actions = actions
