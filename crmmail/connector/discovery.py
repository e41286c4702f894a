"""Finding a mailbox's IMAP and SMTP servers from its address when the user gives no hosts.

The methods run in this order and the first that answers wins:

1. ``provider``: the bundled table of big providers, by the address's domain (no network);
2. ``mx``: the domain's lowest-preference MX host, reduced to its base domain and looked up in the
   bundled MX table (tells Google Workspace and Microsoft 365 domains apart);
3. ``autoconfig``: the domain's Thunderbird-format ``config-v1.1.xml``, fetched from each URL of
   ``Settings.autoconfig_urls`` in turn (http/https only, no proxy, a timeout and a size cap; the
   URL's host, and every redirect's, must resolve to public addresses unless private mail hosts
   are allowed). A fetch that fails moves on to the next URL, then to the next method. IMAP over
   SSL is preferred to STARTTLS, and plain text is never taken; a file that offers only POP3 or
   Exchange refuses the address outright;
4. ``srv``: RFC 6186 SRV records, ``_imaps`` (SSL) before ``_imap`` (STARTTLS) and
   ``_submissions`` (SSL, RFC 8314) before ``_submission`` (STARTTLS); a target of ``.`` means
   "not offered". The lowest priority wins, then the highest weight (deterministic, not weighted
   random: we pick one server to remember, not one per connection).

DNS goes through dnspython, to ``Settings.dns_servers`` when set, with a short timeout. Found host
names pass the same name checks as given ones (no IP addresses, no IDN, no POP3 or Exchange);
whether they resolve to public addresses is checked when the settings are checked before
connecting (:func:`crmmail.connector.hosts.check_server_settings`).
"""

import http.client
import logging
import ssl
import urllib.error
import urllib.parse
import urllib.request
import xml.etree.ElementTree as ElementTree
from typing import IO, Final

import dns.exception
import dns.name
import dns.nameserver
import dns.rdata
import dns.resolver
from dns.rdtypes.ANY.MX import MX
from dns.rdtypes.IN.SRV import SRV

from crmmail.config import Settings
from crmmail.connector.endpoints import Endpoint, Security, ServerSettings
from crmmail.connector.errors import DiscoveryFailed, MailSettingsRefused
from crmmail.connector.hosts import check_address, check_endpoint_names, check_resolves_public
from crmmail.connector.providers import provider_for_domain, provider_for_mx
from crmmail.errors import UserInputError
from crmmail.mail.resolver import resolver_of
from crmmail.routing.address import split_address

log = logging.getLogger(__name__)

DNS_TIMEOUT: Final = 5.0  # seconds, at most; discovery must not hang on a silent server
AUTOCONFIG_TIMEOUT: Final = 10.0  # seconds, at most
AUTOCONFIG_MAX_BYTES: Final = 100 * 1024
AUTOCONFIG_MAX_REDIRECTS: Final = 3
AUTOCONFIG_SCHEMES: Final = frozenset({"http", "https"})
SOCKET_TYPES: Final = {"SSL": Security.SSL, "STARTTLS": Security.STARTTLS}  # never "plain"
SECURITY_PREFERENCE: Final = (Security.SSL, Security.STARTTLS)
IMAP_SRV: Final = (("_imaps._tcp", Security.SSL), ("_imap._tcp", Security.STARTTLS))
SUBMISSION_SRV: Final = (
    ("_submissions._tcp", Security.SSL),
    ("_submission._tcp", Security.STARTTLS),
)


def discover(email: str, settings: Settings) -> ServerSettings:
    """The IMAP and SMTP servers of ``email``, found by the first method that knows them.

    Raises :class:`MailSettingsRefused` when the address or what was found must not be used, and
    :class:`DiscoveryFailed` when no method found anything.
    """
    check_address(email, settings.smart_domains)
    parts = split_address(email.strip())
    assert parts is not None  # check_address refused anything without a domain
    domain = parts[1]
    resolver = make_resolver(settings)
    found = (
        from_provider_table(domain)
        or from_mx(domain, resolver)
        or from_autoconfig(email.strip(), domain, settings)
        or from_srv(domain, resolver)
    )
    if found is None:
        raise DiscoveryFailed(
            f"no IMAP settings found for {domain}: give --imap-host and --smtp-host"
        )
    check_endpoint_names(found.imap, "IMAP")
    check_endpoint_names(found.smtp, "SMTP")
    log.info("servers for %s found by %s: %s, %s", domain, found.source, found.imap, found.smtp)
    return found


# -- provider table and MX -------------------------------------------------------------------


def from_provider_table(domain: str) -> ServerSettings | None:
    """The bundled settings of the big provider whose users have addresses on ``domain``."""
    provider = provider_for_domain(domain)
    return None if provider is None else provider.server_settings("provider")


def from_mx(domain: str, resolver: dns.resolver.Resolver) -> ServerSettings | None:
    """The settings of the known provider that receives ``domain``'s mail (its preferred MX)."""
    records = [r for r in _query(resolver, domain, "MX") if isinstance(r, MX)]
    records = [r for r in records if r.exchange != dns.name.root]  # "." is a null MX (RFC 7505)
    if not records:
        return None
    preferred = min(records, key=lambda record: record.preference)
    provider = provider_for_mx(preferred.exchange.to_text(omit_final_dot=True))
    return None if provider is None else provider.server_settings("mx")


