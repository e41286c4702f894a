"""``crmmail note``: list the notes on an account's cards, as a user may see them."""

import click

from crmmail.cli.core import Context, cli, emit, json_option, pass_context
from crmmail.services import crm


@cli.group()
def note() -> None:
    """Notes (emails on cards)."""


@note.command("list")
@click.argument("slug")
@click.option("--as", "as_user", metavar="USER_EMAIL", help="Show what this user may see.")
@json_option
@pass_context
def note_list(ctx: Context, slug: str, as_user: str | None, as_json: bool) -> None:
    """List the notes on an account's cards (mailbox emails as the user may see them)."""
    rows = ctx.run(lambda s: crm.list_notes(s, slug, as_user))
    emit(
        rows,
        as_json,
        lambda data: "\n".join(
            f"{r.id:>6}  {r.entity_type} {r.entity_id}  "
            + ("(insufficient rights)" if r.insufficient_rights else str(r.subject))
            for r in data
        ),
    )
