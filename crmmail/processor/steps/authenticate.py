"""Check the sender (SPF, DKIM, DMARC) with DNS, before any step touches the database.

Clients in ``CRMMAIL_AUTH_IGNORE_NETWORKS`` (loopback by default: local submission) are not
checked. ``Authentication-Results`` fields in the message that claim our authserv-id
(``CRMMAIL_SMTP_HOSTNAME``) are forgeries: they are dropped from the parsed headers every later
step and view reads, and logged. The raw bytes stay as received (DKIM is verified on them, and a
message is never altered in the spool); our own verdict lives only in the spool row's
``auth_results`` column, written by the ``dmarc_policy`` step.
"""

import ipaddress
import logging
import re

import dns.resolver

from crmmail.config import Settings
from crmmail.errors import UserInputError
from crmmail.mail.resolver import resolver_of
from crmmail.processor.context import MessageContext
from crmmail.sender_auth.check import check_sender
from crmmail.sender_auth.lookup import DNS_TIMEOUT, DnsLookup
from crmmail.sender_auth.results import claims_authserv_id
from crmmail.sender_auth.spf_check import client_ip

AUTHENTICATION_RESULTS = "authentication-results"
_HEADER_END = re.compile(rb"\r?\n\r?\n")
_FIELD_START = re.compile(rb"\r?\n(?![ \t])")

log = logging.getLogger(__name__)


def run(ctx: MessageContext) -> None:
    settings = ctx.settings
    if settings is None:
        return
    forged = forged_results(ctx.inbound.raw, settings.smtp_hostname)
    if forged:
        if claims_authserv_id(ctx.message.header(AUTHENTICATION_RESULTS), settings.smtp_hostname):
            del ctx.message.headers[AUTHENTICATION_RESULTS]
        log.warning(
            "inbound %d: %d forged Authentication-Results claiming %s ignored",
            ctx.inbound.id,
            forged,
            settings.smtp_hostname,
        )
    if not checked_client(ctx.inbound.peer, settings):
        return
    lookup = DnsLookup(_resolver(settings))
    ctx.authentication = check_sender(
        lookup,
        ctx.inbound.raw,
        ctx.inbound.peer,
        ctx.inbound.helo,
        ctx.inbound.mail_from,
        [named.address.rpartition("@")[2] for named in ctx.message.from_],
    )


def checked_client(peer: str, settings: Settings) -> bool:
    """Whether mail from this client is checked (not from an ignored network)."""
    ip = client_ip(peer)
    if ip is None:
        return True  # no address: SPF reads none, DKIM and DMARC still apply
    address = ipaddress.ip_address(ip)
    return not any(address in network for network in settings.auth_ignore_networks)


def forged_results(raw: bytes, authserv_id: str) -> int:
    """How many ``Authentication-Results`` fields of the header block claim ``authserv_id``.

    >>> forged_results(b"Authentication-Results: mx.test;\\r\\n spf=pass\\r\\n\\r\\n", "mx.test")
    1
    """
    end = _HEADER_END.search(raw)
    head = raw[: end.start()] if end else raw
    count = 0
    for field in _FIELD_START.split(head):
        name, colon, value = field.partition(b":")
        if colon and name.strip().lower() == AUTHENTICATION_RESULTS.encode():
            text = value.decode("utf-8", "replace").replace("\r\n", " ").replace("\n", " ")
            count += claims_authserv_id(text, authserv_id)
    return count


def _resolver(settings: Settings) -> dns.resolver.Resolver | None:
    """The resolver of ``CRMMAIL_DNS_SERVERS``; ``None`` (every check: temperror) if unusable."""
    try:
        return resolver_of(settings.dns_servers, DNS_TIMEOUT)
    except (UserInputError, dns.resolver.NoResolverConfiguration) as error:
        log.error("sender authentication: no usable DNS resolver: %s", error)
        return None
