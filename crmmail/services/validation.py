"""Checks of user-given slugs and addresses, each failing with one clear line."""

from crmmail.errors import UserInputError
from crmmail.mail.addresses import InvalidAddress, checked_address
from crmmail.routing.address import is_valid_slug
from crmmail.storage.text import one_line


def checked_slug(slug: str) -> str:
    """A valid account slug, or a ``UserInputError`` saying what a slug may contain."""
    if not is_valid_slug(slug):
        raise UserInputError(
            f"invalid slug {slug!r}: use 1-63 lower-case letters, digits and inner hyphens"
        )
    return slug


def checked_email(address: str) -> str:
    """A syntactically valid address in the one spelling mail is read in (lower case, an
    international domain in Unicode: ``crmmail.mail.addresses``); ``UserInputError`` otherwise."""
    try:
        return checked_address(address)
    except InvalidAddress as error:
        raise UserInputError(f"invalid email address {address!r}: {error}") from None


def checked_name(name: str, what: str, max_length: int) -> str:
    """A display name on one line (white space folded, control and bidirectional control
    characters out, as for names read from mail); ``UserInputError`` if empty or too long."""
    name = one_line(name)
    if not name:
        raise UserInputError(f"a {what} needs a name")
    if len(name) > max_length:
        raise UserInputError(f"the {what} name is too long: at most {max_length} characters")
    return name


def optional_name(name: str | None, what: str, max_length: int) -> str | None:
    """``checked_name`` for a name the user may leave out: ``None`` when absent or blank."""
    if name is None or not name.strip():
        return None
    return checked_name(name, what, max_length)
