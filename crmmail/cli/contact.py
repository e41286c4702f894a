"""``crmmail contact``: add and list contacts."""

import click
from sqlalchemy.orm import Session

from crmmail.cli.core import Context, cli, emit, json_option, listing_command, pass_context, warn
from crmmail.services import crm
from crmmail.services.crm import ContactView


@cli.group()
def contact() -> None:
    """Contacts."""


@contact.command("add")
@click.argument("slug")
@click.argument("email")
@click.option("--name")
@json_option
@pass_context
def contact_add(ctx: Context, slug: str, email: str, name: str | None, as_json: bool) -> None:
    """Add a contact with one address (warns when it is a user's: mail with it reaches no card)."""
    domains = ctx.settings.smart_domains

    def add(session: Session) -> tuple[ContactView, str | None]:
        added = crm.add_contact(session, slug, email, name, domains)
        return added, crm.user_address_warning(session, slug, added.emails[0])

    data, warning = ctx.run(add)
    emit(data, as_json, lambda d: f"contact {d.id} added: {d.name} <{d.emails[0]}>")
    warn(warning)


listing_command(
    contact,
    "List the contacts of an account.",
    crm.list_contacts,
    lambda r: f"{r.id:>6}  {r.name}  {', '.join(r.emails)}",
)
