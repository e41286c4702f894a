"""The SMTP listener: aiosmtpd's protocol with our handler and limits, and its clean shutdown.

Connections beyond ``CRMMAIL_MAX_CONNECTIONS`` in all, or ``CRMMAIL_MAX_CONNECTIONS_PER_IP`` from
one client address, are answered ``421`` instead of the greeting and closed.

Shutting down (SIGTERM) closes the listening socket, answers ``421`` to idle sessions and
closes them, and lets every session that is inside DATA finish it (its message is committed and
answered as usual) before it too gets ``421``. Sessions still in DATA when the grace period ends
are cut (their client got no ``250``, so it will send again: nothing is lost).
"""

import asyncio
from typing import Any

from aiosmtpd.smtp import SMTP, syntax

from crmmail.config import Settings
from crmmail.smtpd import replies
from crmmail.smtpd.handler import IntakeHandler

# An MX takes no AUTH: never advertise aiosmtpd's built-in mechanisms.
NO_AUTH = ("LOGIN", "PLAIN")
# RFC 5321 allows 1000 octets a line, but careless senders (HTML without line breaks) send more;
# refusing them would bounce real mail, so lines are accepted up to this length.
MAX_LINE_LENGTH = 64 * 1024
DRAIN_POLL = 0.05  # seconds between looks at the sessions while shutting down


class Sessions:
    """The open SMTP sessions of a listener, its connection limits, whether it is shutting down."""

    def __init__(self, max_total: int, max_per_ip: int) -> None:
        self.open: set[IntakeSMTP] = set()
        self.draining = False
        self.max_total = max_total
        self.max_per_ip = max_per_ip

    def admits(self, peer_ip: str) -> bool:
        """Whether one more session (from ``peer_ip``) stays within the limits."""
        if len(self.open) >= self.max_total:
            return False
        from_peer = sum(1 for session in self.open if session.peer_ip == peer_ip)
        return from_peer < self.max_per_ip


class IntakeSMTP(SMTP):
    """aiosmtpd's SMTP protocol that knows its listener's sessions and whether it is in DATA."""

    line_length_limit = MAX_LINE_LENGTH

    def __init__(self, handler: IntakeHandler, sessions: Sessions, **kwargs: Any) -> None:
        super().__init__(handler, **kwargs)
        self.sessions = sessions
        self.in_data = False
        self.peer_ip = ""
        self.refused = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        peer = transport.get_extra_info("peername")
        self.peer_ip = str(peer[0]) if peer else ""
        self.refused = not self.sessions.admits(self.peer_ip)
        super().connection_made(transport)
        if not self.refused:
            self.sessions.open.add(self)

    async def _handle_client(self) -> None:
        # aiosmtpd's session loop (it sends the 220 greeting first). Over a connection limit the
        # client gets 421 instead of the greeting (RFC 5321 3.1) and the connection is closed.
        if self.refused:
            await self.push(replies.TOO_MANY_CONNECTIONS)
            if self.transport is not None:
                self.transport.close()
            return
        await super()._handle_client()

    def connection_lost(self, error: Exception | None) -> None:
        self.sessions.open.discard(self)
        super().connection_lost(error)

    @syntax("DATA")
    async def smtp_DATA(self, arg: str) -> None:
        self.in_data = True
        try:
            await super().smtp_DATA(arg)
        finally:
            self.in_data = False
        if self.sessions.draining:  # shutting down: this message was the last one
            await self.say_goodbye()

    async def say_goodbye(self) -> None:
        """Tell an idle client we are going away (``421``), then hang up."""
        if self.transport is not None and not self.transport.is_closing():
            await self.push(replies.SHUTTING_DOWN)
            self.transport.close()


class SmtpListener:
    """A listening SMTP server and its open sessions."""

    def __init__(self, server: asyncio.Server, sessions: Sessions) -> None:
        self.server = server
        self.sessions = sessions

    @property
    def address(self) -> tuple[str, int]:
        host, port = self.server.sockets[0].getsockname()[:2]
        return str(host), int(port)

    async def shut_down(self, grace: float) -> None:
        """Stop accepting, let DATA in progress finish for up to ``grace`` s, close the rest."""
        self.server.close()
        self.sessions.draining = True
        loop = asyncio.get_running_loop()
        deadline = loop.time() + grace
        while self.sessions.open and loop.time() < deadline:
            for session in list(self.sessions.open):
                if not session.in_data:
                    await session.say_goodbye()
            await asyncio.sleep(DRAIN_POLL)
        for session in list(self.sessions.open):
            if isinstance(session.transport, asyncio.WriteTransport):
                session.transport.abort()
        await self.server.wait_closed()


async def start_smtp_server(
    handler: IntakeHandler, settings: Settings, host: str, port: int
) -> SmtpListener:
    """Listen on ``host:port``; SIZE is advertised and enforced (``552``) by aiosmtpd."""
    loop = asyncio.get_running_loop()
    sessions = Sessions(settings.max_connections, settings.max_connections_per_ip)

    def protocol() -> SMTP:
        return IntakeSMTP(
            handler,
            sessions,
            data_size_limit=settings.max_message_size,
            enable_SMTPUTF8=True,
            hostname=settings.smtp_hostname,
            ident="crmmail ESMTP",
            timeout=settings.smtp_timeout,
            auth_exclude_mechanism=NO_AUTH,
            loop=loop,
        )

    server = await loop.create_server(protocol, host=host, port=port)
    return SmtpListener(server, sessions)
