"""The DNS resolver factory: a resolver asking the configured servers, or the system's.

Sender authentication (the worker), provider discovery (the connector) and ``crmmail dns check``
all build their resolvers here, each with its own timeout.
"""

import ipaddress
from collections.abc import Sequence
from typing import Final

import dns.nameserver
import dns.resolver

from crmmail.errors import UserInputError

DNS_PORT: Final = 53


def resolver_of(nameservers: Sequence[str], timeout: float) -> dns.resolver.Resolver:
    """A resolver asking these ``CRMMAIL_DNS_SERVERS`` entries, or the system's when none.

    Raises :class:`UserInputError` for an entry that is not an address (``parse_nameserver``),
    and dnspython's ``NoResolverConfiguration`` when none are given and the system has none.
    """
    return resolver_for([parse_nameserver(entry) for entry in nameservers], timeout)


def resolver_for(servers: Sequence[tuple[str, int]], timeout: float) -> dns.resolver.Resolver:
    """A resolver asking these (address, port) servers, or the system's when there are none.

    Raises dnspython's ``NoResolverConfiguration`` when none are given and the system has none.
    """
    if servers:
        resolver = dns.resolver.Resolver(configure=False)
        resolver.nameservers = [dns.nameserver.Do53Nameserver(*server) for server in servers]
    else:
        resolver = dns.resolver.Resolver()
    resolver.timeout = resolver.lifetime = timeout
    return resolver


def parse_nameserver(entry: str) -> tuple[str, int]:
    """The address and port of a ``CRMMAIL_DNS_SERVERS`` entry: ``ip``, ``ip:port``, ``[ip6]:port``.

    >>> parse_nameserver("127.0.0.1:5353"), parse_nameserver("::1"), parse_nameserver("[::1]:54")
    (('127.0.0.1', 5353), ('::1', 53), ('::1', 54))
    >>> parse_nameserver("ns.example.org")
    Traceback (most recent call last):
    ...
    crmmail.errors.UserInputError: DNS server 'ns.example.org' is not ip or ip:port (CRMMAIL_DNS_SERVERS)
    """  # noqa: E501
    text = entry.strip()
    address, port = text, str(DNS_PORT)
    if text.startswith("[") and "]:" in text:
        address, _, port = text[1:].partition("]:")
    elif text.count(":") == 1:
        address, _, port = text.partition(":")
    try:
        ipaddress.ip_address(address)
        number = int(port)
    except ValueError:
        number = 0
    if not 1 <= number <= 65535:
        raise UserInputError(f"DNS server {entry!r} is not ip or ip:port (CRMMAIL_DNS_SERVERS)")
    return address, number
