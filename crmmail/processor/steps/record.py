"""Write the message's actions into the dedupe ledger, so a second copy does not act again.

Every action that reached this point is recorded, including a note action that found no card
this time: a resent copy acts on nothing. A later copy to a creating address the first did not
use still puts the note on the cards it creates (``attach_note`` reads the ledger for that).
"""

from crmmail.processor.context import Ignore, MessageContext


def run(ctx: MessageContext) -> None:
    if not ctx.applied or ctx.message_key is None:
        raise Ignore("no_match")  # nothing was written: a later retry may still act
    ctx.ledger.record(
        ctx.inbound.account_id,
        ctx.message_key,
        sorted(action.value for action in ctx.actions),
        inbound_id=ctx.inbound.id,
    )
