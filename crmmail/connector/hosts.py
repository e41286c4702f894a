"""The refusals for a mailbox's settings, decided before any connection is made.

Each check has a pure ``*_problem`` function that answers with the one-line reason (or ``None``)
and a ``check_*`` function that raises :class:`MailSettingsRefused` with it. Refused:

- an address whose domain is internationalised (non-ASCII, or an ``xn--`` label), is not a domain
  name, or is one of our smart domains (connecting a smart address to itself would loop);
- IMAP/SMTP hosts given as IP addresses (any form ``inet_aton`` accepts, v6, bracketed), IDN
  hosts and names that are not host names;
- POP3 (ports 110 and 995, hosts named ``pop``/``pop3``/``pop3s``) and Exchange (EWS and MAPI
  over HTTP on ports 80/443, RPC on 135, hosts named ``mapi``/``ews``/``owa``/``autodiscover``):
  crmmail speaks IMAP and SMTP only;
- hosts that resolve to any loopback, private, link-local, CGNAT, unspecified, multicast,
  reserved or cloud-metadata address, unless private mail hosts are allowed (tests and on-premise
  setups). Every resolved address must be public: a name with one private address among public
  ones could still be reached on the private one.

>>> host_problem("10.0.0.1", "IMAP")
"IMAP host 10.0.0.1 is an IP address; give the server's host name"
>>> pop3_or_exchange_problem("pop.example.org", 995, "IMAP")
'IMAP server pop.example.org:995 is POP3; crmmail connects over IMAP only; POP3 is not supported'
"""

import ipaddress
import re
import socket

from crmmail.connector.endpoints import Endpoint, ServerSettings
from crmmail.connector.errors import MailSettingsRefused, Transient
from crmmail.routing.address import is_our_domain, split_address

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

