"""``crmmail inbound``: the spool of received messages; list them, requeue one."""

import click

from crmmail.cli.core import Context, cli, emit, json_option, listing_command, pass_context
from crmmail.services import inbound


@cli.group("inbound")
def inbound_group() -> None:
    """Received messages (the spool)."""


listing_command(
    inbound_group,
    "List an account's received messages with their status.",
    inbound.list_inbound,
    lambda r: f"{r.id:>6}  {r.status:10} {r.reason or '':12} {r.message_id or ''}",
)


@inbound_group.command("retry")
@click.argument("inbound_id", type=int)
@json_option
@pass_context
def inbound_retry(ctx: Context, inbound_id: int, as_json: bool) -> None:
    """Put a message (typically a dead one) back in the queue."""
    data = ctx.run(lambda s: inbound.retry_inbound(s, inbound_id))
    emit(data, as_json, lambda d: f"inbound {d.id} queued again")
