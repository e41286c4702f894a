"""Run SPF, DKIM and DMARC on one received message, from its envelope and raw bytes."""

from crmmail.auth.dkim_check import verify_dkim
from crmmail.auth.dmarc import evaluate
from crmmail.auth.lookup import DnsLookup
from crmmail.auth.results import SenderAuthentication
from crmmail.auth.spf_check import check_spf, client_ip


def check_sender(
    lookup: DnsLookup, raw: bytes, peer: str, helo: str, mail_from: str, from_domain: str
) -> SenderAuthentication:
    """Every check; DNS failures show as ``temperror`` results, nothing here raises for them."""
    ip = client_ip(peer)
    spf = check_spf(lookup, ip, mail_from, helo) if ip is not None else None
    signatures = verify_dkim(lookup, raw)
    dmarc = evaluate(lookup, from_domain, spf, signatures)
    return SenderAuthentication(spf, signatures, dmarc)
