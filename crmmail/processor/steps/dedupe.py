"""Drop the actions that already acted on this message (same account, same Message-ID or bytes)."""

from crmmail.processor.context import Ignore, MessageContext
from crmmail.routing.address import Action


def message_key(message_id: str | None, sha256: str) -> str:
    """The identity of a message within an account: its Message-ID, else its content hash."""
    return f"mid:{message_id}" if message_id else f"sha256:{sha256}"


def run(ctx: MessageContext) -> None:
    ctx.message_key = message_key(ctx.message.message_id, ctx.inbound.sha256)
    done = ctx.spool.applied_actions(ctx.inbound.account_id, ctx.message_key)
    ctx.note_acted_before = Action.NOTE.value in done
    ctx.actions = {action for action in ctx.actions if action.value not in done}
    if not ctx.actions:
        raise Ignore("duplicate")
