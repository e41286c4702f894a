"""``crmmail user``: add and list the users of an account."""

import click
from sqlalchemy.orm import Session

from crmmail.cli.core import Context, cli, emit, json_option, listing_command, pass_context, warn
from crmmail.services import accounts, crm
from crmmail.services.accounts import UserView


@cli.group()
def user() -> None:
    """Users of an account (their addresses are never treated as contacts)."""


@user.command("add")
@click.argument("slug")
@click.argument("email")
@click.option("--name")
@click.option("--admin", is_flag=True, help="Give the user the admin role.")
@click.option("--no-email-access", is_flag=True, help="The user may not read shared mail.")
@json_option
@pass_context
def user_add(
    ctx: Context,
    slug: str,
    email: str,
    name: str | None,
    admin: bool,
    no_email_access: bool,
    as_json: bool,
) -> None:
    """Add a user to an account (warns when the address is a contact's: see `contact add`)."""
    domains = ctx.settings.smart_domains

    def add(session: Session) -> tuple[UserView, str | None]:
        added = accounts.add_user(
            session,
            slug,
            email,
            name=name,
            admin=admin,
            email_access=not no_email_access,
            smart_domains=domains,
        )
        return added, crm.user_address_warning(session, slug, added.email)

    data, warning = ctx.run(add)
    emit(data, as_json, lambda d: f"user {d.email} added as {d.role}")
    warn(warning)


listing_command(
    user,
    "List the users of an account.",
    accounts.list_users,
    lambda r: f"{r.id:>6}  {r.email}  {r.role}" + ("" if r.email_access else "  (no email access)"),
)
