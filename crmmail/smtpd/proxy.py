"""PROXY protocol trust: which peers must send a header, and the client address a header names.

aiosmtpd reads and parses the header (v1 text or v2 binary) before the greeting; this module
decides. Only a connection from ``CRMMAIL_PROXY_PROTOCOL_NETWORKS`` (the load balancers) is
read for a header, and there one is required; anyone else speaks plain SMTP, where a
``PROXY`` line is just an unknown command (and a v2 signature reads as blank lines and
``QUIT``), so no client can claim another address.

A header that names a TCP client gives the address crmmail stores, logs and limits. A v2
``LOCAL`` header (the balancer's own health check) or an ``UNKNOWN``/``UNSPEC`` one keeps the
balancer's address, as the protocol says; anything else (UDP, Unix sockets) is refused.
"""

from collections.abc import Iterable
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address

from aiosmtpd.proxy_protocol import PROTO, V2_CMD, ProxyData

# Seconds a trusted peer has to send its header (aiosmtpd logs a warning below 3).
PROXY_HEADER_TIMEOUT = 10.0


class TrustedProxies:
    """The networks whose connections start with a PROXY protocol header."""

    def __init__(self, networks: Iterable[IPv4Network | IPv6Network]) -> None:
        self.networks = tuple(networks)

    def trusts(self, peer_ip: str) -> bool:
        """Whether ``peer_ip`` is a load balancer (an IPv4-mapped IPv6 address counts as IPv4).

        >>> from ipaddress import ip_network
        >>> proxies = TrustedProxies([ip_network("10.0.0.0/8")])
        >>> proxies.trusts("10.1.2.3"), proxies.trusts("::ffff:10.1.2.3"), proxies.trusts("")
        (True, True, False)
        """
        if not self.networks or not peer_ip:
            return False
        try:
            address: IPv4Address | IPv6Address = ip_address(peer_ip.split("%", 1)[0])
        except ValueError:
            return False
        if isinstance(address, IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        return any(address in network for network in self.networks)


def proxied_client(header: ProxyData, balancer: tuple[str, int]) -> tuple[str, int] | None:
    """The client a valid header names, the balancer itself for a health check, else ``None``."""
    if not header.valid:
        return None
    if header.command == V2_CMD.LOCAL or header.protocol == PROTO.UNSPEC:
        return balancer
    if header.protocol != PROTO.STREAM:
        return None
    source, port = header.src_addr, header.src_port
    if not isinstance(source, IPv4Address | IPv6Address) or port is None:
        return None
    return str(source), int(port)
