"""Connection limits, kept around the SMTP protocol: a connection is admitted or answered ``421``.

Every accepted connection first meets a ``ConnectionGate``. Within ``CRMMAIL_MAX_CONNECTIONS``
in all and ``CRMMAIL_MAX_CONNECTIONS_PER_IP`` from its address, the gate makes an SMTP session
for it and hands the connection over (``transport.set_protocol``); beyond them the client gets
``421 4.7.0`` instead of the greeting (RFC 5321 3.1) and is closed, and no SMTP session ever
exists for it. A load balancer's connection (``CRMMAIL_PROXY_PROTOCOL_NETWORKS``) is checked
against the total here and against its client's own limit once the session has read the PROXY
header that names the client (``IntakeSMTP.accept_proxy_header``).
"""

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING

from crmmail.smtpd import replies
from crmmail.smtpd.proxy import TrustedProxies

if TYPE_CHECKING:
    from crmmail.smtpd.server import IntakeSMTP


class Sessions:
    """The open SMTP sessions of a listener, its connection limits, whether it is shutting down."""

    def __init__(self, max_total: int, max_per_ip: int) -> None:
        self.open: set[IntakeSMTP] = set()
        self.draining = False
        self.max_total = max_total
        self.max_per_ip = max_per_ip

    def admits(self, peer_ip: str) -> bool:
        """Whether one more session (from ``peer_ip``) stays within the limits."""
        return self.has_room() and self.room_for(peer_ip)

    def has_room(self) -> bool:
        """Whether one more session stays within the total limit."""
        return len(self.open) < self.max_total

    def room_for(self, peer_ip: str, newcomer: "IntakeSMTP | None" = None) -> bool:
        """Whether ``newcomer`` (or one more session) from ``peer_ip`` stays within its limit."""
        from_peer = sum(
            1 for session in self.open if session is not newcomer and session.peer_ip == peer_ip
        )
        return from_peer < self.max_per_ip


# Makes the SMTP session of an admitted connection; True when it comes from a load balancer.
SessionFactory = Callable[[bool], "IntakeSMTP"]


class ConnectionGate(asyncio.Protocol):
    """The first protocol of every connection: it admits the connection to SMTP, or refuses it."""

    def __init__(
        self,
        sessions: Sessions,
        trusted_proxies: TrustedProxies,
        new_session: SessionFactory,
        on_refused: Callable[[], None],
    ) -> None:
        self.sessions = sessions
        self.trusted_proxies = trusted_proxies
        self.new_session = new_session
        self.on_refused = on_refused

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        peer = transport.get_extra_info("peername")
        peer_ip = str(peer[0]) if peer else ""
        balancer = self.trusted_proxies.trusts(peer_ip)
        # Behind a balancer the client's address, and so its own limit, is known only later.
        admitted = self.sessions.has_room() if balancer else self.sessions.admits(peer_ip)
        if not admitted:
            self.on_refused()
            if isinstance(transport, asyncio.WriteTransport):
                transport.write(replies.TOO_MANY_CONNECTIONS.encode("ascii") + b"\r\n")
            transport.close()  # after the reply is written
            return
        session = self.new_session(balancer)
        transport.set_protocol(session)
        session.connection_made(transport)
        self.sessions.open.add(session)

    def data_received(self, data: bytes) -> None:
        """Bytes from a refused client, before its connection is closed: ignored."""
