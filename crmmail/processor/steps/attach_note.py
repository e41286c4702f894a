"""The note address: put the email on the cards of known participants, their leads, customers.

It runs after the creating actions, so their new contacts and lead are known participants' cards
by then. A copy that only creates (``+contact``, ``+lead``) of a message an earlier copy asked a
note for (it acted, or found no card then: see ``dedupe``) puts the note on the cards that exist
now as well: the outcome does not depend on which smart address arrived first. Cards that show
the message already are skipped.
"""

from crmmail.mail.cards import cards_of
from crmmail.processor.context import Ignore, MessageContext
from crmmail.processor.notes import attach_all
from crmmail.routing.address import Action


def run(ctx: MessageContext) -> None:
    asked = Action.NOTE in ctx.actions
    asked_before = ctx.note_acted_before or ctx.note_found_no_card_before
    if not asked and not (asked_before and any(a.creates for a in ctx.actions)):
        return
    crm = ctx.crm
    contacts = crm.contacts_by_email(m.address for m in ctx.participants)
    contact_ids = sorted(set(contacts.values()))
    if not contact_ids:
        if ctx.actions == {Action.NOTE}:
            raise Ignore("no_match")
        return
    attach_all(ctx, cards_of(crm, contact_ids))
    if asked:
        ctx.applied.add(Action.NOTE)
