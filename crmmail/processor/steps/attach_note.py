"""The note address: put the email on the cards of known participants, their leads, customers."""

from crmmail.processor.context import Ignore, MessageContext
from crmmail.processor.notes import attach
from crmmail.routing.address import Action
from crmmail.storage.models import EntityType


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
    for contact_id in contact_ids:
        attach(ctx, EntityType.CONTACT, contact_id)
    for lead_id in crm.open_leads_of(contact_ids):
        attach(ctx, EntityType.LEAD, lead_id)
    for customer_id in crm.customers_of(contact_ids):
        attach(ctx, EntityType.CUSTOMER, customer_id)
    ctx.applied.add(Action.NOTE)
