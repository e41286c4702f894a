"""A tiny authoritative DNS server on loopback (UDP and TCP) that answers from a table of records.

Records are keyed by (name, type) with rdata in presentation form::

    {("example.test", "MX"): ["10 mx.example.test."],
     ("_imaps._tcp.example.test", "SRV"): ["0 1 993 imap.example.test."]}

A name in the table with no record of the asked type answers NOERROR with no data; any other name
answers NXDOMAIN; a record list of just ``SERVFAIL`` answers SERVFAIL (a failing server). Every
question is recorded as (name, type) in ``DnsStub.queries``.
"""

import socketserver
import struct
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset

Records = Mapping[tuple[str, str], Sequence[str]]
UDP_PLAIN_LIMIT = 512
TTL = 60
SERVFAIL = "SERVFAIL"
POLL_INTERVAL = 0.02  # seconds; shutdown() waits up to this long


@dataclass
class DnsStub:
    """A running stub: where it listens and what it was asked."""

    host: str
    port: int
    queries: list[tuple[str, str]] = field(default_factory=list)

    @property
    def address(self) -> str:
        """The ``ip:port`` form ``Settings.dns_servers`` takes."""
        return f"{self.host}:{self.port}"


def _key(name: dns.name.Name) -> str:
    return name.to_text(omit_final_dot=True).lower()


def answer(query_wire: bytes, records: Records, stub: DnsStub, limit: int | None) -> bytes:
    """The wire-format reply to one query."""
    query = dns.message.from_wire(query_wire)
    response = dns.message.make_response(query)
    response.flags |= dns.flags.AA
    table = {
        (name.lower().rstrip("."), rdtype.upper()): rdatas
        for (name, rdtype), rdatas in records.items()
    }
    names = {name for name, _ in table}
    for question in query.question:
        name, rdtype = _key(question.name), dns.rdatatype.to_text(question.rdtype)
        stub.queries.append((name, rdtype))
        if list(table.get((name, rdtype), ())) == [SERVFAIL]:
            response.set_rcode(dns.rcode.SERVFAIL)
        elif (name, rdtype) in table:
            response.answer.append(
                dns.rrset.from_text_list(
                    question.name, TTL, "IN", rdtype, list(table[name, rdtype])
                )
            )
        elif name not in names:
            response.set_rcode(dns.rcode.NXDOMAIN)
    if limit is None:
        return response.to_wire()
    try:
        return response.to_wire(max_size=max(limit, query.payload))
    except dns.exception.TooBig:
        response.answer.clear()
        response.flags |= dns.flags.TC
        return response.to_wire()


@contextmanager
def running_dns(records: Records) -> Iterator[DnsStub]:
    """Serve ``records`` on 127.0.0.1 (one random port, UDP and TCP) until the block ends."""
    udp, tcp = _bind_pair()
    stub = DnsStub("127.0.0.1", udp.server_address[1])

    class UdpHandler(socketserver.BaseRequestHandler):
        def handle(self) -> None:
            data, sock = self.request
            sock.sendto(answer(data, records, stub, UDP_PLAIN_LIMIT), self.client_address)

    class TcpHandler(socketserver.BaseRequestHandler):
        def handle(self) -> None:
            header = self.request.recv(2)
            if len(header) < 2:
                return
            (length,) = struct.unpack("!H", header)
            data = b""
            while len(data) < length:
                chunk = self.request.recv(length - len(data))
                if not chunk:
                    return
                data += chunk
            reply = answer(data, records, stub, None)
            self.request.sendall(struct.pack("!H", len(reply)) + reply)

    udp.RequestHandlerClass = UdpHandler
    tcp.RequestHandlerClass = TcpHandler
    threads = [
        threading.Thread(target=server.serve_forever, args=(POLL_INTERVAL,), daemon=True)
        for server in (udp, tcp)
    ]
    for thread in threads:
        thread.start()
    try:
        yield stub
    finally:
        for server in (udp, tcp):
            server.shutdown()
            server.server_close()
        for thread in threads:
            thread.join()


def _bind_pair() -> tuple[socketserver.UDPServer, socketserver.TCPServer]:
    """A UDP and a TCP server bound to the same free loopback port."""
    for _ in range(20):
        udp = socketserver.ThreadingUDPServer(("127.0.0.1", 0), socketserver.BaseRequestHandler)
        port = udp.server_address[1]
        try:
            tcp = socketserver.ThreadingTCPServer(
                ("127.0.0.1", port), socketserver.BaseRequestHandler
            )
        except OSError:
            udp.server_close()
            continue
        return udp, tcp
    raise OSError("no loopback port free for both UDP and TCP")