# -- SRV (RFC 6186) --------------------------------------------------------------------------


def from_srv(domain: str, resolver: dns.resolver.Resolver) -> ServerSettings | None:
    """The servers ``domain`` names in RFC 6186 SRV records; both IMAP and submission needed."""
    imap = _srv_endpoint(domain, IMAP_SRV, resolver)
    if imap is None:
        return None
    smtp = _srv_endpoint(domain, SUBMISSION_SRV, resolver)
    return None if smtp is None else ServerSettings(imap=imap, smtp=smtp, source="srv")


def _srv_endpoint(
    domain: str, services: tuple[tuple[str, Security], ...], resolver: dns.resolver.Resolver
) -> Endpoint | None:
    for service, security in services:
        records = [r for r in _query(resolver, f"{service}.{domain}", "SRV") if isinstance(r, SRV)]
        offered = [r for r in records if r.target != dns.name.root and r.port]
        if offered:
            best = min(offered, key=lambda record: (record.priority, -record.weight))
            return Endpoint(best.target.to_text(omit_final_dot=True), best.port, security)
    return None


# -- DNS -------------------------------------------------------------------------------------


def make_resolver(settings: Settings) -> dns.resolver.Resolver:
    """A resolver asking ``settings.dns_servers`` (or the system's), with a short timeout."""
    return resolver_of(settings.dns_servers, min(settings.mail_timeout, DNS_TIMEOUT))


def _query(resolver: dns.resolver.Resolver, name: str, rdtype: str) -> list[dns.rdata.Rdata]:
    """The records of ``rdtype`` at ``name``; none when it has none or DNS does not answer."""
    try:
        answer = resolver.resolve(dns.name.from_text(name), rdtype, search=False)
    except dns.exception.DNSException as error:
        log.debug("no %s records for %s: %s", rdtype, name, error)
        return []
    return list(answer)


# -- autoconfig ------------------------------------------------------------------------------


def from_autoconfig(email: str, domain: str, settings: Settings) -> ServerSettings | None:
    """The servers in the first autoconfig file found for ``email``; ``None`` if none is usable.

    Raises :class:`MailSettingsRefused` when a file offers only POP3 or Exchange.
    """
    quoted_email = urllib.parse.quote(email, safe="")
    for template in settings.autoconfig_urls:
        url = autoconfig_url(template, domain, quoted_email)
        document = fetch_autoconfig(url, settings)
        found = None if document is None else parse_client_config(document, domain)
        if found is not None:
            return found
    return None


def autoconfig_url(template: str, domain: str, quoted_email: str) -> str:
    """``template`` with ``{domain}`` and ``{email}`` filled in.

    >>> autoconfig_url("https://autoconfig.{domain}/mail?address={email}", "a.org", "x%40a.org")
    'https://autoconfig.a.org/mail?address=x%40a.org'
    """
    try:
        return template.format(domain=domain, email=quoted_email)
    except (KeyError, IndexError, ValueError) as error:
        raise UserInputError(
            f"autoconfig URL {template!r} may use only {{domain}} and {{email}} "
            "(CRMMAIL_AUTOCONFIG_URLS)"
        ) from error


def fetch_autoconfig(url: str, settings: Settings) -> bytes | None:
    """The body of the autoconfig file at ``url``, or ``None`` (logged) if it cannot be fetched."""
    problem = autoconfig_url_problem(url, settings.allow_private_mail_hosts)
    if problem is not None:
        log.info("autoconfig %s skipped: %s", url, problem)
        return None
    opener = urllib.request.build_opener(
        urllib.request.ProxyHandler({}),  # the address check is about the server we reach
        urllib.request.HTTPSHandler(context=_tls_context(settings)),
        _CheckedRedirects(settings.allow_private_mail_hosts),
    )
    request = urllib.request.Request(url, headers={"User-Agent": "crmmail"})
    try:
        with opener.open(request, timeout=min(settings.mail_timeout, AUTOCONFIG_TIMEOUT)) as reply:
            body: bytes = reply.read(AUTOCONFIG_MAX_BYTES + 1)
    except urllib.error.HTTPError as error:
        error.close()
        log.info("autoconfig %s not fetched: HTTP %s", url, error.code)
        return None
    except (OSError, http.client.HTTPException, ValueError) as error:  # URLError is an OSError
        log.info("autoconfig %s not fetched: %s", url, error)
        return None
    if len(body) > AUTOCONFIG_MAX_BYTES:
        log.info("autoconfig %s skipped: larger than %d bytes", url, AUTOCONFIG_MAX_BYTES)
        return None
    return body


