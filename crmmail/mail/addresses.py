"""The one spelling of an email address, used by mail, the command line and every lookup.

An address is ``local@domain`` lower-cased as a whole (as always: no one tells ``Ann@`` from
``ann@``), NFC-normalised, with its domain in Unicode (U-labels): ``Ivo@XN--EXMPLE-CUA.de`` and
``ivo@exämple.de`` are one address, written ``ivo@exämple.de``. Unicode rather than the ASCII
form (A-labels, ``xn--``) because that is what ``email-validator`` calls normalised, which every
address given on the command line (contacts, users, mailboxes) has been stored as, so stored rows
keep matching without a migration; because people read it in listings; and because mail sent
with SMTPUTF8 carries it already. International domains go through ``email-validator`` (IDNA
2008 and UTS #46, as for the command line); an ASCII domain without ``xn--`` is lower-cased.

Two checks of two costs:

- ``normalized_address`` (the parser, for every address of every message): a cheap syntax check,
  one ``@`` between a local part without spaces or control characters and a domain of
  dot-separated labels, within RFC 5321's lengths. Looser than ``contact add`` so that our own
  addresses on test domains (``mail.localhost``) and single-label domains still show.
- ``checked_address`` and ``is_contact_address`` (``email-validator``, ~60 us an address):
  what ``contact add`` accepts. Nothing is stored of a participant that fails it. Addresses of
  the common plain shape skip email-validator in ``is_contact_address`` (~2 us).
"""

import re
import unicodedata

from email_validator import SPECIAL_USE_DOMAIN_NAMES, EmailNotValidError, validate_email

MAX_ADDRESS_LENGTH = 254  # RFC 5321's path limit, less the angle brackets
MAX_LABEL_LENGTH = 63
MAX_LOCAL_PART_LENGTH = 64

_UNUSABLE_IN_LOCAL = re.compile(
    "[\\s\x00-\x1f\x7f-\x9f<>\\[\\]\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]"
)
_DOMAIN = re.compile("[a-z0-9\u00a0-\U0010ffff-]+(?:\\.[a-z0-9\u00a0-\U0010ffff-]+)*")
_UNUSABLE_IN_DOMAIN = re.compile("[\\s\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
# What most addresses look like, a strict subset of what ``email-validator`` accepts (checked by
# tests/processor/test_addresses_idn.py): lower-case dot-atom local part of common characters,
# LDH labels without "--", a top-level domain of letters. These skip email-validator's ~60 us.
PLAIN_ADDRESS = re.compile(
    r"[a-z0-9_+-]+(?:\.[a-z0-9_+-]+)*@(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}"
)
_SPECIAL_USE = tuple(name for name in SPECIAL_USE_DOMAIN_NAMES if name != "test")
_QUOTED_ATOM_LOCAL = re.compile(r'"([A-Za-z0-9!#$%&\'*+/=?^_`{|}~.-]+)"(@[^@]+)')


class InvalidAddress(ValueError):
    """An address ``contact add`` refuses; the message says why."""


def normalized_address(raw: str) -> str | None:
    """``raw`` in the one spelling, or ``None`` if it is not an address at all (cheap check).

    >>> normalized_address(" <Ivo@XN--EXMPLE-CUA.De> ")
    'ivo@exämple.de'
    >>> normalized_address("ivo@EXÄMPLE.de")
    'ivo@exämple.de'
    >>> normalized_address('"acme+lead"@mail.localhost')
    'acme+lead@mail.localhost'
    >>> normalized_address("bob@xn--zz.test")  # not IDNA: kept as it came, lower-cased
    'bob@xn--zz.test'
    >>> [normalized_address(a) for a in ["'pia@client.test'", "a b@x.test", "a@b@c", "x@y..z"]]
    [None, None, None, None]
    """
    address = _unquote_local_part(raw.strip().strip("<>"))
    local, _, domain = address.rpartition("@")
    if (
        not local
        or not domain
        or len(address) > MAX_ADDRESS_LENGTH
        or "@" in local
        or _UNUSABLE_IN_LOCAL.search(local)
    ):
        return None
    spelled = _normalized_domain(domain)
    if spelled is None:
        return None
    return f"{unicodedata.normalize('NFC', local).lower()}@{spelled}"


def checked_address(address: str) -> str:
    """An address ``contact add`` accepts, in the one spelling; ``InvalidAddress`` otherwise.

    >>> checked_address("Ivo@xn--exmple-cua.de")
    'ivo@exämple.de'
    >>> checked_address("'pia@client.test'")  # doctest: +IGNORE_EXCEPTION_DETAIL
    Traceback (most recent call last):
    InvalidAddress: The part after the @-sign contains invalid characters: "'".
    """
    try:
        valid = validate_email(address, check_deliverability=False, test_environment=True)
    except EmailNotValidError as error:
        raise InvalidAddress(str(error)) from None
    return normalized_address(valid.normalized) or valid.normalized.lower()


def is_contact_address(address: str) -> bool:
    """Whether ``contact add`` would accept ``address``.

    >>> [is_contact_address(a) for a in ["pia@client.test", "'pia@client.test'", "x@localhost"]]
    [True, False, False]
    """
    if is_plain_address(address):
        return True
    try:
        checked_address(address)
    except InvalidAddress:
        return False
    return True


def is_plain_address(address: str) -> bool:
    """Whether ``address`` is of the common shape ``email-validator`` surely accepts."""
    if len(address) > MAX_ADDRESS_LENGTH or not PLAIN_ADDRESS.fullmatch(address):
        return False
    local, _, domain = address.rpartition("@")
    if len(local) > MAX_LOCAL_PART_LENGTH or "--" in domain:
        return False
    return not any(domain == name or domain.endswith("." + name) for name in _SPECIAL_USE)


def _normalized_domain(domain: str) -> str | None:
    """The domain lower-cased, international ones in U-labels; ``None`` if not a domain."""
    domain = domain.lower()
    if _UNUSABLE_IN_DOMAIN.search(domain) or not _DOMAIN.fullmatch(domain):
        return None
    if any(len(label) > MAX_LABEL_LENGTH for label in domain.split(".")):
        return None
    if domain.isascii() and "xn--" not in domain:
        return domain
    try:  # the domain alone, as ``contact add`` normalises it
        valid = validate_email(
            f"x@{domain}",
            check_deliverability=False,
            globally_deliverable=False,
            test_environment=True,
        )
    except EmailNotValidError:  # not IDNA (a malformed xn-- label, say): kept as it came
        return unicodedata.normalize("NFC", domain)
    return valid.domain


def _unquote_local_part(address: str) -> str:
    """``"ann"@x.test`` is the mailbox ``ann@x.test`` (RFC 5321 4.1.2): drop needless quotes.

    >>> _unquote_local_part('"acme+lead"@mail.localhost')
    'acme+lead@mail.localhost'
    >>> _unquote_local_part('"a b"@x.test')
    '"a b"@x.test'
    """
    match = _QUOTED_ATOM_LOCAL.fullmatch(address)
    return match.group(1) + match.group(2) if match else address
