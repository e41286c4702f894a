"""``crmmail deleted list`` and ``crmmail purge``: the CRM's Deleted folder."""

import click

from crmmail.cli.core import Context, as_option, cli, emit, json_option, pass_context
from crmmail.cli.emails import email_rows
from crmmail.services import deleted, mail_views
from crmmail.storage.base import utcnow


@cli.group("deleted")
def deleted_group() -> None:
    """The CRM's Deleted folder (admins only; emails stay 30 days)."""


@deleted_group.command("list")
@click.argument("slug")
@as_option
@json_option
@pass_context
def deleted_list(ctx: Context, slug: str, as_user: str, as_json: bool) -> None:
    """List the Deleted folder."""
    rows = ctx.run(lambda s: mail_views.list_deleted(s, slug, as_user))
    emit(rows, as_json, email_rows)


@cli.command()
@json_option
@pass_context
def purge(ctx: Context, as_json: bool) -> None:
    """Remove for good what has been in the Deleted folder for 30 days (serve does it hourly)."""
    count = ctx.run(lambda s: deleted.purge_deleted(s, utcnow()))
    emit({"purged": count}, as_json, lambda d: f"purged {d['purged']} email(s)")
