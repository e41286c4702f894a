"""Write the actions that acted into the dedupe ledger, so a second copy of the message does not."""

from crmmail.processor.context import Ignore, MessageContext


def run(ctx: MessageContext) -> None:
    if not ctx.applied or ctx.message_key is None:
        raise Ignore("no_action")
    ctx.spool.record_actions(
        ctx.inbound.account_id,
        ctx.message_key,
        sorted(a.value for a in ctx.applied),
        ctx.inbound.id,
    )
