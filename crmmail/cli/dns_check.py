"""``crmmail dns-check``: the MX, SPF and DMARC records a smart domain needs."""

import sys

import click

from crmmail import dnscheck
from crmmail.cli.core import cli, emit, json_option


@cli.command("dns-check")
@click.argument("domain")
@click.option(
    "--mx", "mx_hosts", multiple=True, required=True, metavar="HOST", help="Your crmmail MX host."
)
@click.option(
    "--nameserver", "nameservers", multiple=True, metavar="IP[:PORT]", help="Ask this resolver."
)
@json_option
def dns_check(
    domain: str, mx_hosts: tuple[str, ...], nameservers: tuple[str, ...], as_json: bool
) -> None:
    """Check the MX, SPF and DMARC records a smart domain needs; exit 1 on an error."""
    report = dnscheck.check_domain(domain, mx_hosts, dnscheck.make_resolver(nameservers))
    findings = [{"level": f.level, "what": f.what, "detail": f.detail} for f in report.findings]
    emit(
        {"domain": report.domain, "ok": report.ok, "findings": findings},
        as_json,
        lambda d: "\n".join(f"{f['level']:5}  {f['what']}: {f['detail']}" for f in findings),
    )
    if not report.ok:
        sys.exit(1)
