"""``+contact``: make every participant a contact and put the email on each of their cards.

The loop guard may hold back new contacts: the known participants still get the email.
"""

from crmmail.mail.cards import Card
from crmmail.processor.contacts import ensure_contacts
from crmmail.processor.context import Ignore, MessageContext
from crmmail.processor.loop_guard import creation_budget, note_capped
from crmmail.processor.notes import attach_all
from crmmail.routing.address import Action
from crmmail.storage.models import EntityType


def run(ctx: MessageContext) -> None:
    if Action.CONTACT not in ctx.actions:
        return
    if not ctx.participants and ctx.actions == {Action.CONTACT}:
        raise Ignore("no_participants")
    crm = ctx.crm
    known = crm.contacts_by_email(m.address for m in ctx.participants)
    new = list(dict.fromkeys(m.address for m in ctx.participants if m.address not in known))
    chosen = ctx.participants
    if new:
        budget = creation_budget(ctx)
        if budget < len(new):
            note_capped(ctx, len(new), budget)
            allowed = set(new[:budget]) | set(known)
            chosen = [m for m in ctx.participants if m.address in allowed]
            if not chosen:
                return  # nothing created, no card known: nothing applied
    account = ctx.inbound.account_id
    attach_all(
        ctx, [Card(account, EntityType.CONTACT, cid) for cid in ensure_contacts(crm, chosen, known)]
    )
    ctx.applied.add(Action.CONTACT)
