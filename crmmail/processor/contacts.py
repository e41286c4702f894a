"""Find or create the contact of every participant (for ``+contact`` and ``+lead``)."""

from collections.abc import Mapping, Sequence

from crmmail.processor.message import Mailbox
from crmmail.processor.names import person_names
from crmmail.storage.repositories.crm import CrmRepository


def ensure_contacts(
    crm: CrmRepository, participants: Sequence[Mailbox], known: Mapping[str, int] | None = None
) -> list[int]:
    """The contact id of every participant, in order, creating the contacts that are missing.

    ``known``: the caller's fresh lookup of these addresses (saves looking them up again).
    """
    if known is None:
        known = crm.contacts_by_email(m.address for m in participants)
    known = dict(known)
    ids: list[int] = []
    for mailbox in participants:
        contact_id = known.get(mailbox.address)
        if contact_id is None:
            contact_id = crm.create_contact_once(mailbox.address, *person_names(mailbox))
            known[mailbox.address] = contact_id
        ids.append(contact_id)
    return list(dict.fromkeys(ids))
