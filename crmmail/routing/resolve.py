"""Resolve an envelope recipient to a Route (accept) or a Refusal (the SMTP reply to give).

This is the one place that turns an address into a route: the intake's RCPT calls
``resolve_async`` with its cached account lookup, and the worker reads the smart addresses of
the recipients RCPT accepted (kept in the spool row's envelope) with ``accepted_addresses``.
"""

from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from enum import Enum

from crmmail.routing.address import Action, SmartAddress, is_our_domain, parse


class Refusal(Enum):
    """Why a recipient is refused at RCPT."""

    UNKNOWN_ADDRESS = "unknown address"
    RELAY_DENIED = "relay denied"


@dataclass(frozen=True)
class Route:
    """An accepted recipient: the account and the action its address stands for."""

    account_id: int
    address: SmartAddress

    @property
    def action(self) -> Action:
        return self.address.action


def smart_recipient(address: str, smart_domains: tuple[str, ...]) -> SmartAddress | Refusal:
    """The smart address a recipient names, or why it is refused; no lookup (pure)."""
    if not is_our_domain(address, smart_domains):
        return Refusal.RELAY_DENIED
    smart = parse(address, smart_domains)
    if smart is None:
        return Refusal.UNKNOWN_ADDRESS
    return smart


def route(smart: SmartAddress, account_id: int | None) -> Route | Refusal:
    """The route to the account found for ``smart.slug`` (``None``: no such account)."""
    if account_id is None:
        return Refusal.UNKNOWN_ADDRESS
    return Route(account_id, smart)


def resolve(
    address: str,
    smart_domains: tuple[str, ...],
    account_id_for_slug: Callable[[str], int | None],
) -> Route | Refusal:
    """Decide what to do with one recipient; ``account_id_for_slug`` is the only lookup."""
    smart = smart_recipient(address, smart_domains)
    if isinstance(smart, Refusal):
        return smart
    return route(smart, account_id_for_slug(smart.slug))


async def resolve_async(
    address: str,
    smart_domains: tuple[str, ...],
    account_id_for_slug: Callable[[str], Awaitable[int | None]],
) -> Route | Refusal:
    """``resolve`` with a lookup that is awaited (the intake's cache, reading in a thread)."""
    smart = smart_recipient(address, smart_domains)
    if isinstance(smart, Refusal):
        return smart
    return route(smart, await account_id_for_slug(smart.slug))


def accepted_addresses(
    recipients: Iterable[str], smart_domains: tuple[str, ...]
) -> list[SmartAddress]:
    """The smart addresses of envelope recipients that RCPT accepted (a spooled message's
    ``rcpt_tos``), by the grammar that routed them; any that no longer reads as one is left out.

    >>> [str(a) for a in accepted_addresses(["Acme+Lead@mail.localhost"], ("mail.localhost",))]
    ['acme+lead@mail.localhost']
    """
    found = (parse(recipient, smart_domains) for recipient in recipients)
    return [smart for smart in found if smart is not None]
