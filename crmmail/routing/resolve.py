"""Resolve an envelope recipient to a Route (accept) or a Refusal (the SMTP reply to give)."""

from collections.abc import Callable
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


def resolve(
    address: str,
    smart_domains: tuple[str, ...],
    account_id_for_slug: Callable[[str], int | None],
) -> Route | Refusal:
    """Decide what to do with one recipient; ``account_id_for_slug`` is the only lookup."""
    if not is_our_domain(address, smart_domains):
        return Refusal.RELAY_DENIED
    smart = parse(address, smart_domains)
    if smart is None:
        return Refusal.UNKNOWN_ADDRESS
    account_id = account_id_for_slug(smart.slug)
    if account_id is None:
        return Refusal.UNKNOWN_ADDRESS
    return Route(account_id, smart)
