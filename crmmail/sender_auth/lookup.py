"""DNS for the sender checks: one dnspython resolver, short timeouts, a budget per message.

Answers come back as plain values: TXT as the joined bytes of each record, A/AAAA as address
text, MX as ``(preference, exchange)``, PTR as the target name. A name that does not exist or
has no record of the type is an empty list; a timeout, a server failure or a spent budget is
:class:`DnsTemporaryError`, which the checks turn into ``temperror``.
"""

import time
from collections.abc import Callable

import dns.exception
import dns.name
import dns.resolver

DNS_TIMEOUT = 2.0  # seconds for one query
DNS_BUDGET = 10.0  # seconds for all the queries about one message


class DnsTemporaryError(Exception):
    """DNS did not answer (timeout, SERVFAIL, no server reachable): try again later."""


class DnsLookup:
    """The queries of one message's checks, within a shared time budget."""

    def __init__(
        self,
        resolver: dns.resolver.Resolver | None,
        budget: float = DNS_BUDGET,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.resolver = resolver  # None: no resolver could be configured; every query fails
        self.clock = clock
        self.deadline = clock() + budget
        self.queries = 0

    def query(self, name: str, rdtype: str) -> list[dns.rdata.Rdata]:
        """The records of ``rdtype`` at ``name``; ``[]`` for none; raises DnsTemporaryError."""
        if self.resolver is None:
            raise DnsTemporaryError("no DNS resolver configured")
        remaining = self.deadline - self.clock()
        if remaining <= 0:
            raise DnsTemporaryError("DNS time budget for this message spent")
        try:
            qname = dns.name.from_text(name)
        except dns.exception.DNSException:  # not a name DNS can carry: nothing is there
            return []
        self.queries += 1
        try:
            answer = self.resolver.resolve(
                qname,
                rdtype,
                search=False,
                raise_on_no_answer=False,
                lifetime=min(self.resolver.lifetime, remaining),
            )
        except dns.resolver.NXDOMAIN:
            return []
        except dns.exception.DNSException as error:  # timeout, SERVFAIL, no server
            raise DnsTemporaryError(f"DNS {rdtype} {name}: {type(error).__name__}") from None
        return list(answer.rrset or [])

    def txt(self, name: str) -> list[bytes]:
        """Each TXT record at ``name`` as one byte string (its character-strings joined)."""
        return [b"".join(rdata.strings) for rdata in self.query(name, "TXT")]  # type: ignore[attr-defined]
