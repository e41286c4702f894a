"""Run SPF, DKIM and DMARC on one received message, from its envelope and raw bytes.

DNS failures show as ``temperror`` results. A check library that raises on some input (a bug
of pyspf or dkimpy, not of the message) gives ``permerror`` for that check and is logged: the
message goes on rather than failing every attempt and ending ``dead``.
"""

import logging

from crmmail.auth.dkim_check import DkimResult, verify_dkim
from crmmail.auth.dmarc import evaluate
from crmmail.auth.lookup import DnsLookup
from crmmail.auth.results import SenderAuthentication
from crmmail.auth.spf_check import SpfResult, check_spf, client_ip

log = logging.getLogger(__name__)


def check_sender(
    lookup: DnsLookup, raw: bytes, peer: str, helo: str, mail_from: str, from_domain: str
) -> SenderAuthentication:
    """Every check; nothing here raises for DNS or library failures."""
    ip = client_ip(peer)
    spf = _spf(lookup, ip, mail_from, helo) if ip is not None else None
    signatures = _dkim(lookup, raw)
    dmarc = evaluate(lookup, from_domain, spf, signatures)
    return SenderAuthentication(spf, signatures, dmarc)


def _spf(lookup: DnsLookup, ip: str, mail_from: str, helo: str) -> SpfResult:
    try:
        return check_spf(lookup, ip, mail_from, helo)
    except Exception:  # pyspf's bug must not make the message dead
        log.exception("SPF check crashed for %s from %s; recorded as permerror", mail_from, ip)
        return SpfResult("permerror", "mailfrom" if mail_from else "helo", "", mail_from)


def _dkim(lookup: DnsLookup, raw: bytes) -> list[DkimResult]:
    try:
        return verify_dkim(lookup, raw)
    except Exception:  # dkimpy's bug must not make the message dead
        log.exception("DKIM check crashed; recorded as permerror")
        return [DkimResult("permerror", "", "")]
