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

The DATA command is aiosmtpd's, except that the message is read into one buffer by
``crmmail.smtpd.data`` (same rules, about half the memory at the final dot).
"""

import asyncio
import logging
from typing import Any, AnyStr, cast

from aiosmtpd.proxy_protocol import ProxyData
from aiosmtpd.smtp import SMTP, syntax

from crmmail.config import Settings
from crmmail.smtpd import replies
from crmmail.smtpd.data import DataOutcome, read_data
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
DEFAULT_DATA_TIMEOUT = 600.0  # seconds; the listener uses CRMMAIL_DATA_TIMEOUT
SIZE_REFUSAL = "552 "  # aiosmtpd's own "message too big" replies (at MAIL and after DATA)
# aiosmtpd's own replies around DATA, kept word for word.
NEED_RCPT = "503 Error: need RCPT command"
DATA_SYNTAX = "501 Syntax: DATA"
START_DATA = "354 End data with <CR><LF>.<CR><LF>"
DATA_REFUSALS = {
    DataOutcome.LINE_TOO_LONG: "500 Line too long (see RFC5321 4.5.3.1.6)",
    DataOutcome.TOO_BIG: "552 Error: Too much mail data",
}


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


class IntakeSMTP(SMTP):
    """aiosmtpd's SMTP protocol that knows its listener's sessions and whether it is in DATA."""

    line_length_limit = MAX_LINE_LENGTH

    def __init__(
        self,
        handler: IntakeHandler,
        sessions: Sessions,
        *,
        trusted_proxies: TrustedProxies | None = None,
        data_timeout: float = DEFAULT_DATA_TIMEOUT,
        **kwargs: Any,
    ) -> None:
        super().__init__(handler, **kwargs)
        self.handler = handler
        self.sessions = sessions
        self.trusted_proxies = trusted_proxies or TrustedProxies(())
        self.data_timeout = data_timeout
        self.in_data = False
        self.peer_ip = ""  # the client's address (behind a load balancer: from its header)
        self.client: tuple[str, int] | None = None  # the client a PROXY header named
        self.proxy_header: ProxyData | None = None
        self.refused = False
        self._data_deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if self.transport is not None:
            # STARTTLS: aiosmtpd starts a new session on the same connection; keep its client.
            super().connection_made(transport)
            if self.client is not None and self.session is not None:
                self._set_session_peer(self.client)
                self.session.proxy_data = self.proxy_header
            return
        peer = transport.get_extra_info("peername")
        peer_ip = str(peer[0]) if peer else ""
        if self.trusted_proxies.trusts(peer_ip):
            # aiosmtpd reads the header before the greeting; the client's address (and so its
            # per-address limit) is known only then.
            self._proxy_timeout = min(PROXY_HEADER_TIMEOUT, self._timeout_duration)
            self.refused = not self.sessions.has_room()
        else:
            self._proxy_timeout = None
            self.peer_ip = peer_ip
            self.refused = not self.sessions.admits(peer_ip)
        super().connection_made(transport)
        if not self.refused:
            self.sessions.open.add(self)

    async def _handle_client(self) -> None:
        # aiosmtpd's session loop (it reads a PROXY header if expected, then sends the 220
        # greeting). Over a connection limit the client gets 421 instead of the greeting
        # (RFC 5321 3.1) and the connection is closed.
        if self.refused:
            self.handler.refused(RefusalReason.TOO_MANY_CONNECTIONS)
            await self.push(replies.TOO_MANY_CONNECTIONS)
            if self.transport is not None:
                self.transport.close()
            return
        await super()._handle_client()
        if self._proxy_timeout is not None and self.client is None:
            # aiosmtpd returns early only when it dropped a connection for its PROXY header.
            log.warning(
                "%s: no valid PROXY header from a load balancer; dropped", self.connection_peer
            )
            self.handler.refused(RefusalReason.PROXY_HEADER)

    async def _call_handler_hook(self, command: str, *args: Any) -> Any:
        if command == "PROXY":
            return await self._accept_proxy_header(args[0])
        if command != "DATA":
            return await super()._call_handler_hook(command, *args)
        # The message is in; storing it has its own timeout (CRMMAIL_STORAGE_TIMEOUT), and the
        # client's silence while it waits for our reply is no reason to cut it.
        self._end_data_deadline()
        if self._timeout_handle is not None:
            self._timeout_handle.cancel()
        try:
            return await super()._call_handler_hook(command, *args)
        finally:
            self._reset_timeout()  # waiting for the next command: the idle timer again

    async def _accept_proxy_header(self, header: ProxyData) -> bool:
        """Take the client a load balancer's header names, within that client's limit."""
        assert self.session is not None
        balancer = cast(tuple[str, int], self.session.peer)  # aiosmtpd's hint says str
        client = proxied_client(header, (str(balancer[0]), int(balancer[1])))
        if client is None:
            return False
        self.client, self.proxy_header = client, header
        self._set_session_peer(client)
        self.peer_ip = client[0]
        log.info("%s: connection via load balancer %s", client, self.connection_peer)
        if not self.sessions.room_for(self.peer_ip, self):
            self.handler.refused(RefusalReason.TOO_MANY_CONNECTIONS)
            await self.push(replies.TOO_MANY_CONNECTIONS)
            return False
        return True

    def _set_session_peer(self, client: tuple[str, int]) -> None:
        # The session's peer is what aiosmtpd logs and the handler stores: the real client.
        # (aiosmtpd annotates it as ``str`` but stores the socket's address tuple.)
        if self.session is not None:
            self.session.peer = cast(Any, client)

    @property
    def connection_peer(self) -> str:
        """The address the connection comes from (the load balancer, behind one)."""
        transport = self._original_transport or self.transport
        peer = transport.get_extra_info("peername") if transport is not None else None
        return f"{peer[0]}:{peer[1]}" if peer else "?"

    def connection_lost(self, error: Exception | None) -> None:
        self._end_data_deadline()
        self.sessions.open.discard(self)
        super().connection_lost(error)

    def data_received(self, data: bytes) -> None:
        if self._data_deadline is not None:
            self._reset_timeout()  # inside a message, every byte shows the client is alive
        super().data_received(data)

    async def push(self, status: AnyStr) -> None:
        if isinstance(status, str) and status.startswith(SIZE_REFUSAL):
            self.handler.refused(RefusalReason.SIZE)
        await super().push(status)

    @syntax("DATA")
    async def smtp_DATA(self, arg: str) -> None:
        self.in_data = True
        self._data_deadline = self.loop.call_later(self.data_timeout, self._data_too_slow)
        try:
            await self._receive_message(arg)
        finally:
            self.in_data = False
            self._end_data_deadline()
        if self.sessions.draining:  # shutting down: this message was the last one
            await self.say_goodbye()

    async def _receive_message(self, arg: str) -> None:
        """aiosmtpd's ``smtp_DATA`` (without ``decode_data``), reading through ``read_data``."""
        if await self.check_helo_needed() or await self.check_auth_needed("DATA"):
            return
        assert self.envelope is not None
        if not self.envelope.rcpt_tos:
            await self.push(NEED_RCPT)
            return
        if arg:
            await self.push(DATA_SYNTAX)
            return
        await self.push(START_DATA)
        try:
            received = await read_data(
                self._reader,
                self.data_size_limit,
                self.line_length_limit,
                lambda: self.transport is not None,
            )
        except asyncio.CancelledError:  # the connection was lost during DATA
            log.info("%s: connection lost during DATA", self._client_text())
            self._writer.close()
            raise
        if received.outcome is DataOutcome.DISCONNECTED:
            return
        if received.outcome is not DataOutcome.COMPLETE:
            await self.push(DATA_REFUSALS[received.outcome])
            self._set_post_data_state()  # type: ignore[no-untyped-call]
            return
        self.envelope.content = self.envelope.original_content = received.content
        status = await self._call_handler_hook("DATA")
        self._set_post_data_state()  # type: ignore[no-untyped-call]
        await self.push(status)

    def _end_data_deadline(self) -> None:
        if self._data_deadline is not None:
            self._data_deadline.cancel()
            self._data_deadline = None

    def _data_too_slow(self) -> None:
        self._data_deadline = None
        log.warning("%s: DATA took over %s s; cut", self._client_text(), self.data_timeout)
        self._cut(replies.DATA_TIMEOUT, RefusalReason.DATA_TIMEOUT)

    def _timeout_cb(self) -> None:
        # aiosmtpd's idle timer: CRMMAIL_SMTP_TIMEOUT, or the wait for a PROXY header (which
        # gets no SMTP reply: the session has not begun). aiosmtpd would just close; a timed
        # out session is answered 421 4.4.2.
        if self._proxy_timeout is not None and self.client is None:
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

    def protocol() -> SMTP:
        return IntakeSMTP(
            handler,
            sessions,
            trusted_proxies=trusted_proxies,
            data_timeout=settings.data_timeout,
            data_size_limit=settings.max_message_size,
            enable_SMTPUTF8=True,
            hostname=settings.smtp_hostname,
            ident="crmmail ESMTP",
            timeout=settings.smtp_timeout,
            tls_context=tls_context,
            require_starttls=False,  # an MX takes plain mail from senders without TLS
            auth_exclude_mechanism=NO_AUTH,
            loop=loop,
        )

    server = await loop.create_server(protocol, host=host, port=port)
    return SmtpListener(server, sessions, handler)
