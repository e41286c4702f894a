"""Write the message's actions into the dedupe ledger, so a second copy does not act again.

Every action that reached this point is recorded, including a note action that found no card
this time: a resent copy must not attach what the first copy's other actions created.
"""

from crmmail.processor.context import Ignore, MessageContext


def run(ctx: MessageContext) -> None:
    if not ctx.applied or ctx.message_key is None:
        raise Ignore("no_match")  # nothing was written: a later retry may still act
    ctx.spool.record_actions(
        ctx.inbound.account_id,
        ctx.message_key,
        sorted(action.value for action in ctx.actions),
        ctx.inbound.id,
    )