MAX_HOST_LENGTH = 253
_LABEL = re.compile(r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?")
POP3_PORTS = frozenset({110, 995})
POP3_LABELS = frozenset({"pop", "pop3", "pop3s"})
EXCHANGE_PORTS = frozenset({80, 135, 443})  # EWS/MAPI over HTTP(S), RPC endpoint mapper
EXCHANGE_LABELS = frozenset({"mapi", "ews", "owa", "autodiscover"})
METADATA_ADDRESSES = frozenset(
    {ipaddress.ip_address("169.254.169.254"), ipaddress.ip_address("fd00:ec2::254")}
)
SHARED_ADDRESS_SPACE = ipaddress.ip_network("100.64.0.0/10")  # carrier-grade NAT, RFC 6598
ALLOW_PRIVATE_HINT = "set CRMMAIL_ALLOW_PRIVATE_MAIL_HOSTS only for on-premise servers"


def is_ip_literal(host: str) -> bool:
    """Whether ``host`` is an IP address in any form a resolver would take as one.

    ``inet_aton`` reads ``127.1``, ``0x7f.1`` and ``2130706433`` as addresses, and no top-level
    domain is all digits, so a numeric last label counts too.

    >>> [is_ip_literal(h) for h in ("10.0.0.1", "::1", "[::1]", "[10.0.0.1]", "127.1", "0x7f.1")]
    [True, True, True, True, True, True]
    >>> [is_ip_literal(h) for h in ("2130706433", "1.2.3.4.", "imap.example.org", "mail1.org")]
    [True, True, False, False]
    """
    bare = host.strip().rstrip(".")
    if bare.startswith("[") and bare.endswith("]"):
        return True
    try:
        ipaddress.ip_address(bare)
    except ValueError:
        pass
    else:
        return True
    if bare.isascii() and "\x00" not in bare:
        try:
            socket.inet_aton(bare)
        except OSError:
            pass
        else:
            return True
    last = bare.rpartition(".")[2].lower()
    return last.isdigit() or (last.startswith("0x") and last != "0x")


def is_idn(domain: str) -> bool:
    """Whether a domain is internationalised: non-ASCII anywhere, or an ``xn--`` (punycode) label.

    >>> [is_idn(d) for d in ("bücher.example", "xn--bcher-kva.example", "mail.XN--P1AI", "a.org")]
    [True, True, True, False]
    """
    if not domain.isascii():
        return True
    return any(label.lower().startswith("xn--") for label in domain.split("."))


def is_host_name(name: str) -> bool:
    """Whether ``name`` (ASCII, lower case, no trailing dot) is a syntactically valid host name.

    Underscores are tolerated inside labels, as resolvers accept them.

    >>> [is_host_name(n) for n in ("imap.example.org", "localhost", "a..b", "-a.org", "a b.org")]
    [True, True, False, False, False]
    """
    if not name or len(name) > MAX_HOST_LENGTH:
        return False
    return all(_LABEL.fullmatch(label) for label in name.split("."))


def host_problem(host: str, what: str) -> str | None:
    """Why ``host`` cannot be the ``what`` ("IMAP", "SMTP") server's name, or ``None``.

    >>> host_problem("[2001:db8::1]", "SMTP")
    "SMTP host [2001:db8::1] is an IP address; give the server's host name"
    >>> host_problem("imap.xn--bcher-kva.example", "IMAP")
    'IMAP host imap.xn--bcher-kva.example is an internationalised (IDN) domain; crmmail does not support IDN host names'
    >>> host_problem("", "IMAP")
    "IMAP host is empty; give the server's host name"
    >>> host_problem("imap.example.org.", "IMAP") is None
    True
    """  # noqa: E501
    if not host.strip():
        return f"{what} host is empty; give the server's host name"
    if is_ip_literal(host):
        return f"{what} host {host} is an IP address; give the server's host name"
    if is_idn(host):
        return (
            f"{what} host {host} is an internationalised (IDN) domain; "
            "crmmail does not support IDN host names"
        )
    if not is_host_name(host.lower().rstrip(".")):
        return f"{what} host {host!r} is not a valid host name; give the server's host name"
    return None


def address_problem(email: str, smart_domains: tuple[str, ...]) -> str | None:
    """Why the mailbox ``email`` cannot be connected, or ``None``.

    >>> address_problem("ana@bücher.example", ())
    'the address ana@bücher.example has an internationalised (IDN) domain; crmmail does not support IDN mailboxes'
    >>> address_problem("acme@mail.localhost", ("mail.localhost",))
    'acme@mail.localhost is a crmmail smart address; connect a real mailbox'
    >>> address_problem("ana@example.org", ("mail.localhost",)) is None
    True
    """  # noqa: E501
    parts = split_address(email.strip())
    if parts is None:
        return f"{email!r} is not an email address; give one like name@example.org"
    domain = parts[1]
    if is_idn(domain):
        return (
            f"the address {email} has an internationalised (IDN) domain; "
            "crmmail does not support IDN mailboxes"
        )
    if is_ip_literal(domain) or not is_host_name(domain) or "." not in domain:
        return f"the address {email} has no valid domain name; give one like name@example.org"
    if is_our_domain(email.strip(), smart_domains):
        return f"{email} is a crmmail smart address; connect a real mailbox"
    return None


def pop3_or_exchange_problem(host: str, port: int, what: str) -> str | None:
    """Why ``host:port`` looks like a POP3 or Exchange server rather than IMAP/SMTP, or ``None``.

    >>> pop3_or_exchange_problem("outlook.office365.com", 443, "IMAP")
    'IMAP server outlook.office365.com:443 is Exchange (EWS/MAPI); crmmail connects over IMAP and SMTP only; give the IMAP settings'
    >>> pop3_or_exchange_problem("outlook.office365.com", 993, "IMAP") is None
    True
    """  # noqa: E501
    first_label = host.lower().split(".", 1)[0]
    if port in POP3_PORTS or first_label in POP3_LABELS:
        return (
            f"{what} server {host}:{port} is POP3; "
            "crmmail connects over IMAP only; POP3 is not supported"
        )
    if port in EXCHANGE_PORTS or first_label in EXCHANGE_LABELS:
        return (
            f"{what} server {host}:{port} is Exchange (EWS/MAPI); "
            "crmmail connects over IMAP and SMTP only; give the IMAP settings"
        )
    return None


def port_problem(port: int, what: str) -> str | None:
    """Why ``port`` cannot be a TCP port to connect to, or ``None``.

    >>> port_problem(0, "IMAP")
    'IMAP port 0 is not a TCP port (1-65535)'
    """
    if 1 <= port <= 65535:
        return None
    return f"{what} port {port} is not a TCP port (1-65535)"


def non_public_reason(address: IPAddress) -> str | None:
    """What kind of non-public address ``address`` is ("loopback", "private"...), or ``None``.

    IPv4-mapped IPv6 addresses are judged by the IPv4 address they carry.

    >>> from ipaddress import ip_address as ip
    >>> [non_public_reason(ip(a)) for a in ("127.0.0.1", "::ffff:10.1.2.3", "169.254.169.254")]
    ['loopback', 'private', 'cloud metadata']
    >>> [non_public_reason(ip(a)) for a in ("100.64.0.1", "fe80::1", "0.0.0.0", "224.0.0.1")]
    ['carrier-grade NAT', 'link-local', 'unspecified', 'multicast']
    >>> [non_public_reason(ip(a)) for a in ("240.0.0.1", "192.0.2.1", "8.8.8.8", "2606:4700::1")]
    ['reserved', 'private', None, None]
    """
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    checks: tuple[tuple[str, bool], ...] = (
        ("cloud metadata", address in METADATA_ADDRESSES),
        ("loopback", address.is_loopback),
        ("link-local", address.is_link_local),
        ("unspecified", address.is_unspecified),
        ("multicast", address.is_multicast),
        ("carrier-grade NAT", address in SHARED_ADDRESS_SPACE),
        ("reserved", address.is_reserved),
        ("private", address.is_private),
        ("non-public", not address.is_global),
    )
    return next((reason for reason, applies in checks if applies), None)


def resolve(host: str, port: int) -> list[IPAddress]:
    """Every address ``host`` resolves to for a TCP connection (the system resolver, blocking).

    Raises ``socket.gaierror`` when the name does not resolve.
    """
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [ipaddress.ip_address(str(info[4][0]).partition("%")[0]) for info in infos]


def resolution_problem(
    host: str, addresses: list[IPAddress], allow_private: bool, what: str
) -> str | None:
    """Why a server whose name resolved to ``addresses`` must not be connected to, or ``None``.

    >>> from ipaddress import ip_address as ip
    >>> resolution_problem("imap.example.org", [ip("93.184.215.14"), ip("10.0.0.7")], False, "IMAP")
    'IMAP host imap.example.org resolves to 10.0.0.7, a private address; set CRMMAIL_ALLOW_PRIVATE_MAIL_HOSTS only for on-premise servers'
    >>> resolution_problem("localhost", [ip("127.0.0.1")], True, "IMAP") is None
    True
    >>> resolution_problem("imap.example.org", [], True, "IMAP")
    'IMAP host imap.example.org does not resolve; check the host name'
    """  # noqa: E501
    if not addresses:
        return f"{what} host {host} does not resolve; check the host name"
    if allow_private:
        return None
    for address in addresses:
        reason = non_public_reason(address)
        if reason is not None:
            return (
                f"{what} host {host} resolves to {address}, a {reason} address; "
                f"{ALLOW_PRIVATE_HINT}"
            )
    return None


def _refuse_if(problem: str | None) -> None:
    if problem is not None:
        raise MailSettingsRefused(problem)


def check_address(email: str, smart_domains: tuple[str, ...]) -> None:
    """Refuse an address that is IDN, has no domain name, or is one of our smart addresses."""
    _refuse_if(address_problem(email, smart_domains))


def check_host(host: str, what: str) -> None:
    """Refuse a server name that is an IP address, IDN, empty or not a host name."""
    _refuse_if(host_problem(host, what))


def check_not_pop3_or_exchange(endpoint: Endpoint, what: str) -> None:
    """Refuse an endpoint that is a POP3 or Exchange server rather than IMAP or SMTP."""
    _refuse_if(pop3_or_exchange_problem(endpoint.host, endpoint.port, what))


def check_endpoint_names(endpoint: Endpoint, what: str) -> None:
    """Every check of an endpoint that needs no network: host name, port, POP3 and Exchange."""
    check_host(endpoint.host, what)
    _refuse_if(port_problem(endpoint.port, what))
    check_not_pop3_or_exchange(endpoint, what)


def check_resolves_public(host: str, port: int, allow_private: bool, what: str = "mail") -> None:
    """Refuse a server name that does not resolve, or resolves to any non-public address.

    A temporary resolver failure is not a refusal: it raises :class:`Transient`.
    """
    try:
        addresses = resolve(host, port)
    except socket.gaierror as error:
        if error.errno == socket.EAI_AGAIN:
            raise Transient(f"{what} host {host} could not be resolved now; try again") from error
        addresses = []
    except ValueError:  # a name the resolver cannot even encode (NUL, surrogates)
        addresses = []
    _refuse_if(resolution_problem(host, addresses, allow_private, what))


def check_server_settings(server: ServerSettings, allow_private: bool) -> None:
    """Every refusal for both endpoints of a mailbox, the name checks before any resolution."""
    endpoints = (("IMAP", server.imap), ("SMTP", server.smtp))
    for what, endpoint in endpoints:
        check_endpoint_names(endpoint, what)
    for what, endpoint in endpoints:
        check_resolves_public(endpoint.host, endpoint.port, allow_private, what)
