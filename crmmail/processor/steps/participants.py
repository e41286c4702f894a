"""Who the message is about: its participants (``crmmail.mail.participants``), less our users."""

from crmmail.mail.participants import participants_of
from crmmail.processor.context import MessageContext


def run(ctx: MessageContext) -> None:
    users = ctx.accounts.user_emails(ctx.inbound.account_id)
    ctx.participants = participants_of(ctx.message, users, ctx.smart_domains)
