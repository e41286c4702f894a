"""Drop the actions that already acted on this message (same account, same Message-ID or bytes).

It also tells ``attach_note`` whether an earlier copy asked for the note: acted on (the ledger
holds it) or found no card then (that copy ended ``ignored: no_match``). A copy that only
creates then puts the note on the cards it makes, as one copy carrying both addresses would.
"""

from crmmail.mail.keys import message_key
from crmmail.processor.context import Ignore, MessageContext
from crmmail.routing.address import Action


def run(ctx: MessageContext) -> None:
    ctx.message_key = message_key(ctx.message.message_id, ctx.inbound.sha256)
    account = ctx.inbound.account_id
    done = ctx.ledger.actions(account, ctx.message_key)
    ctx.actions = {action for action in ctx.actions if action.value not in done}
    if not ctx.actions:
        raise Ignore("duplicate")
    ctx.note_acted_before = Action.NOTE.value in done
    ctx.note_found_no_card_before = (
        not ctx.note_acted_before
        and Action.NOTE not in ctx.actions
        and any(action.creates for action in ctx.actions)
        and ctx.spool.note_found_no_card(account, ctx.message_key)
    )
