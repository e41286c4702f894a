"""The people on the message: From, To and Cc, less our smart addresses and the account's users."""

from crmmail.processor.context import MessageContext
from crmmail.processor.message import Mailbox
from crmmail.routing.address import is_our_domain


def run(ctx: MessageContext) -> None:
    message = ctx.message
    users = ctx.accounts.user_emails(ctx.inbound.account_id)
    chosen: dict[str, Mailbox] = {}
    for mailbox in (*message.from_, *message.to, *message.cc):
        if mailbox.address in users or is_our_domain(mailbox.address, ctx.smart_domains):
            continue
        known = chosen.get(mailbox.address)
        if known is None or (not known.name and mailbox.name):
            chosen[mailbox.address] = mailbox
    ctx.participants = list(chosen.values())
