"""The SMTP listener: aiosmtpd's protocol with our handler, limits, deadlines, TLS and PROXY.

Connections beyond ``CRMMAIL_MAX_CONNECTIONS`` in all, or ``CRMMAIL_MAX_CONNECTIONS_PER_IP`` from
one client address, are answered ``421`` instead of the greeting and closed. Behind a load
balancer (``CRMMAIL_PROXY_PROTOCOL_NETWORKS``) the client address is the one its PROXY header
names (see ``crmmail.smtpd.proxy``): the per-address limit is checked once that header is read,
and that address is what the spool stores and the logs show.

Deadlines: ``CRMMAIL_SMTP_TIMEOUT`` is how long a client may stay silent (between commands, or
between bytes of a message); ``CRMMAIL_DATA_TIMEOUT`` bounds the whole DATA phase, so a client
trickling a message a byte at a time (slowloris) is cut too. Either answers ``421 4.4.2`` and
closes; a message cut in DATA is not stored (its client got no ``250``, so it will send again).

STARTTLS is offered when a certificate is configured (``crmmail.smtpd.tls``), never required.

Shutting down (SIGTERM) closes the listening socket, answers ``421`` to idle sessions and
closes them, and lets every session that is inside DATA finish it (its message is committed and
answered as usual) before it too gets ``421``. Sessions still in DATA when the grace period ends
are cut (their client got no ``250``, so it will send again: nothing is lost).

aiosmtpd answers some refusals itself (``552`` for size); they are reported by their code.

How this sits on aiosmtpd: on what it documents, and on one private seam kept in
``crmmail.smtpd.aiosmtpd_seam``. The connection limits are a gate in front of the protocol
(``crmmail.smtpd.connections``). The PROXY header is taken by the ``handle_PROXY`` hook. The
DATA command is an ``smtp_DATA`` of our own that reads the message into one buffer
(``crmmail.smtpd.data``: same rules, about half the memory at the final dot). The deadlines
(``crmmail.smtpd.deadlines``) are kept by the session from the asyncio protocol methods and the
``smtp_<COMMAND>`` methods, because aiosmtpd's own ``timeout`` and ``proxy_protocol_timeout``
close a connection without a reply and cannot tell a slow message from a silent client; they
are given to aiosmtpd as never expiring.
"""

import asyncio
import functools
import logging
import math
from collections.abc import Awaitable, Callable
from typing import Any, AnyStr, cast

from aiosmtpd.proxy_protocol import ProxyData
from aiosmtpd.smtp import SMTP, Envelope, Session, syntax

from crmmail.config import Settings
from crmmail.smtpd import aiosmtpd_seam, replies
from crmmail.smtpd.connections import ConnectionGate, Sessions
from crmmail.smtpd.data import DataOutcome, read_data
from crmmail.smtpd.deadlines import SessionDeadlines
from crmmail.smtpd.handler import IntakeHandler
from crmmail.smtpd.proxy import PROXY_HEADER_TIMEOUT, TrustedProxies, proxied_client
from crmmail.smtpd.refusals import RefusalReason
from crmmail.smtpd.tls import server_tls_context

log = logging.getLogger(__name__)

# An MX takes no AUTH: never advertise aiosmtpd's built-in mechanisms.
NO_AUTH = ("LOGIN", "PLAIN")
# RFC 5321 allows 1000 octets a line, but careless senders (HTML without line breaks) send more;
# refusing them would bounce real mail, so lines are accepted up to this length.
MAX_LINE_LENGTH = 64 * 1024
DRAIN_POLL = 0.05  # seconds between looks at the sessions while shutting down
DEFAULT_TIMEOUT = 300.0  # seconds of silence (aiosmtpd's default); the listener uses ours
DEFAULT_DATA_TIMEOUT = 600.0  # seconds; the listener uses CRMMAIL_DATA_TIMEOUT
# aiosmtpd's own timers close without a reply; ours answer, so aiosmtpd's never expire.
NEVER = math.inf
SIZE_REFUSAL = "552 "  # aiosmtpd's own "message too big" replies (at MAIL and after DATA)
DATA_REFUSALS = {
    DataOutcome.LINE_TOO_LONG: aiosmtpd_seam.DATA_LINE_TOO_LONG,
    DataOutcome.TOO_BIG: aiosmtpd_seam.DATA_TOO_MUCH,
}

