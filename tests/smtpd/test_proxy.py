"""PROXY protocol on the intake: trusted load balancers name the client, nobody else can.

Headers are built byte by byte here from the specification (haproxy's proxy-protocol.txt), so
the test does not share a parser with the code it checks.
"""

import ipaddress
import logging
import smtplib
import socket
import struct
from contextlib import ExitStack
from pathlib import Path

import pytest
from sqlalchemy import select

from crmmail.config import Settings
from crmmail.smtpd import replies
from crmmail.smtpd.refusals import RefusalReason
from crmmail.storage.database import Database
from crmmail.storage.models import InboundMessage
from tests.intake import message, running_intake, wire_bytes
from tests.tlsca import make_test_ca

V2_SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"
V2_PROXY = 0x21  # version 2, command PROXY
V2_LOCAL = 0x20  # version 2, command LOCAL (the balancer's own health check)
TCP4, TCP6 = 0x11, 0x21  # family INET / INET6, protocol STREAM
UDP4 = 0x12
NOOP_TLV = b"\x04\x00\x01\x00"  # PP2_TYPE_NOOP, one byte of padding: to be skipped
CLIENT = ("203.0.113.7", 40000)  # the address the balancer claims (TEST-NET-3)
TIMEOUT = 10.0


def proxy_v2(
    source: tuple[str, int] | None,
    destination: tuple[str, int] | None = None,
    *,
    command: int = V2_PROXY,
    family: int | None = None,
    tlv: bytes = b"",
) -> bytes:
    """A PROXY protocol v2 header; ``source=None`` gives an address-less (LOCAL) header."""
    if source is None:
        return V2_SIGNATURE + struct.pack("!BBH", command, 0x00, len(tlv)) + tlv
    src = ipaddress.ip_address(source[0])
    if destination is None:  # the balancer's own address, of the client's family
        destination = ("192.0.2.25", 25) if src.version == 4 else ("2001:db8::25", 25)
    dst = ipaddress.ip_address(destination[0])
    if family is None:
        family = TCP4 if src.version == 4 else TCP6
    body = src.packed + dst.packed + struct.pack("!HH", source[1], destination[1]) + tlv
    return V2_SIGNATURE + struct.pack("!BBH", command, family, len(body)) + body


def proxy_v1(source: tuple[str, int], destination: tuple[str, int] = ("192.0.2.25", 25)) -> bytes:
    family = "TCP4" if ipaddress.ip_address(source[0]).version == 4 else "TCP6"
    return f"PROXY {family} {source[0]} {destination[0]} {source[1]} {destination[1]}\r\n".encode()


class ProxiedSMTP(smtplib.SMTP):
    """``smtplib`` behind a load balancer: the header goes first on every new connection."""

    def __init__(self, header: bytes, port: int) -> None:
        self.header = header
        super().__init__("127.0.0.1", port, timeout=TIMEOUT)

    def _get_socket(self, host: str, port: int, timeout: float) -> socket.socket:
        sock = super()._get_socket(host, port, timeout)
        assert isinstance(sock, socket.socket)
        sock.sendall(self.header)
        return sock


def spooled(db: Database) -> list[InboundMessage]:
    with db.transaction() as session:
        return list(session.scalars(select(InboundMessage).order_by(InboundMessage.id)))


def behind(settings: Settings, *networks: str, **more: object) -> Settings:
    """``settings`` with ``networks`` as the trusted load balancers (and ``more`` changes)."""
    trusted = tuple(ipaddress.ip_network(network) for network in networks)
    return settings.model_copy(update={"proxy_protocol_networks": trusted, **more})


@pytest.fixture
def refusals() -> list[RefusalReason]:
    """What the intake reported refusing (its ``on_refused`` observer)."""
    return []


def greeting(port: int, header: bytes, stack: ExitStack) -> bytes:
    """Connect, send ``header``, return what the server says first (``b""``: hung up)."""
    sock = stack.enter_context(socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT))
    sock.sendall(header)
    return sock.recv(1024)


@pytest.mark.parametrize("client", [CLIENT, ("2001:db8::7", 40001)], ids=["ipv4", "ipv6"])
def test_a_trusted_balancer_names_the_client_that_is_stored_and_logged(
    db: Database,
    settings: Settings,
    acme: int,
    client: tuple[str, int],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="crmmail")
    with (
        running_intake(db, behind(settings, "127.0.0.0/8")) as port,
        ProxiedSMTP(proxy_v2(client, tlv=NOOP_TLV), port) as smtp,
    ):
        smtp.sendmail("bob@corp.test", ["acme@mail.localhost"], wire_bytes(message()))
    [row] = spooled(db)
    assert row.peer == f"{client[0]}:{client[1]}"
    logged = [record.getMessage() for record in caplog.records]
    spool_lines = [line for line in logged if "spooled as inbound" in line]
    assert spool_lines and client[0] in spool_lines[0]
    assert "127.0.0.1" not in spool_lines[0]


