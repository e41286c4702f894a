"""``+lead``: create one lead named from the subject, its contacts being all the participants."""

from crmmail.processor.contacts import ensure_contacts
from crmmail.processor.context import MessageContext
from crmmail.processor.names import lead_name
from crmmail.processor.notes import attach
from crmmail.routing.address import Action
from crmmail.storage.models import EntityType


def run(ctx: MessageContext) -> None:
    if Action.LEAD not in ctx.actions:
        return
    crm = ctx.crm
    contact_ids = ensure_contacts(crm, ctx.participants)
    lead = crm.create_lead(lead_name(ctx.message.subject, ctx.participants), contact_ids)
    attach(ctx, EntityType.LEAD, lead.id)
    ctx.applied.add(Action.LEAD)
