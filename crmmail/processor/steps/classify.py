"""Recognise machine-made mail (bounces, feedback reports, auto-replies, bulk): it acts on nothing.

Signals, in order: a null reverse-path or a mailer-daemon sender, a ``multipart/report``
(RFC 3462: delivery status, feedback, read receipts), RFC 3834 ``Auto-Submitted``, the common
vendor auto-reply headers, ``Precedence`` and the auto-reply subject prefixes of big mailers.
"""

from crmmail.processor.context import Ignore, MessageContext
from crmmail.processor.message import ParsedMessage

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
    if message.subject.lower().startswith(AUTO_REPLY_SUBJECTS):
        return "auto_reply"
    return None


def run(ctx: MessageContext) -> None:
    reason = machine_made(ctx.message, ctx.inbound.mail_from.strip())
    if reason is not None:
        raise Ignore(reason)
