"""``+lead``: create one lead named from the subject, its contacts being all the participants.

The loop guard counts the lead and its new contacts. With no room for the lead, the email goes
on the cards of the known participants (their contacts, open leads and customers) instead.
"""

from crmmail.mail.cards import cards_of
from crmmail.mail.names import lead_name
from crmmail.processor.contacts import ensure_contacts
from crmmail.processor.context import MessageContext
from crmmail.processor.loop_guard import creation_budget, note_capped
from crmmail.processor.notes import attach, attach_all
from crmmail.routing.address import Action
from crmmail.storage.models import EntityType


def run(ctx: MessageContext) -> None:
    if Action.LEAD not in ctx.actions:
        return
    crm = ctx.crm
    known = crm.contacts_by_email(m.address for m in ctx.participants)
    new = list(dict.fromkeys(m.address for m in ctx.participants if m.address not in known))
    budget = creation_budget(ctx)
    if budget < 1 + len(new):
        note_capped(ctx, 1 + len(new), budget)
    if budget < 1:
        cards = cards_of(crm, sorted(set(known.values())))
        attach_all(ctx, cards)
        if cards:
            ctx.applied.add(Action.LEAD)
        return
    allowed = set(new[: budget - 1]) | set(known)
    chosen = [m for m in ctx.participants if m.address in allowed]
    contact_ids = ensure_contacts(crm, chosen, known)
    lead = crm.create_lead(lead_name(ctx.message.subject, ctx.participants), contact_ids)
    attach(ctx, EntityType.LEAD, lead.id)
    ctx.applied.add(Action.LEAD)
