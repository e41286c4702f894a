"""Keep the sender-authentication verdict on the spool row and apply the account's DMARC policy.

On a DMARC ``fail`` the account's policy decides: ``accept`` and ``tag`` go on (``tag`` shows
the failure with the notes), ``quarantine`` ends the message as ``ignored: dmarc_fail`` with the
verdict kept, acting on nothing. A domain that publishes ``p=none`` asks receivers not to act on
failures (RFC 7489 6.3), so its failures are tagged at most, never quarantined.
"""

from crmmail.processor.context import Ignore, MessageContext
from crmmail.storage.models.account import DmarcPolicy


def run(ctx: MessageContext) -> None:
    auth = ctx.authentication
    if auth is None or ctx.settings is None:
        return
    disposition = None
    if auth.dmarc.result == "fail":
        policy = DmarcPolicy(ctx.accounts.dmarc_policy(ctx.inbound.account_id) or DmarcPolicy.TAG)
        if policy is DmarcPolicy.QUARANTINE and auth.dmarc.policy == "none":
            policy = DmarcPolicy.TAG
        disposition = policy.value
    ctx.spool.record_authentication(
        ctx.inbound.id, auth.header_value(ctx.settings.smtp_hostname), disposition
    )
    if disposition == DmarcPolicy.QUARANTINE:
        raise Ignore("dmarc_fail")