def autoconfig_url_problem(url: str, allow_private: bool) -> str | None:
    """Why the autoconfig file at ``url`` must not be fetched (scheme, host addresses), or None.

    >>> autoconfig_url_problem("file:///etc/passwd", allow_private=True)
    'autoconfig URL file:///etc/passwd is not an http or https URL'
    """
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in AUTOCONFIG_SCHEMES or not parts.hostname:
        return f"autoconfig URL {url} is not an http or https URL"
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
        check_resolves_public(parts.hostname, port, allow_private, what="autoconfig")
    except (MailSettingsRefused, ValueError) as refusal:
        return str(refusal)
    return None


class _CheckedRedirects(urllib.request.HTTPRedirectHandler):
    """Follows a few redirects, each to an http(s) URL whose host passes the address check."""

    max_redirections = AUTOCONFIG_MAX_REDIRECTS

    def __init__(self, allow_private: bool) -> None:
        super().__init__()
        self.allow_private = allow_private

    def redirect_request(
        self,
        req: urllib.request.Request,
        fp: IO[bytes],
        code: int,
        msg: str,
        headers: http.client.HTTPMessage,
        newurl: str,
    ) -> urllib.request.Request | None:
        problem = autoconfig_url_problem(newurl, self.allow_private)
        if problem is None and req.full_url.startswith("https:") and newurl.startswith("http:"):
            problem = f"redirect from https to {newurl}"
        if problem is not None:
            fp.close()
            raise urllib.error.URLError(f"redirect refused: {problem}")
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def _tls_context(settings: Settings) -> ssl.SSLContext:
    cafile = None if settings.tls_ca_file is None else str(settings.tls_ca_file)
    return ssl.create_default_context(cafile=cafile)


def parse_client_config(document: bytes, domain: str) -> ServerSettings | None:
    """The IMAP and SMTP servers of a Thunderbird ``clientConfig`` file, or ``None`` if unusable.

    Documents with a DTD are refused unread (no entity expansion); so is anything not XML.
    Raises :class:`MailSettingsRefused` when the incoming servers are only POP3 or Exchange.

    >>> config = b'''<clientConfig version="1.1"><emailProvider id="example.org">
    ...   <incomingServer type="imap"><hostname>imap.%EMAILDOMAIN%</hostname><port>143</port>
    ...     <socketType>STARTTLS</socketType><username>%EMAILADDRESS%</username></incomingServer>
    ...   <incomingServer type="imap"><hostname>imap.example.org</hostname><port>993</port>
    ...     <socketType>SSL</socketType></incomingServer>
    ...   <outgoingServer type="smtp"><hostname>smtp.example.org</hostname><port>25</port>
    ...     <socketType>plain</socketType></outgoingServer>
    ...   <outgoingServer type="smtp"><hostname>smtp.example.org</hostname><port>587</port>
    ...     <socketType>STARTTLS</socketType></outgoingServer>
    ... </emailProvider></clientConfig>'''
    >>> found = parse_client_config(config, "example.org")
    >>> found.imap, found.smtp.port, found.smtp.security.value
    (Endpoint(host='imap.example.org', port=993, security=<Security.SSL: 'ssl'>), 587, 'starttls')
    >>> parse_client_config(b'<!DOCTYPE x [<!ENTITY a "b">]><clientConfig/>', "example.org")
    """
    if b"<!doctype" in document.lower() or b"<!entity" in document.lower():
        log.info("autoconfig for %s refused: it declares a DTD", domain)
        return None
    try:
        root = ElementTree.fromstring(document)
    except ElementTree.ParseError as error:
        log.info("autoconfig for %s is not XML: %s", domain, error)
        return None
    incoming = root.findall("./emailProvider/incomingServer")
    outgoing = root.findall("./emailProvider/outgoingServer")
    incoming_types = {server.get("type", "").lower() for server in incoming}
    if incoming and "imap" not in incoming_types and incoming_types & {"pop3", "exchange"}:
        raise MailSettingsRefused(f"{domain} offers only POP3/Exchange; crmmail needs IMAP")
    imap = _best_server(incoming, "imap", domain)
    smtp = _best_server(outgoing, "smtp", domain)
    if imap is None or smtp is None:
        log.info("autoconfig for %s offers no IMAP and SMTP over TLS", domain)
        return None
    return ServerSettings(imap=imap, smtp=smtp, source="autoconfig")


def _best_server(servers: list[ElementTree.Element], kind: str, domain: str) -> Endpoint | None:
    """The first SSL server of ``kind`` listed, else the first STARTTLS one; never plain text."""
    endpoints = [
        endpoint
        for server in servers
        if server.get("type", "").lower() == kind
        and (endpoint := _endpoint(server, domain)) is not None
    ]
    for security in SECURITY_PREFERENCE:
        for endpoint in endpoints:
            if endpoint.security is security:
                return endpoint
    return None


def _endpoint(server: ElementTree.Element, domain: str) -> Endpoint | None:
    host = (server.findtext("hostname") or "").strip().replace("%EMAILDOMAIN%", domain)
    security = SOCKET_TYPES.get((server.findtext("socketType") or "").strip().upper())
    try:
        port = int((server.findtext("port") or "").strip())
    except ValueError:
        return None
    if not host or security is None or not 1 <= port <= 65535:
        return None
    return Endpoint(host, port, security)
