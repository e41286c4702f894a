"""The note address: put the email on the cards of known participants, their leads, customers."""

from crmmail.processor.context import Ignore, MessageContext
from crmmail.processor.notes import attach_all, cards_of
from crmmail.routing.address import Action


def run(ctx: MessageContext) -> None:
    if Action.NOTE not in ctx.actions:
        return
    crm = ctx.crm
    contacts = crm.contacts_by_email(m.address for m in ctx.participants)
    contact_ids = sorted(set(contacts.values()))
    if not contact_ids:
        if ctx.actions == {Action.NOTE}:
            raise Ignore("no_match")
        return
    attach_all(ctx, cards_of(crm, contact_ids))
    ctx.applied.add(Action.NOTE)
