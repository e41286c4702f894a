"""SPF (RFC 7208) of the client IP for the MAIL FROM (or HELO) identity, with pyspf.

pyspf does the evaluation (mechanisms, macros, the 10-lookup and void-lookup limits); its DNS
goes through our :class:`DnsLookup` by overriding ``query.dns``, the one method through which
all of its queries pass (its own module-level resolver would use the system's configuration).
"""

import ipaddress
from dataclasses import dataclass
from typing import Any

import spf as pyspf

from crmmail.sender_auth.lookup import DnsLookup, DnsTemporaryError

MAX_LABEL = 63


@dataclass(frozen=True)
class SpfResult:
    """The SPF result and the identity it is about."""

    result: str  # pass fail softfail neutral none temperror permerror
    identity: str  # "mailfrom" or "helo"
    domain: str  # the domain checked (MAIL FROM's, or the HELO name for a null sender)
    sender: str  # the checked address (postmaster@HELO for a null sender)


class _Query(pyspf.query):  # type: ignore[misc]
    """pyspf's evaluation with our resolver."""

    def __init__(self, lookup: DnsLookup, ip: str, sender: str, helo: str) -> None:
        super().__init__(i=ip, s=sender, h=helo, strict=True)
        self.lookup = lookup

    def dns(
        self, name: Any, qtype: str, cnames: Any = None, ignore_void: bool = False
    ) -> list[Any]:
        name = str(name).rstrip(".").lower()
        if not name or not all(0 < len(label) <= MAX_LABEL for label in name.split(".")):
            return []
        key = (name, qtype)
        if key not in self.cache:
            self.cache[key] = self._ask(name, qtype)
        result: list[Any] = self.cache[key]
        if not result and not ignore_void:
            self.void_lookups += 1
            if self.void_lookups > pyspf.MAX_VOID_LOOKUPS:
                raise pyspf.PermError(f"void lookup limit of {pyspf.MAX_VOID_LOOKUPS} exceeded")
        return result

    def _ask(self, name: str, qtype: str) -> list[Any]:
        if qtype not in ("A", "AAAA", "MX", "PTR", "TXT"):
            return []  # the SPF RR type (99) is obsolete (RFC 7208 section 3.1)
        try:
            records = self.lookup.query(name, qtype)
        except DnsTemporaryError as error:
            raise pyspf.TempError(str(error)) from None
        if qtype in ("A", "AAAA"):
            return [rdata.address for rdata in records]  # type: ignore[attr-defined]
        if qtype == "MX":
            return [(rdata.preference, rdata.exchange) for rdata in records]  # type: ignore[attr-defined]
        if qtype == "PTR":
            return [rdata.target.to_text(True) for rdata in records]  # type: ignore[attr-defined]
        return [rdata.strings for rdata in records]  # type: ignore[attr-defined]


def client_ip(peer: str) -> str | None:
    """The IP of a spool row's ``peer`` ("ip:port", "v6:port" or "[v6]:port"), if it is one.

    >>> client_ip("192.0.2.1:25"), client_ip("2001:db8::1:4000"), client_ip("[::1]:25")
    ('192.0.2.1', '2001:db8::1', '::1')
    >>> client_ip("") is None, client_ip("unix:socket") is None
    (True, True)
    """
    host = peer.rpartition(":")[0].strip("[]") if ":" in peer else peer
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        return None


def check_spf(lookup: DnsLookup, ip: str, mail_from: str, helo: str) -> SpfResult:
    """SPF for a client; a null reverse-path checks the HELO identity (postmaster@HELO)."""
    sender = mail_from.strip().strip("<>")
    query = _Query(lookup, ip, sender, helo)
    domain = query.o if query.o else helo
    try:
        result, _code, _explanation = query.check()
    except DnsTemporaryError:  # pyspf wraps ours, but be sure nothing escapes
        result = "temperror"
    return SpfResult(str(result), query.ident, str(domain).lower(), str(query.s).lower())
