"""``+contact``: make every participant a contact and put the email on each of their cards."""

from crmmail.processor.contacts import ensure_contacts
from crmmail.processor.context import Ignore, MessageContext
from crmmail.processor.notes import attach
from crmmail.routing.address import Action
from crmmail.storage.models import EntityType


def run(ctx: MessageContext) -> None:
    if Action.CONTACT not in ctx.actions:
        return
    if not ctx.participants and ctx.actions == {Action.CONTACT}:
        raise Ignore("no_participants")
    for contact_id in ensure_contacts(ctx.crm, ctx.participants):
        attach(ctx, EntityType.CONTACT, contact_id)
    ctx.applied.add(Action.CONTACT)
