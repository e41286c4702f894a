"""The people on a message: From, To and Cc, less our smart addresses and the account's users.

An address ``contact add`` would refuse (``'pia@client.test'``, a host without a dot, a
malformed international domain) is no participant: nothing is created or looked up for it.
Both capture paths use this rule: the ``participants`` step and the mailbox sync.
"""

from crmmail.mail.addresses import is_contact_address
from crmmail.mail.message import NamedAddress, ParsedMessage
from crmmail.routing.address import is_our_domain


def participants_of(
    message: ParsedMessage, users: set[str], smart_domains: tuple[str, ...]
) -> list[NamedAddress]:
    """Everyone on From, To and Cc once (a named occurrence preferred), less users and us, and
    less addresses that could not be a contact's."""
    chosen: dict[str, NamedAddress] = {}
    refused: set[str] = set()
    for named in (*message.from_, *message.to, *message.cc):
        address = named.address
        if address in users or address in refused or is_our_domain(address, smart_domains):
            continue
        known = chosen.get(address)
        if known is None and not is_contact_address(address):
            refused.add(address)
        elif known is None or (not known.name and named.name):
            chosen[address] = named
    return list(chosen.values())
