"""Build an outgoing message from what the user typed, refusing anything that could inject headers.

CR or LF in any header field is refused (not stripped): a subject or an address with a line
break is an attack or a paste error, and either way the user must see it. The sender is always
the box's own address; a smart address can never be one.
"""

import html
import re
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime, formataddr, make_msgid

from crmmail.errors import Hint, UserInputError
from crmmail.routing.address import is_our_domain

# Everything str.splitlines() breaks on, and NUL: none of it belongs in a header field.
LINE_BREAKS = frozenset("\r\n\v\f\x1c\x1d\x1e\x85\u2028\u2029\0")
MAX_RECIPIENTS = 100
MAX_SUBJECT = 998
TAG = re.compile(r"<[^>]*>")
BLOCK_END = re.compile(r"(?i)</(p|div|h[1-6]|li|tr)>|<br\s*/?>")


@dataclass(frozen=True)
class Draft:
    """What the user wants to send."""

    sender_name: str
    sender: str
    to: list[str]
    cc: list[str]
    subject: str
    body: str
    is_html: bool = False


def refuse_line_breaks(value: str, what: str) -> str:
    """``value`` unchanged, or a ``UserInputError`` if it holds CR, LF or NUL.

    >>> refuse_line_breaks("Hello", "subject")
    'Hello'
    >>> refuse_line_breaks("Hi\\r\\nBcc: x@evil.test", "subject")
    Traceback (most recent call last):
    crmmail.errors.UserInputError: the subject contains a line break: remove it
    >>> refuse_line_breaks("Hi\\u2028there", "subject")
    Traceback (most recent call last):
    crmmail.errors.UserInputError: the subject contains a line break: remove it
    """
    if any(ch in LINE_BREAKS for ch in value):
        raise UserInputError(f"the {what} contains a line break: remove it")
    return value


def compose(draft: Draft, now: datetime, smart_domains: tuple[str, ...]) -> EmailMessage:
    """The message, with our own Message-ID and the box as sender."""
    if is_our_domain(draft.sender, smart_domains):
        raise UserInputError(f"{draft.sender} is a smart address: it cannot send mail")
    if not draft.to:
        raise UserInputError("the email has no recipient", hint=Hint("give_recipient"))
    if len(draft.to) + len(draft.cc) > MAX_RECIPIENTS:
        raise UserInputError(f"too many recipients: at most {MAX_RECIPIENTS}")
    subject = refuse_line_breaks(draft.subject, "subject")
    if len(subject) > MAX_SUBJECT:
        raise UserInputError(f"the subject is too long: at most {MAX_SUBJECT} characters")
    message = EmailMessage(policy=SMTP)
    message["From"] = formataddr(
        (refuse_line_breaks(draft.sender_name, "sender name"), draft.sender)
    )
    message["To"] = ", ".join(refuse_line_breaks(a, "recipient") for a in draft.to)
    if draft.cc:
        message["Cc"] = ", ".join(refuse_line_breaks(a, "recipient") for a in draft.cc)
    message["Subject"] = subject
    message["Date"] = format_datetime(now)
    message["Message-ID"] = make_msgid(domain=draft.sender.rpartition("@")[2])
    if draft.is_html:
        message.set_content(text_of_html(draft.body))
        message.add_alternative(draft.body, subtype="html")
    else:
        message.set_content(draft.body)
    return message


def text_of_html(markup: str) -> str:
    """A plain-text rendering of simple HTML, for the text/plain alternative.

    >>> text_of_html("<p>Hello <b>Ann</b></p><p>See you &amp; bye</p>")
    'Hello Ann\\nSee you & bye'
    """
    text = BLOCK_END.sub("\n", markup)
    text = html.unescape(TAG.sub("", text))
    return "\n".join(line.strip() for line in text.splitlines() if line.strip())
