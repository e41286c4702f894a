"""Checking the DNS records an operator must publish for a smart domain, one finding per record.

crmmail is the MX of a mail subdomain and only receives, so the domain needs:

- MX records naming the operator's crmmail hosts (``--mx``). A published MX host that is not one
  of them is a warning (mail that reaches it never reaches crmmail unless it relays), or an error
  when it is preferred to every crmmail host (senders try it first); no MX at crmmail is an error;
- an A or AAAA record for every MX host, published or expected (error when there is none);
- one SPF record; a receive-only subdomain should publish ``v=spf1 -all`` so nobody may send as
  it. A missing record, ``+all`` (or a bare ``all``), ``?all`` or no ``all`` at all is a warning;
  two SPF records is an error (RFC 7208 4.5: receivers treat the domain as having none);
- a DMARC record at ``_dmarc.DOMAIN`` (a warning when missing; ``p=reject`` suits a receive-only
  subdomain).

Every DNS outcome is a finding, never an exception: NXDOMAIN and "no answer" mean "not
published", a server failure (SERVFAIL, REFUSED) is an error on the record asked for, and a timeout
stops the check with one error, since every later question would wait as long for nothing.
"""

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Final, Literal

import dns.exception
import dns.name
import dns.nameserver
import dns.rdata
import dns.resolver
from dns.rdtypes.ANY.MX import MX
from dns.rdtypes.ANY.TXT import TXT

from crmmail.errors import UserInputError
from crmmail.mail.resolver import parse_nameserver, resolver_for

Level = Literal["ok", "warn", "error"]

DNS_TIMEOUT: Final = 3.0  # seconds for each question, at most; an operator is waiting
RECOMMENDED_SPF: Final = "v=spf1 -all"
RECOMMENDED_DMARC: Final = "v=DMARC1; p=reject"
SPF_PREFIX: Final = "v=spf1"
DMARC_PREFIX: Final = "v=DMARC1"
DMARC_LABEL: Final = "_dmarc"
ADDRESS_TYPES: Final = ("A", "AAAA")


@dataclass(frozen=True)
class Finding:
    """One checked record: how it stands, what was checked and what was found."""

    level: Level
    what: str
    detail: str


@dataclass
class DnsReport:
    """The findings for one domain; ``ok`` when none is an error (warnings allowed)."""

    domain: str
    findings: list[Finding] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(finding.level != "error" for finding in self.findings)

    def add(self, level: Level, what: str, detail: str) -> None:
        self.findings.append(Finding(level, what, detail))


class _DnsTimeout(Exception):
    """The nameserver did not answer in time; raised by a lookup, caught by :func:`check_domain`."""


@dataclass(frozen=True)
class _Answer:
    """What DNS said about one (name, type): records, or none and why."""

    records: list[dns.rdata.Rdata]
    exists: bool = True  # False on NXDOMAIN
    failure: str | None = None  # a server failure (SERVFAIL, REFUSED...), None when it answered


def make_resolver(
    nameservers: Sequence[str], timeout: float = DNS_TIMEOUT
) -> dns.resolver.Resolver:
    """A resolver asking ``nameservers`` ("ip" or "ip:port"), or the system's when none are given.

    Raises :class:`UserInputError` for an entry that is not an address, and dnspython's
    ``NoResolverConfiguration`` when none are given and the system has no resolver configured.

    >>> [(ns.address, ns.port) for ns in make_resolver(["127.0.0.1:5353", "::1"]).nameservers]
    [('127.0.0.1', 5353), ('::1', 53)]
    """
    return resolver_for([_parse_nameserver(entry) for entry in nameservers], timeout)


def _parse_nameserver(entry: str) -> tuple[str, int]:
    try:
        return parse_nameserver(entry)
    except UserInputError:
        raise UserInputError(f"nameserver {entry!r} is not ip or ip:port") from None


