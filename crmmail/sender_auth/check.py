"""Run SPF, DKIM and DMARC on one received message, from its envelope and raw bytes.

DNS failures show as ``temperror`` results. A check library that raises on some input (a bug
of pyspf, dkimpy or the suffix list, not of the message) gives ``permerror`` for that check and
is logged: the message goes on rather than failing every attempt and ending ``dead``.
"""

import logging
from collections.abc import Sequence

from crmmail.sender_auth.dkim_check import DkimResult, verify_dkim
from crmmail.sender_auth.dmarc import DmarcResult, evaluate
from crmmail.sender_auth.lookup import DnsLookup
from crmmail.sender_auth.results import SenderAuthentication
from crmmail.sender_auth.spf_check import SpfResult, check_spf, client_ip

log = logging.getLogger(__name__)


# The DMARC result a message gets when its From names several domains: the worst of theirs.
DMARC_SEVERITY = ("fail", "temperror", "permerror", "none", "pass")


def check_sender(
    lookup: DnsLookup,
    raw: bytes,
    peer: str,
    helo: str,
    mail_from: str,
    from_domains: Sequence[str],
) -> SenderAuthentication:
    """Every check; nothing here raises for DNS or library failures.

    Each domain in From is evaluated (``From: a@own.test, ceo@victim.test`` must not pass on
    the first one, RFC 7489 6.6.1); the message gets the worst result.
    """
    ip = client_ip(peer)
    spf = _spf(lookup, ip, mail_from, helo) if ip is not None else None
    signatures = _dkim(lookup, raw)
    results = [_dmarc(lookup, domain, spf, signatures) for domain in dict.fromkeys(from_domains)]
    if not results:
        return SenderAuthentication(spf, signatures)
    dmarc = min(results, key=lambda result: _severity(result.result))
    return SenderAuthentication(spf, signatures, dmarc)


def _severity(result: str) -> int:
    return DMARC_SEVERITY.index(result) if result in DMARC_SEVERITY else 0


def _dmarc(
    lookup: DnsLookup, domain: str, spf: SpfResult | None, signatures: list[DkimResult]
) -> DmarcResult:
    try:
        return evaluate(lookup, domain, spf, signatures)
    except Exception:  # a library's bug (the suffix list, dnspython) must not make it dead
        log.exception("DMARC evaluation crashed for %s; recorded as permerror", domain)
        return DmarcResult("permerror", domain)


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