def test_a_version_1_header_works_too(db: Database, settings: Settings, acme: int) -> None:
    with (
        running_intake(db, behind(settings, "127.0.0.1/32")) as port,
        ProxiedSMTP(proxy_v1(("198.51.100.9", 5555)), port) as smtp,
    ):
        smtp.sendmail("bob@corp.test", ["acme@mail.localhost"], wire_bytes(message()))
    [row] = spooled(db)
    assert row.peer == "198.51.100.9:5555"


def test_the_client_survives_starttls(
    db: Database, settings: Settings, acme: int, tmp_path: Path
) -> None:
    ca = make_test_ca(tmp_path / "ca")
    tls = behind(settings, "127.0.0.1/32", tls_cert_file=ca.cert_file, tls_key_file=ca.key_file)
    with running_intake(db, tls) as port, ProxiedSMTP(proxy_v2(CLIENT), port) as smtp:
        smtp.starttls(context=ca.client_context())
        smtp.sendmail("bob@corp.test", ["acme@mail.localhost"], wire_bytes(message()))
    [row] = spooled(db)
    assert row.peer == "203.0.113.7:40000"


def test_a_health_check_keeps_the_balancer_address(
    db: Database, settings: Settings, acme: int
) -> None:
    with (
        running_intake(db, behind(settings, "127.0.0.1/32")) as port,
        ProxiedSMTP(proxy_v2(None, command=V2_LOCAL), port) as smtp,
    ):
        smtp.sendmail("bob@corp.test", ["acme@mail.localhost"], wire_bytes(message()))
    [row] = spooled(db)
    assert row.peer.startswith("127.0.0.1:")


def test_a_trusted_balancer_without_a_valid_header_is_dropped(
    db: Database, settings: Settings, acme: int, refusals: list[RefusalReason]
) -> None:
    quick = behind(settings, "127.0.0.1/32", smtp_timeout=1.0)  # the header's wait, too
    with running_intake(db, quick, refusals.append) as port, ExitStack() as stack:
        assert greeting(port, b"EHLO client.test\r\n", stack) == b""
        assert greeting(port, proxy_v2(CLIENT, family=UDP4), stack) == b""
        assert greeting(port, b"PROXY TCP4 not-an-address\r\n", stack) == b""
        # A plain client waits for a greeting that never comes, until the header's wait ends.
        with (
            pytest.raises(smtplib.SMTPServerDisconnected),
            smtplib.SMTP("127.0.0.1", port, timeout=TIMEOUT) as smtp,
        ):
            smtp.sendmail("bob@corp.test", ["acme@mail.localhost"], wire_bytes(message()))
    assert spooled(db) == []
    assert refusals.count(RefusalReason.PROXY_HEADER) == 4


def test_an_untrusted_client_cannot_claim_an_address(
    db: Database, settings: Settings, acme: int
) -> None:
    """From outside the trusted networks a header is not read: v2 ends in QUIT, v1 is refused."""
    with running_intake(db, behind(settings, "10.0.0.0/8")) as port:
        with pytest.raises(smtplib.SMTPException), ProxiedSMTP(proxy_v2(CLIENT), port) as smtp:
            smtp.sendmail("bob@corp.test", ["acme@mail.localhost"], wire_bytes(message()))
        with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as sock:
            reader = sock.makefile("rb")
            assert reader.readline().startswith(b"220 ")
            sock.sendall(proxy_v1(CLIENT))
            assert reader.readline() == b'500 Error: command "PROXY" not recognized\r\n'
            # The session goes on as the connection it is.
            for line, expected in (
                (b"EHLO client.test", b"250 "),
                (b"MAIL FROM:<bob@corp.test>", b"250 "),
                (b"RCPT TO:<acme@mail.localhost>", b"250 "),
                (b"DATA", b"354 "),
                (wire_bytes(message()) + b".", b"250 "),
            ):
                sock.sendall(line + b"\r\n")
                reply = reader.readline()
                while reply[3:4] == b"-":
                    reply = reader.readline()
                assert reply.startswith(expected), (line, reply)
    [row] = spooled(db)
    assert row.peer.startswith("127.0.0.1:")
    assert "203.0.113.7" not in row.peer


def test_without_trusted_networks_no_header_is_read(
    db: Database, settings: Settings, acme: int
) -> None:
    with running_intake(db, settings) as port, ExitStack() as stack:
        assert greeting(port, proxy_v1(CLIENT), stack).startswith(b"220 ")


def test_the_per_address_limit_counts_the_proxied_client(
    db: Database, settings: Settings, acme: int, refusals: list[RefusalReason]
) -> None:
    limited = behind(settings, "127.0.0.1/32", max_connections_per_ip=1)
    with running_intake(db, limited, refusals.append) as port, ExitStack() as stack:
        assert greeting(port, proxy_v2(CLIENT), stack).startswith(b"220 ")
        over = greeting(port, proxy_v2((CLIENT[0], CLIENT[1] + 1)), stack)
        assert over == (replies.TOO_MANY_CONNECTIONS + "\r\n").encode()
        # Another client through the same balancer is not limited by the first one.
        assert greeting(port, proxy_v2(("203.0.113.8", 40000)), stack).startswith(b"220 ")
    assert refusals == [RefusalReason.TOO_MANY_CONNECTIONS]