SmtpCommand = Callable[["IntakeSMTP", str], Awaitable[None]]


def _restarting_the_wait(command: SmtpCommand) -> SmtpCommand:
    @functools.wraps(command)  # keeps aiosmtpd's @syntax marks, which HELP reads
    async def restarted(session: "IntakeSMTP", arg: str) -> None:
        session.deadlines.wait()
        await command(session, arg)

    return restarted


def _commands_restart_the_wait(cls: type["IntakeSMTP"]) -> type["IntakeSMTP"]:
    """Every command aiosmtpd dispatches restarts the session's wait (as aiosmtpd's timer would).

    aiosmtpd dispatches a command to its ``smtp_<COMMAND>`` method only when it is one it knows
    and may run; a line it refuses (unknown, too long, before STARTTLS) keeps the clock running.
    """
    for name in dir(cls):
        if name.startswith("smtp_"):
            setattr(cls, name, _restarting_the_wait(getattr(cls, name)))
    return cls


class ListenerHooks:
    """The hooks aiosmtpd calls by name: the PROXY header is the session's, the rest the intake's.

    (``handle_DATA`` is called by ``IntakeSMTP.smtp_DATA``, which reads the message itself.)
    """

    def __init__(self, intake: IntakeHandler) -> None:
        self.intake = intake

    async def handle_PROXY(
        self, server: SMTP, session: Session, envelope: Envelope, proxy_data: ProxyData
    ) -> bool:
        assert isinstance(server, IntakeSMTP)
        return await server.accept_proxy_header(proxy_data)

    async def handle_RCPT(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        return await self.intake.handle_RCPT(server, session, envelope, address, rcpt_options)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        return await self.intake.handle_DATA(server, session, envelope)

    async def handle_exception(self, error: Exception) -> str:
        return await self.intake.handle_exception(error)


@_commands_restart_the_wait
class IntakeSMTP(SMTP):
    """aiosmtpd's SMTP protocol keeping its own deadlines, knowing its listener's sessions.

    ``timeout`` and ``proxy_protocol_timeout`` mean what they mean to aiosmtpd (the silence a
    client is allowed; the wait for a load balancer's header, which also turns reading one on),
    but expiring they answer ``421 4.4.2`` (or, before the header, log and hang up).
    """

    line_length_limit = MAX_LINE_LENGTH

    def __init__(
        self,
        handler: IntakeHandler,
        sessions: Sessions,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        data_timeout: float = DEFAULT_DATA_TIMEOUT,
        proxy_protocol_timeout: float | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            ListenerHooks(handler),
            timeout=NEVER,
            proxy_protocol_timeout=None if proxy_protocol_timeout is None else NEVER,
            **kwargs,
        )
        self.handler = handler
        self.sessions = sessions
        self.proxy_header_timeout = proxy_protocol_timeout
        self.deadlines = SessionDeadlines(
            self.loop, timeout, data_timeout, self._silence_expired, self._data_too_slow
        )
        self.in_data = False
        self.peer_ip = ""  # the client's address (behind a load balancer: from its header)
        self.connection_peer = "?"  # the address the connection comes from (the balancer)
        self.client: tuple[str, int] | None = None  # the client a PROXY header named
        self.proxy_header: ProxyData | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if self.transport is not None:
            # STARTTLS: aiosmtpd starts a new session on the same connection; keep its client.
            super().connection_made(transport)
            if self.client is not None and self.session is not None:
                self._set_session_peer(self.client)
                self.session.proxy_data = self.proxy_header
            self.deadlines.wait()
            return
        peer = transport.get_extra_info("peername")
        if peer:
            self.connection_peer = f"{peer[0]}:{peer[1]}"
        if self.proxy_header_timeout is None:
            self.peer_ip = str(peer[0]) if peer else ""
        super().connection_made(transport)
        # aiosmtpd reads a PROXY header (if one is expected) before the greeting.
        self.deadlines.wait(self.proxy_header_timeout)

    @property
    def awaiting_header(self) -> bool:
        """Whether this is a load balancer's connection whose header has not named a client."""
        return self.proxy_header_timeout is not None and self.client is None

    async def accept_proxy_header(self, header: ProxyData) -> bool:
        """Take the client a load balancer's header names, within that client's limit."""
        assert self.session is not None
        balancer = cast(tuple[str, int], self.session.peer)  # aiosmtpd's hint says str
        client = proxied_client(header, (str(balancer[0]), int(balancer[1])))
        if client is None:
            self._drop_without_header()
            return False
        self.client, self.proxy_header = client, header
        self._set_session_peer(client)
        self.peer_ip = client[0]
        log.info("%s: connection via load balancer %s", client, self.connection_peer)
        if not self.sessions.room_for(self.peer_ip, self):
            self.handler.refused(RefusalReason.TOO_MANY_CONNECTIONS)
            await self.push(replies.TOO_MANY_CONNECTIONS)
            return False
        self.deadlines.wait()  # the greeting follows: the client's silence counts from now
        return True

    def _drop_without_header(self) -> None:
        log.warning("%s: no valid PROXY header from a load balancer; dropped", self.connection_peer)
        self.handler.refused(RefusalReason.PROXY_HEADER)

    def _set_session_peer(self, client: tuple[str, int]) -> None:
        # The session's peer is what aiosmtpd logs and the handler stores: the real client.
        # (aiosmtpd annotates it as ``str`` but stores the socket's address tuple.)
        if self.session is not None:
            self.session.peer = cast(Any, client)

    def connection_lost(self, error: Exception | None) -> None:
        self.deadlines.stop()
        self.sessions.open.discard(self)
        header = self.session.proxy_data if self.session is not None else None
        if self.awaiting_header and header is not None and not header.valid:
            # aiosmtpd read a header it could not parse, and hung up without asking handle_PROXY.
            self._drop_without_header()
        super().connection_lost(error)

    def data_received(self, data: bytes) -> None:
        if self.deadlines.in_data:
            self.deadlines.wait()  # inside a message, every byte shows the client is alive
        super().data_received(data)

    async def push(self, status: AnyStr) -> None:
        if isinstance(status, str) and status.startswith(SIZE_REFUSAL):
            self.handler.refused(RefusalReason.SIZE)
        await super().push(status)

    @syntax("DATA")
    async def smtp_DATA(self, arg: str) -> None:
        self.in_data = True
        self.deadlines.start_data()
        try:
            await self._receive_message(arg)
        finally:
            self.in_data = False
            self.deadlines.end_data()
        if self.sessions.draining:  # shutting down: this message was the last one
            await self.say_goodbye()

    async def _receive_message(self, arg: str) -> None:
        """aiosmtpd's ``smtp_DATA`` (without ``decode_data``), reading through ``read_data``."""
        if await self.check_helo_needed() or await self.check_auth_needed("DATA"):
            return
        assert self.envelope is not None
        if not self.envelope.rcpt_tos or arg:
            await super().smtp_DATA(arg)  # aiosmtpd answers 503 or 501 itself, reading nothing
            return
        await self.push(aiosmtpd_seam.START_DATA)
        try:
            received = await read_data(
                aiosmtpd_seam.session_reader(self),
                self.data_size_limit,
                self.line_length_limit,
                lambda: self.transport is not None,
            )
        except asyncio.CancelledError:  # the connection was lost during DATA
            log.info("%s: connection lost during DATA", self._client_text())
            raise  # aiosmtpd's session loop closes the connection
        if received.outcome is DataOutcome.DISCONNECTED:
            return
        if received.outcome is not DataOutcome.COMPLETE:
            await self.push(DATA_REFUSALS[received.outcome])
            self.envelope = Envelope()
            return
        self.envelope.content = self.envelope.original_content = received.content
        status = await self._store(self.envelope)
        self.envelope = Envelope()
        await self.push(status)

    async def _store(self, envelope: Envelope) -> str:
        """The intake's ``handle_DATA``; the client waits for our reply, so no timer runs."""
        # Storing has its own timeout (CRMMAIL_STORAGE_TIMEOUT), and the client's silence
        # while it waits for our reply is no reason to cut it.
        self.deadlines.pause()
        assert self.session is not None
        try:
            return await self.handler.handle_DATA(self, self.session, envelope)
        finally:
            self.deadlines.wait()  # waiting for the next command: the silence timer again

    def _data_too_slow(self) -> None:
        log.warning("%s: DATA took over %s s; cut", self._client_text(), self.deadlines.data)
        self._cut(replies.DATA_TIMEOUT, RefusalReason.DATA_TIMEOUT)

    def _silence_expired(self) -> None:
        # The wait for a PROXY header gets no SMTP reply: the session has not begun.
        if self.awaiting_header:
            log.warning("%s: no PROXY header from a load balancer in time", self.connection_peer)
            self.handler.refused(RefusalReason.PROXY_HEADER)
            if self.transport is not None:
                self.transport.close()
            return
        log.info("%s: silent for too long; cut", self._client_text())
        self._cut(replies.COMMAND_TIMEOUT, RefusalReason.COMMAND_TIMEOUT)

    def _cut(self, reply: str, reason: RefusalReason) -> None:
        """Answer ``reply`` and close now (from a timer: the session task may be mid-read)."""
        transport = self.transport
        if not isinstance(transport, asyncio.WriteTransport) or transport.is_closing():
            return
        self.handler.refused(reason)
        transport.write(reply.encode("ascii") + b"\r\n")
        transport.close()  # flushes the reply; connection_lost then cancels the session

    def _client_text(self) -> str:
        peer = self.session.peer if self.session is not None else None
        return f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else self.connection_peer

    async def say_goodbye(self) -> None:
        """Tell an idle client we are going away (``421``), then hang up."""
        if self.transport is not None and not self.transport.is_closing():
            try:
                await self.push(replies.SHUTTING_DOWN)
            except ConnectionError:  # the client reset the connection: nobody to tell
                log.debug("%s: gone before the goodbye", self._client_text())
            if self.transport is not None:
                self.transport.close()


class SmtpListener:
    """A listening SMTP server and its open sessions."""

    def __init__(self, server: asyncio.Server, sessions: Sessions, handler: IntakeHandler) -> None:
        self.server = server
        self.sessions = sessions
        self.handler = handler

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
        # Messages whose clients hung up may still be queued: their commits are carried out.
        await self.handler.committer.flushed()


async def start_smtp_server(
    handler: IntakeHandler, settings: Settings, host: str, port: int
) -> SmtpListener:
    """Listen on ``host:port``; SIZE is advertised and enforced (``552``) by aiosmtpd.

    Raises ``CrmmailError`` (one line) when the TLS certificate or key cannot be used.
    """
    loop = asyncio.get_running_loop()
    sessions = Sessions(settings.max_connections, settings.max_connections_per_ip)
    tls_context = server_tls_context(settings)
    trusted_proxies = TrustedProxies(settings.proxy_protocol_networks)
    header_timeout = min(PROXY_HEADER_TIMEOUT, settings.smtp_timeout)

    def new_session(behind_balancer: bool) -> IntakeSMTP:
        return IntakeSMTP(
            handler,
            sessions,
            timeout=settings.smtp_timeout,
            data_timeout=settings.data_timeout,
            proxy_protocol_timeout=header_timeout if behind_balancer else None,
            data_size_limit=settings.max_message_size,
            enable_SMTPUTF8=True,
            hostname=settings.smtp_hostname,
            ident="crmmail ESMTP",
            tls_context=tls_context,
            require_starttls=False,  # an MX takes plain mail from senders without TLS
            auth_exclude_mechanism=NO_AUTH,
            loop=loop,
        )

    def gate() -> ConnectionGate:
        return ConnectionGate(
            sessions,
            trusted_proxies,
            new_session,
            lambda: handler.refused(RefusalReason.TOO_MANY_CONNECTIONS),
        )

    server = await loop.create_server(gate, host=host, port=port)
    return SmtpListener(server, sessions, handler)