def check_domain(
    domain: str, expected_mx_hosts: Sequence[str], resolver: dns.resolver.Resolver
) -> DnsReport:
    """Check the MX, MX host address, SPF and DMARC records of ``domain``.

    Raises :class:`UserInputError` when no expected MX host is given; DNS trouble is a finding.
    """
    name = _normalize(domain)
    expected = list(dict.fromkeys(_normalize(host) for host in expected_mx_hosts))
    if not expected:
        raise UserInputError("give the host names of the crmmail MX servers (--mx HOST)")
    report = DnsReport(name)
    if not _is_domain_name(name):
        report.add("error", "domain", f"{domain!r} is not a domain name")
        return report
    try:
        published = _check_mx(report, name, expected, resolver)
        for host in dict.fromkeys([*published, *expected]):
            _check_host_address(report, host, resolver)
        _check_spf(report, name, resolver)
        _check_dmarc(report, name, resolver)
    except _DnsTimeout as timeout:
        report.add("error", "DNS", f"{timeout}; the remaining checks were skipped")
    return report


# -- the checks ------------------------------------------------------------------------------


def _check_mx(
    report: DnsReport, domain: str, expected: list[str], resolver: dns.resolver.Resolver
) -> list[str]:
    """Report on the MX records of ``domain``; the published MX host names."""
    answer = _lookup(resolver, domain, "MX")
    if answer.failure is not None:
        report.add("error", "MX", answer.failure)
        return []
    records = sorted((r for r in answer.records if isinstance(r, MX)), key=_preference)
    if not records:
        missing = "has no MX records" if answer.exists else "does not exist (NXDOMAIN)"
        report.add("error", "MX", f"{domain} {missing}; publish {_mx_lines(domain, expected)}")
        return []
    if any(record.exchange == dns.name.root for record in records):
        report.add("error", "MX", f"{domain} publishes a null MX (RFC 7505): it refuses all mail")
        return []
    hosts = [(record.preference, _host(record.exchange)) for record in records]
    ours = [preference for preference, host in hosts if host in expected]
    if not ours:
        report.add(
            "error",
            "MX",
            f"no MX of {domain} points at {' or '.join(expected)}: "
            f"found {', '.join(host for _, host in hosts)}",
        )
    for preference, host in hosts:
        if host in expected:
            report.add("ok", "MX", f"{preference} {host}")
        elif ours and preference < min(ours):
            report.add(
                "error", "MX", f"{preference} {host} is preferred to crmmail: mail goes there first"
            )
        elif ours:
            report.add(
                "warn", "MX", f"{preference} {host} is not crmmail: mail it takes may never arrive"
            )
    published = [host for _, host in hosts]
    for host in expected:
        if host not in published:
            report.add("warn", "MX", f"expected MX host {host} is not published for {domain}")
    return published


def _check_host_address(report: DnsReport, host: str, resolver: dns.resolver.Resolver) -> None:
    what = f"MX host {host}"
    answers = [_lookup(resolver, host, rdtype) for rdtype in ADDRESS_TYPES]
    addresses = [record.to_text() for answer in answers for record in answer.records]
    if addresses:
        report.add("ok", what, ", ".join(addresses))
        return
    failures = [answer.failure for answer in answers if answer.failure is not None]
    reason = "; ".join(failures) if failures else "no A or AAAA record"
    report.add("error", what, f"does not resolve: {reason}")


def _policy_records(
    report: DnsReport, what: str, name: str, prefix: str, resolver: dns.resolver.Resolver
) -> list[str] | None:
    """The TXT records at ``name`` that start with ``prefix``; ``None`` (and an error) if DNS
    failed."""
    answer = _lookup(resolver, name, "TXT")
    if answer.failure is not None:
        report.add("error", what, answer.failure)
        return None
    return [text for text in _texts(answer) if _starts_record(text, prefix)]


def _check_spf(report: DnsReport, domain: str, resolver: dns.resolver.Resolver) -> None:
    records = _policy_records(report, "SPF", domain, SPF_PREFIX, resolver)
    if records is None:
        return
    if not records:
        report.add("warn", "SPF", f'no SPF record; publish "{RECOMMENDED_SPF}" (receive only)')
    elif len(records) > 1:
        report.add("error", "SPF", f"{len(records)} SPF records count as none: {records}")
    else:
        level, note = _judge_spf(records[0])
        report.add(level, "SPF", f"{records[0]}{note}")


