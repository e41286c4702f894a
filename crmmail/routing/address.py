"""The smart-address grammar: ``slug[+action]@smart_domain``, parsed by a pure function.

Only the strict form is a smart address: a slug of letters, digits and inner hyphens (ASCII,
compared case-insensitively), an optional known action, and one of our domains. Quoted local
parts, ``%`` and ``!`` relay forms, source routes and IP literals never are. (aiosmtpd and the
header reader drop needless quotes first: ``"acme"@domain`` is the mailbox ``acme@domain``.)

>>> parse("Acme@Mail.Localhost", ("mail.localhost",))
SmartAddress(slug='acme', action=<Action.NOTE: 'note'>, domain='mail.localhost')
>>> parse("acme+lead@mail.localhost", ("mail.localhost",)).action
<Action.LEAD: 'lead'>
>>> parse("acme+nope@mail.localhost", ("mail.localhost",)) is None
True
>>> parse('"acme"@mail.localhost', ("mail.localhost",)) is None
True
>>> is_our_domain("x%y@MAIL.localhost", ("mail.localhost",))
True
"""

import re
import string
from dataclasses import dataclass
from enum import StrEnum

SLUG_PATTERN = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_SLUG = re.compile(SLUG_PATTERN)
_LOCAL_PART = re.compile(rf"({SLUG_PATTERN})(?:\+([a-z]+))?")
_ASCII_LOWER = str.maketrans(string.ascii_uppercase, string.ascii_lowercase)


class Action(StrEnum):
    """What a smart address does with the mail it receives."""

    NOTE = "note"
    CONTACT = "contact"
    LEAD = "lead"

    @property
    def creates(self) -> bool:
        """Whether the action makes cards (contacts, a lead) rather than only noting."""
        return self is not Action.NOTE


@dataclass(frozen=True)
class SmartAddress:
    """A parsed smart address."""

    slug: str
    action: Action
    domain: str

    def __str__(self) -> str:
        return format_address(self.slug, self.action, self.domain)


def is_valid_slug(slug: str) -> bool:
    """Whether ``slug`` can name an account (and so the local part of its addresses).

    >>> [is_valid_slug(s) for s in ("acme", "acme-2", "-acme", "Acme", "a+b", "")]
    [True, True, False, False, False, False]
    """
    return _SLUG.fullmatch(slug) is not None


def format_address(slug: str, action: Action, domain: str) -> str:
    """The address of an account's action.

    >>> format_address("acme", Action.NOTE, "mail.localhost")
    'acme@mail.localhost'
    >>> format_address("acme", Action.LEAD, "mail.localhost")
    'acme+lead@mail.localhost'
    """
    if action is Action.NOTE:
        return f"{slug}@{domain}"
    return f"{slug}+{action.value}@{domain}"


def ascii_lower(text: str) -> str:
    """Lower-case ASCII letters only (``str.lower`` maps the Kelvin sign to ``k``).

    >>> ascii_lower("ACME\u212a")
    'acme\u212a'
    """
    return text.translate(_ASCII_LOWER)


def split_address(address: str) -> tuple[str, str] | None:
    """Split at the last ``@`` into (local part, lower-cased domain); ``None`` if there is none."""
    local, at, domain = address.rpartition("@")
    domain = ascii_lower(domain).rstrip(".")
    if not at or not local or not domain:
        return None
    return local, domain


def is_our_domain(address: str, smart_domains: tuple[str, ...]) -> bool:
    """Whether the address is on one of our smart domains, whatever its local part."""
    parts = split_address(address)
    return parts is not None and parts[1] in smart_domains


def parse(address: str, smart_domains: tuple[str, ...]) -> SmartAddress | None:
    """The smart address ``address`` names, or ``None`` if it is not one."""
    parts = split_address(address)
    if parts is None or parts[1] not in smart_domains:
        return None
    local, domain = parts
    match = _LOCAL_PART.fullmatch(ascii_lower(local))
    if match is None:
        return None
    slug, action_name = match.groups()
    if action_name is None:
        return SmartAddress(slug, Action.NOTE, domain)
    if action_name == Action.NOTE.value:
        return None
    try:
        return SmartAddress(slug, Action(action_name), domain)
    except ValueError:
        return None
