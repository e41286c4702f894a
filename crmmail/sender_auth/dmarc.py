"""DMARC (RFC 7489): find the From domain's policy record and check SPF/DKIM identifier alignment.

The policy record is looked up at ``_dmarc.<From domain>``, then at ``_dmarc.<organizational
domain>``. The organizational domain is the registrable domain under the Public Suffix List
(the ``publicsuffixlist`` package, which ships the list and is released as it changes); a name
the list does not know ends in a public suffix of one label (``corp.test`` for ``a.corp.test``).
Relaxed alignment compares organizational domains, strict alignment the exact names. ``pct`` is
not applied (a sampled policy is treated as applying to every message: we never drop mail
anyway, and the account decides what a failure does).
"""

from dataclasses import dataclass
from functools import cache

from publicsuffixlist import PublicSuffixList

from crmmail.sender_auth.dkim_check import DkimResult
from crmmail.sender_auth.lookup import DnsLookup, DnsTemporaryError
from crmmail.sender_auth.spf_check import SpfResult

POLICIES = ("none", "quarantine", "reject")
RECORD_PREFIX = b"v=dmarc1"


@dataclass(frozen=True)
class DmarcRecord:
    """The parts of a DMARC record that decide a message's result."""

    policy: str
    subdomain_policy: str
    strict_dkim: bool
    strict_spf: bool


@dataclass(frozen=True)
class DmarcResult:
    """``pass``, ``fail``, ``none`` (no record) or ``temperror``, with the policy that applies."""

    result: str
    from_domain: str
    policy: str | None = None  # none | quarantine | reject for the From domain


@cache
def _public_suffixes() -> PublicSuffixList:
    """The list, parsed once per process (read-only data, like a compiled pattern)."""
    return PublicSuffixList()


def organizational_domain(domain: str) -> str:
    """The registrable domain of ``domain``.

    >>> organizational_domain("news.example.co.uk"), organizational_domain("a.b.corp.test")
    ('example.co.uk', 'corp.test')
    """
    domain = domain.lower().rstrip(".")
    return _public_suffixes().privatesuffix(domain) or domain


def aligned(identifier: str, from_domain: str, strict: bool) -> bool:
    """Whether an authenticated domain is aligned with the From domain (RFC 7489 3.1).

    >>> aligned("mail.example.com", "example.com", strict=False)
    True
    >>> aligned("mail.example.com", "example.com", strict=True)
    False
    """
    identifier, from_domain = identifier.lower().rstrip("."), from_domain.lower().rstrip(".")
    if not identifier or not from_domain:
        return False
    if strict:
        return identifier == from_domain
    return organizational_domain(identifier) == organizational_domain(from_domain)


def parse_record(text: bytes) -> DmarcRecord | None:
    """A DMARC record's policy and alignment modes; ``None`` if it is not a DMARC record.

    An unknown or missing ``p`` is read as ``none`` (RFC 7489 6.6.3 keeps such a record for
    reporting only).

    >>> parse_record(b"v=DMARC1; p=reject; adkim=s")
    DmarcRecord(policy='reject', subdomain_policy='reject', strict_dkim=True, strict_spf=False)
    >>> parse_record(b"v=spf1 -all") is None
    True
    """
    tags: dict[str, str] = {}
    for part in text.decode("ascii", "replace").split(";"):
        key, _, value = part.partition("=")
        tags.setdefault(key.strip().lower(), value.strip().lower())
    if tags.get("v") != "dmarc1":
        return None
    policy = tags.get("p", "none")
    policy = policy if policy in POLICIES else "none"
    subdomain_policy = tags.get("sp", policy)
    return DmarcRecord(
        policy=policy,
        subdomain_policy=subdomain_policy if subdomain_policy in POLICIES else policy,
        strict_dkim=tags.get("adkim") == "s",
        strict_spf=tags.get("aspf") == "s",
    )


def find_record(lookup: DnsLookup, from_domain: str) -> tuple[DmarcRecord, bool] | None:
    """The record that governs ``from_domain``, and whether it was found at the org domain."""
    record = _record_at(lookup, from_domain)
    if record is not None:
        return record, False
    org = organizational_domain(from_domain)
    if org != from_domain:
        record = _record_at(lookup, org)
        if record is not None:
            return record, True
    return None


def _record_at(lookup: DnsLookup, domain: str) -> DmarcRecord | None:
    texts = [t for t in lookup.txt(f"_dmarc.{domain}") if t.lower().startswith(RECORD_PREFIX)]
    if len(texts) != 1:  # none, or several: no policy (RFC 7489 6.6.3)
        return None
    return parse_record(texts[0])


def evaluate(
    lookup: DnsLookup, from_domain: str, spf: SpfResult | None, signatures: list[DkimResult]
) -> DmarcResult:
    """The DMARC result for a message whose From domain is ``from_domain``."""
    from_domain = from_domain.lower().rstrip(".")
    if not from_domain:
        return DmarcResult("none", "")
    try:
        found = find_record(lookup, from_domain)
    except DnsTemporaryError:
        return DmarcResult("temperror", from_domain)
    if found is None:
        return DmarcResult("none", from_domain)
    record, inherited = found
    policy = record.subdomain_policy if inherited else record.policy
    spf_aligned = (
        spf is not None
        and spf.result == "pass"
        and aligned(spf.domain, from_domain, record.strict_spf)
    )
    dkim_aligned = any(
        signature.result == "pass" and aligned(signature.domain, from_domain, record.strict_dkim)
        for signature in signatures
    )
    if spf_aligned or dkim_aligned:
        return DmarcResult("pass", from_domain, policy)
    # An aligned identifier whose check could not finish might have passed: a DNS hiccup must
    # not read as a forgery (RFC 7489 6.6.2), so the result is temperror, never fail.
    unfinished = (
        spf is not None
        and spf.result == "temperror"
        and aligned(spf.domain, from_domain, record.strict_spf)
    ) or any(
        signature.result == "temperror"
        and aligned(signature.domain, from_domain, record.strict_dkim)
        for signature in signatures
    )
    return DmarcResult("temperror" if unfinished else "fail", from_domain, policy)
