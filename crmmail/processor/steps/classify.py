"""Recognise machine-made mail (bounces, reports, auto-replies, bulk, lists): it acts on nothing.

Signals, in order: a null reverse-path or a mailer-daemon sender, a ``multipart/report``
(RFC 3462: delivery status, feedback, read receipts), RFC 3834 ``Auto-Submitted``, the common
vendor auto-reply headers, ``Precedence``, the list headers of RFC 2919 (``List-Id``) and
RFC 2369 (``List-Unsubscribe``, ``List-Post``...), and the auto-reply subject prefixes of big
mailers.

List traffic is ignored entirely (reason ``list``), like ``Precedence: list`` and bulk mail
already were: a copy that reaches a smart address through a list is the list's (or a
newsletter's) distribution, not a person writing to the account, and attaching it would put
every post of a contact who writes to a list on their card. A person who copies the smart
address on a list post sends that copy directly, without the list headers, so it still acts.
The message stays in the spool with its reason.
"""

from crmmail.mail.message import ParsedMessage
from crmmail.processor.context import Ignore, MessageContext

BOUNCE_SENDERS = ("mailer-daemon", "postmaster")
AUTO_REPLY_HEADERS = ("x-autoreply", "x-autorespond", "x-autoresponder")
AUTO_REPLY_SUBJECTS = (
    "autoreply:",
    "auto-reply:",
    "automatic reply:",
    "out of office:",
    "out of office autoreply:",
    "abwesenheitsnotiz:",
    "réponse automatique :",
    "respuesta automática:",
)
BULK_PRECEDENCE = ("bulk", "junk", "list")
LIST_HEADERS = (  # RFC 2919 and RFC 2369
    "list-id",
    "list-unsubscribe",
    "list-post",
    "list-help",
    "list-subscribe",
    "list-owner",
    "list-archive",
)


def machine_made(message: ParsedMessage, mail_from: str) -> str | None:
    """The ignore reason for machine-made mail, or ``None`` for mail written by a person."""
    sender = message.from_[0].address if message.from_ else ""
    if mail_from in ("", "<>") or sender.partition("@")[0] in BOUNCE_SENDERS:
        return "bounce"
    if message.content_type == "multipart/report":
        report = message.header("content-type").lower()
        if "feedback-report" in report:
            return "feedback"
        if "disposition-notification" in report:
            return "auto_reply"
        return "bounce"
    auto_submitted = message.header("auto-submitted").strip().lower()
    if auto_submitted and auto_submitted != "no":
        return "auto_reply"
    if any(message.header(name) for name in AUTO_REPLY_HEADERS):
        return "auto_reply"
    precedence = message.header("precedence").strip().lower()
    if precedence == "auto_reply":
        return "auto_reply"
    if precedence in BULK_PRECEDENCE:
        return "bulk"
    if any(message.header(name) for name in LIST_HEADERS):
        return "list"
    if message.subject.lower().startswith(AUTO_REPLY_SUBJECTS):
        return "auto_reply"
    return None


def run(ctx: MessageContext) -> None:
    reason = machine_made(ctx.message, ctx.inbound.mail_from.strip())
    if reason is not None:
        raise Ignore(reason)
