"""Find or create the contact of every participant (for ``+contact`` and ``+lead``)."""

from collections.abc import Mapping, Sequence

from crmmail.mail.message import NamedAddress
from crmmail.mail.names import person_names
from crmmail.storage.repositories.crm import CrmRepository


def ensure_contacts(
    crm: CrmRepository, participants: Sequence[NamedAddress], known: Mapping[str, int] | None = None
) -> list[int]:
    """The contact id of every participant, in order, creating the contacts that are missing.

    ``known``: the caller's fresh lookup of these addresses (saves looking them up again).
    """
    if known is None:
        known = crm.contacts_by_email(m.address for m in participants)
    known = dict(known)
    ids: list[int] = []
    for person in participants:
        contact_id = known.get(person.address)
        if contact_id is None:
            contact_id = crm.create_contact_once(person.address, *person_names(person))
            known[person.address] = contact_id
        ids.append(contact_id)
    return list(dict.fromkeys(ids))