def _judge_spf(record: str) -> tuple[Level, str]:
    """How a receive-only domain's SPF record stands, by its ``all`` term.

    >>> _judge_spf("v=spf1 -all"), _judge_spf("v=spf1 ~all")[0], _judge_spf("v=spf1 +all")[0]
    (('ok', ''), 'ok', 'warn')
    >>> _judge_spf("v=spf1 ALL")[0], _judge_spf("v=spf1 ?all")[0], _judge_spf("v=spf1 mx")[0]
    ('warn', 'warn', 'warn')
    >>> _judge_spf("v=spf1 redirect=_spf.example.com")
    ('ok', '')
    """
    terms = [term.lower() for term in record.split()[1:]]
    qualifiers = [term[:-3] for term in terms if term in {"all", "+all", "-all", "~all", "?all"}]
    if not qualifiers:
        if any(term.startswith("redirect=") for term in terms):
            return "ok", ""
        return "warn", f': no "all" term, so anyone may send as the domain; use "{RECOMMENDED_SPF}"'
    qualifier = qualifiers[0]
    if qualifier in {"", "+"}:
        return "warn", f': "all" lets anyone send as the domain; use "{RECOMMENDED_SPF}"'
    if qualifier == "?":
        return "warn", f': "?all" vouches for nobody and refuses nobody; use "{RECOMMENDED_SPF}"'
    if qualifier == "~":
        return "ok", f' (softfail; "{RECOMMENDED_SPF}" is stricter for a receive-only domain)'
    return "ok", ""


def _check_dmarc(report: DnsReport, domain: str, resolver: dns.resolver.Resolver) -> None:
    name = f"{DMARC_LABEL}.{domain}"
    records = _policy_records(report, "DMARC", name, DMARC_PREFIX, resolver)
    if records is None:
        return
    if not records:
        report.add("warn", "DMARC", f'no DMARC record at {name}; publish "{RECOMMENDED_DMARC}"')
    elif len(records) > 1:
        report.add("warn", "DMARC", f"{len(records)} DMARC records at {name} count as none")
    else:
        report.add("ok", "DMARC", records[0])


# -- DNS -------------------------------------------------------------------------------------


def _lookup(resolver: dns.resolver.Resolver, name: str, rdtype: str) -> _Answer:
    """What DNS says about ``name``/``rdtype``; raises :class:`_DnsTimeout` when it says nothing."""
    try:
        answer = resolver.resolve(dns.name.from_text(name), rdtype, search=False)
    except dns.resolver.NXDOMAIN:
        return _Answer([], exists=False)
    except dns.resolver.NoAnswer:
        return _Answer([])
    except dns.exception.Timeout as error:
        raise _DnsTimeout(f"no answer to {rdtype} {name}: {error}") from error
    except dns.exception.DNSException as error:
        return _Answer([], failure=f"{rdtype} {name} failed: {error}")
    return _Answer(list(answer))


def _texts(answer: _Answer) -> list[str]:
    """The TXT records of an answer, each one's strings joined (RFC 7208 3.3)."""
    return [
        b"".join(record.strings).decode("utf-8", "replace")
        for record in answer.records
        if isinstance(record, TXT)
    ]


def _starts_record(text: str, prefix: str) -> bool:
    """Whether ``text`` is a record of the ``prefix`` version (``v=spf1`` but not ``v=spf10``).

    >>> _starts_record("v=spf1 -all", "v=spf1"), _starts_record("V=SPF1", "v=spf1")
    (True, True)
    >>> _starts_record("v=spf10", "v=spf1"), _starts_record("v=DMARC1;p=none", "v=DMARC1")
    (False, True)
    """
    head = text[: len(prefix)]
    rest = text[len(prefix) :]
    return head.lower() == prefix.lower() and (not rest or rest[0] in " ;")


def _normalize(name: str) -> str:
    return name.strip().lower().rstrip(".")


def _is_domain_name(name: str) -> bool:
    if not name:
        return False
    try:
        dns.name.from_text(name)
    except dns.exception.DNSException:
        return False
    return True


def _host(name: dns.name.Name) -> str:
    return _normalize(name.to_text(omit_final_dot=True))


def _preference(record: MX) -> int:
    return int(record.preference)


def _mx_lines(domain: str, expected: list[str]) -> str:
    return ", ".join(f'"{domain}. MX {10 * n} {host}."' for n, host in enumerate(expected, 1))
