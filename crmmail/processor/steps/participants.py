"""The people on the message: From, To and Cc, less our smart addresses and the account's users."""

from crmmail.processor.context import MessageContext
from crmmail.processor.message import Mailbox, ParsedMessage
from crmmail.routing.address import is_our_domain


def run(ctx: MessageContext) -> None:
    users = ctx.accounts.user_emails(ctx.inbound.account_id)
    ctx.participants = participants_of(ctx.message, users, ctx.smart_domains)


def participants_of(
    message: ParsedMessage, users: set[str], smart_domains: tuple[str, ...]
) -> list[Mailbox]:
    """Everyone on From, To and Cc once (a named occurrence preferred), less users and us."""
    chosen: dict[str, Mailbox] = {}
    for mailbox in (*message.from_, *message.to, *message.cc):
        if mailbox.address in users or is_our_domain(mailbox.address, smart_domains):
            continue
        known = chosen.get(mailbox.address)
        if known is None or (not known.name and mailbox.name):
            chosen[mailbox.address] = mailbox
    return list(chosen.values())
