"""A real aiosmtpd submission server on loopback, standing in for a provider's outgoing SMTP.

It requires AUTH (PLAIN or LOGIN, checked against a ``users`` dict) over TLS, either implicit TLS
(port 465 style) or STARTTLS (port 587 style, where AUTH and MAIL are refused until STARTTLS).
Accepted messages are recorded in ``messages``; ``sent_copy`` lets a test file a copy into the
sender's Sent folder before the server answers 250, as Gmail does, so the copy is there as soon
as ``smtplib`` returns.

aiosmtpd only counts STARTTLS as encryption, so in implicit TLS mode its own TLS check is off
(the whole connection is TLS) and the handler refuses MAIL before AUTH itself.
"""

import socket
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from tests.tlsca import TestCA

HOST = "localhost"
LISTEN_ADDRESS = "127.0.0.1"
SERVER_NAME = "localhost"  # also spares aiosmtpd a getfqdn() lookup
AUTH_MECHANISMS = ("PLAIN", "LOGIN")  # aiosmtpd's built-in ones

OK = "250 2.0.0 OK: queued"
AUTH_REQUIRED = "530 5.7.0 Authentication required"

SentCopy = Callable[[str, bytes], None]


class ReceivedMessage(NamedTuple):
    """One accepted message, as the client submitted it."""

    mail_from: str
    rcpt_tos: tuple[str, ...]
    raw: bytes
    login: str


@dataclass
class _SubmissionHandler:
    """aiosmtpd hooks: check credentials, refuse unauthenticated mail, record what is sent."""

    users: dict[str, str]
    sent_copy: SentCopy | None
    messages: list[ReceivedMessage] = field(default_factory=list)

    def authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        if mechanism not in AUTH_MECHANISMS or not isinstance(data, LoginPassword):
            return AuthResult(success=False, handled=False)
        login = data.login.decode("utf-8", "replace")
        password = data.password.decode("utf-8", "replace")
        if self.users.get(login) != password:
            return AuthResult(success=False, handled=False)
        return AuthResult(success=True, auth_data=login)

    async def handle_MAIL(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        mail_options: list[str],
    ) -> str:
        if not session.authenticated:
            return AUTH_REQUIRED
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        login = str(session.auth_data)
        raw = bytes(envelope.original_content or b"")
        self.messages.append(
            ReceivedMessage(str(envelope.mail_from), tuple(envelope.rcpt_tos), raw, login)
        )
        if self.sent_copy is not None:
            self.sent_copy(login, raw)
        return OK


@dataclass(frozen=True)
class Submission:
    """A running submission server and what it has accepted so far."""

    port: int
    implicit_tls: bool
    messages: list[ReceivedMessage]
    users: dict[str, str]
    host: str = HOST


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((LISTEN_ADDRESS, 0))
        return int(probe.getsockname()[1])


@contextmanager
def running_submission(
    ca: TestCA,
    users: dict[str, str],
    implicit_tls: bool,
    sent_copy: SentCopy | None = None,
) -> Iterator[Submission]:
    """Start the server in a thread; ``users`` stays live, so a test may change a password."""
    handler = _SubmissionHandler(users, sent_copy)
    port = _free_port()
    tls = ca.server_context()
    common: dict[str, Any] = {
        "hostname": LISTEN_ADDRESS,
        "port": port,
        "server_hostname": SERVER_NAME,
        "authenticator": handler.authenticate,
    }
    if implicit_tls:
        controller = Controller(handler, ssl_context=tls, auth_require_tls=False, **common)
    else:
        controller = Controller(
            handler, tls_context=tls, require_starttls=True, auth_require_tls=True, **common
        )
    controller.start()
    try:
        yield Submission(port, implicit_tls, handler.messages, users)
    finally:
        controller.stop()
