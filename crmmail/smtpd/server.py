"""The SMTP listener: aiosmtpd's protocol with our handler and limits, and its clean shutdown.

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
    """The open SMTP sessions of a listener, and whether it is shutting down."""

    def __init__(self) -> None:
        self.open: set[IntakeSMTP] = set()
        self.draining = False


class IntakeSMTP(SMTP):
    """aiosmtpd's SMTP protocol that knows its listener's sessions and whether it is in DATA."""

    line_length_limit = MAX_LINE_LENGTH

    def __init__(self, handler: IntakeHandler, sessions: Sessions, **kwargs: Any) -> None:
        super().__init__(handler, **kwargs)
        self.sessions = sessions
        self.in_data = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self.sessions.open.add(self)

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
    sessions = Sessions()

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
