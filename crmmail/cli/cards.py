"""``crmmail lead`` and ``crmmail customer``: add and list them; set a lead's status."""

from collections.abc import Callable, Sequence

import click
from sqlalchemy.orm import Session

from crmmail.cli.core import Context, cli, emit, json_option, listing_command, pass_context
from crmmail.errors import UserInputError
from crmmail.services import crm
from crmmail.services.crm import CustomerView, LeadView
from crmmail.storage.models import LeadStatus

Card = LeadView | CustomerView


def _card_commands(
    group_name: str,
    add: Callable[[Session, str, str, list[str]], Card],
    listing: Callable[[Session, str], Sequence[Card]],
) -> click.Group:
    """``lead`` and ``customer`` have the same two commands (``add`` and ``list``)."""

    @cli.group(group_name, help=f"{group_name.capitalize()}s.")
    def group() -> None:
        pass

    @group.command("add", help=f"Add a {group_name}, linked to contacts by address.")
    @click.argument("slug")
    @click.argument("name")
    @click.option("--contact", "contacts", multiple=True, metavar="EMAIL")
    @json_option
    @pass_context
    def add_command(
        ctx: Context, slug: str, name: str, contacts: tuple[str, ...], as_json: bool
    ) -> None:
        data = ctx.run(lambda s: add(s, slug, name, list(contacts)))
        emit(data, as_json, lambda d: f"{group_name} {d.id} added: {d.name}")

    listing_command(group, f"List the {group_name}s of an account.", listing, _card_line)
    return group


def _card_line(card: Card) -> str:
    status = f"  ({card.status})" if isinstance(card, LeadView) else ""
    return f"{card.id:>6}  {card.name}{status}  contacts {card.contact_ids}"


lead = _card_commands("lead", crm.add_lead, crm.list_leads)
customer = _card_commands("customer", crm.add_customer, crm.list_customers)


@lead.command("set")
@click.argument("lead_id", type=int)
@click.option(
    "--status",
    type=click.Choice([status.value for status in LeadStatus]),
    help="open (mail with its contacts is noted on it), or won or lost (no longer).",
)
@json_option
@pass_context
def lead_set(ctx: Context, lead_id: int, status: str | None, as_json: bool) -> None:
    """Change a lead's status; only open leads receive notes from mail."""
    if status is None:
        raise UserInputError("nothing to change: give --status open|won|lost")
    data = ctx.run(lambda s: crm.set_lead_status(s, lead_id, status))
    emit(data, as_json, lambda d: f"lead {d.id} ({d.name}) is {d.status}")
