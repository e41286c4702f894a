"""The people on the message: From, To and Cc, less our smart addresses and the account's users.

An address ``contact add`` would refuse (``'pia@client.test'``, a host without a dot, a
malformed international domain) is no participant: nothing is created or looked up for it.
"""

from crmmail.mail.addresses import is_contact_address
from crmmail.processor.context import MessageContext
from crmmail.processor.message import Mailbox, ParsedMessage
from crmmail.routing.address import is_our_domain


def run(ctx: MessageContext) -> None:
    users = ctx.accounts.user_emails(ctx.inbound.account_id)
    ctx.participants = participants_of(ctx.message, users, ctx.smart_domains)


def participants_of(
    message: ParsedMessage, users: set[str], smart_domains: tuple[str, ...]
) -> list[Mailbox]:
    """Everyone on From, To and Cc once (a named occurrence preferred), less users and us, and
    less addresses that could not be a contact's."""
    chosen: dict[str, Mailbox] = {}
    refused: set[str] = set()
    for mailbox in (*message.from_, *message.to, *message.cc):
        address = mailbox.address
        if address in users or address in refused or is_our_domain(address, smart_domains):
            continue
        known = chosen.get(address)
        if known is None and not is_contact_address(address):
            refused.add(address)
        elif known is None or (not known.name and mailbox.name):
            chosen[address] = mailbox
    return list(chosen.values())
