"""Names for what mail creates: a contact's name and first name, a lead's name."""

from collections.abc import Sequence

from crmmail.mail.message import NamedAddress
from crmmail.mail.subjects import without_prefixes

MAX_LEAD_NAME = 300


def person_names(person: NamedAddress) -> tuple[str, str]:
    """(name, first name) from the display name, else from the address's local part.

    >>> person_names(NamedAddress("Jürgen Groß", "jg@x.test"))
    ('Jürgen Groß', 'Jürgen')
    >>> person_names(NamedAddress("Smith, John", "js@x.test"))
    ('John Smith', 'John')
    >>> person_names(NamedAddress("", "mary-ann.o_neil@x.test"))
    ('Mary-Ann O Neil', 'Mary-Ann')
    >>> person_names(NamedAddress('"sales@x.test"', "sales@x.test"))
    ('Sales', 'Sales')
    """
    display = person.name.strip().strip("\"'").strip()
    if display and "@" not in display:
        if display.count(",") == 1:
            last, first = (part.strip() for part in display.split(","))
            if last and first:
                display = f"{first} {last}"
        name = " ".join(display.split())[:200]
        return name, name.split()[0]
    local = person.address.partition("@")[0]
    words = [w.capitalize() for w in local.replace(".", " ").replace("_", " ").split()]
    words = ["-".join(p.capitalize() for p in w.split("-")) for w in words]
    name = (" ".join(words) or person.address)[:200]
    return name, name.split()[0]


def lead_name(subject: str, participants: Sequence[NamedAddress]) -> str:
    """The subject without reply and forward prefixes, else who the lead is from, else a plain
    default.

    >>> lead_name("  Fwd: FW:  Big order ", [])
    'Big order'
    >>> lead_name("Re:", [NamedAddress("Ann Lee", "ann@x.test")])
    'Lead from Ann Lee'
    >>> lead_name("", [])
    'New lead'
    """
    subject = without_prefixes(subject)
    if subject:
        return subject[:MAX_LEAD_NAME]
    if participants:
        return f"Lead from {person_names(participants[0])[0]}"[:MAX_LEAD_NAME]
    return "New lead"
