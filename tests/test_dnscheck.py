"""The DNS check of a smart domain, against a real DNS server on loopback."""

import socket
import threading
import time
from collections.abc import Sequence

import dns.message
import dns.rcode
import pytest
from click.testing import CliRunner

from crmmail.cli import cli
from crmmail.dnscheck import DnsReport, Finding, check_domain, make_resolver
from crmmail.errors import UserInputError
from tests.dnsstub import Records, running_dns

DOMAIN = "crm.example.test"
MX_HOST = "mx1.example.test"
GOOD: dict[tuple[str, str], list[str]] = {
    (DOMAIN, "MX"): [f"10 {MX_HOST}."],
    (DOMAIN, "TXT"): ['"v=spf1 -all"', '"google-site-verification=abc"'],
    (f"_dmarc.{DOMAIN}", "TXT"): ['"v=DMARC1; p=reject"'],
    (MX_HOST, "A"): ["192.0.2.25"],
    (MX_HOST, "AAAA"): ["2001:db8::25"],
}


def check(records: Records, expected: Sequence[str] = (MX_HOST,)) -> DnsReport:
    with running_dns(records) as dns:
        return check_domain(DOMAIN, expected, make_resolver([dns.address], timeout=2.0))


def changed(**updates: list[str] | None) -> Records:
    """GOOD with some records replaced (a list) or removed (None); keys are 'name|TYPE'."""
    records = dict(GOOD)
    for key, value in updates.items():
        name, rdtype = key.split("|")
        if value is None:
            del records[name, rdtype]
        else:
            records[name, rdtype] = value
    return records


def only(report: DnsReport, what: str) -> Finding:
    (finding,) = (f for f in report.findings if f.what == what)
    return finding


def levels(report: DnsReport) -> set[tuple[str, str]]:
    return {(f.level, f.what) for f in report.findings}


def test_all_records_published_is_all_ok() -> None:
    report = check(GOOD)
    assert report.ok
    assert levels(report) == {
        ("ok", "MX"),
        ("ok", f"MX host {MX_HOST}"),
        ("ok", "SPF"),
        ("ok", "DMARC"),
    }
    assert only(report, "MX").detail == f"10 {MX_HOST}"
    assert only(report, f"MX host {MX_HOST}").detail == "192.0.2.25, 2001:db8::25"
    assert only(report, "SPF").detail == "v=spf1 -all"
    assert only(report, "DMARC").detail == "v=DMARC1; p=reject"


def test_names_are_compared_without_case_or_final_dot() -> None:
    with running_dns(GOOD) as dns:
        report = check_domain(
            DOMAIN.upper() + ".", ["MX1.Example.Test."], make_resolver([dns.address])
        )
    assert report.ok, report.findings
    assert report.domain == DOMAIN


def test_missing_mx_is_an_error_that_says_what_to_publish() -> None:
    report = check(changed(**{f"{DOMAIN}|MX": None}))
    assert not report.ok
    finding = only(report, "MX")
    assert finding.level == "error"
    assert f'has no MX records; publish "{DOMAIN}. MX 10 {MX_HOST}."' in finding.detail
    # the expected host is still checked, so an operator sees everything left to do
    assert only(report, f"MX host {MX_HOST}").level == "ok"


def test_a_domain_that_does_not_exist_is_an_error() -> None:
    report = check({(MX_HOST, "A"): ["192.0.2.25"]})
    assert not report.ok
    assert "does not exist (NXDOMAIN)" in only(report, "MX").detail
    assert only(report, "SPF").level == "warn"
    assert only(report, "DMARC").level == "warn"


def test_mx_pointing_elsewhere_is_an_error() -> None:
    report = check(changed(**{f"{DOMAIN}|MX": ["10 mx.other.test."]}))
    assert not report.ok
    assert {f.detail for f in report.findings if f.what == "MX"} == {
        f"no MX of {DOMAIN} points at {MX_HOST}: found mx.other.test",
        f"expected MX host {MX_HOST} is not published for {DOMAIN}",
    }
    assert only(report, "MX host mx.other.test").level == "error"  # it has no address either


def test_another_mx_preferred_to_crmmail_is_an_error_and_a_backup_one_a_warning() -> None:
    preferred = check(changed(**{f"{DOMAIN}|MX": [f"20 {MX_HOST}.", f"10 {MX_HOST}."]}))
    assert preferred.ok
    records = changed(**{f"{DOMAIN}|MX": [f"20 {MX_HOST}.", "10 mx.other.test."]})
    records["mx.other.test", "A"] = ["192.0.2.99"]
    report = check(records)
    assert not report.ok
    assert ("error", "MX") in levels(report)
    assert "10 mx.other.test is preferred to crmmail" in str(report.findings)

    records = changed(**{f"{DOMAIN}|MX": [f"10 {MX_HOST}.", "20 mx.other.test."]})
    records["mx.other.test", "A"] = ["192.0.2.99"]
    report = check(records)
    assert report.ok
    assert ("warn", "MX") in levels(report)


def test_null_mx_is_an_error() -> None:
    report = check(changed(**{f"{DOMAIN}|MX": ["0 ."]}))
    assert not report.ok
    assert "null MX" in only(report, "MX").detail


def test_mx_host_without_address_is_an_error() -> None:
    records = changed(**{f"{MX_HOST}|A": None, f"{MX_HOST}|AAAA": None})
    report = check(records)
    assert not report.ok
    finding = only(report, f"MX host {MX_HOST}")
    assert finding == Finding(
        "error", f"MX host {MX_HOST}", "does not resolve: no A or AAAA record"
    )


def test_mx_host_with_only_ipv6_resolves() -> None:
    report = check(changed(**{f"{MX_HOST}|A": None}))
    assert report.ok
    assert only(report, f"MX host {MX_HOST}").detail == "2001:db8::25"


def test_missing_spf_is_a_warning_naming_the_record_to_publish() -> None:
    report = check(changed(**{f"{DOMAIN}|TXT": ['"google-site-verification=abc"']}))
    assert report.ok
    finding = only(report, "SPF")
    assert finding.level == "warn"
    assert '"v=spf1 -all"' in finding.detail


@pytest.mark.parametrize("record", ['"v=spf1 +all"', '"v=spf1 a mx all"', '"v=spf1 ?all"'])
def test_spf_letting_anyone_send_is_a_warning(record: str) -> None:
    report = check(changed(**{f"{DOMAIN}|TXT": [record]}))
    assert report.ok
    finding = only(report, "SPF")
    assert finding.level == "warn"
    assert finding.detail.startswith(record.strip('"') + ": ")


def test_spf_split_into_strings_is_read_whole() -> None:
    report = check(changed(**{f"{DOMAIN}|TXT": ['"v=spf1 " "-all"']}))
    assert only(report, "SPF") == Finding("ok", "SPF", "v=spf1 -all")


def test_two_spf_records_are_an_error() -> None:
    report = check(changed(**{f"{DOMAIN}|TXT": ['"v=spf1 -all"', '"v=spf1 mx -all"']}))
    assert not report.ok
    assert only(report, "SPF").level == "error"


def test_missing_dmarc_is_a_warning() -> None:
    report = check(changed(**{f"_dmarc.{DOMAIN}|TXT": None}))
    assert report.ok
    finding = only(report, "DMARC")
    assert finding.level == "warn"
    assert f"no DMARC record at _dmarc.{DOMAIN}" in finding.detail


def test_a_silent_nameserver_is_one_error_found_quickly() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:
        silent.bind(("127.0.0.1", 0))
        port = silent.getsockname()[1]
        started = time.monotonic()
        report = check_domain(DOMAIN, [MX_HOST], make_resolver([f"127.0.0.1:{port}"], 0.3))
    assert time.monotonic() - started < 2
    assert not report.ok
    (finding,) = report.findings
    assert finding.level == "error"
    assert finding.what == "DNS"
    assert finding.detail.startswith(f"no answer to MX {DOMAIN}")
    assert finding.detail.endswith("the remaining checks were skipped")


def test_a_refusing_nameserver_is_an_error_per_record() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as refusing:
        refusing.bind(("127.0.0.1", 0))
        port = refusing.getsockname()[1]
        server = threading.Thread(target=_refuse_all, args=(refusing,), daemon=True)
        server.start()
        report = check_domain(DOMAIN, [MX_HOST], make_resolver([f"127.0.0.1:{port}"], 2.0))
        refusing.sendto(b"", refusing.getsockname())  # wakes the server up to stop
        server.join()
    assert not report.ok
    assert [(f.level, f.what) for f in report.findings] == [
        ("error", "MX"),
        ("error", f"MX host {MX_HOST}"),
        ("error", "SPF"),
        ("error", "DMARC"),
    ]
    assert only(report, "MX").detail.startswith(f"MX {DOMAIN} failed: ")
    assert "REFUSED" in only(report, "MX").detail


def _refuse_all(sock: socket.socket) -> None:
    """Answer REFUSED to every query until an empty datagram arrives."""
    while True:
        data, client = sock.recvfrom(4096)
        if not data:
            return
        response = dns.message.make_response(dns.message.from_wire(data))
        response.set_rcode(dns.rcode.REFUSED)
        sock.sendto(response.to_wire(), client)


def test_bad_input_is_a_user_error_or_a_finding() -> None:
    with pytest.raises(UserInputError, match="is not ip or ip:port"):
        make_resolver(["ns.example.test"])
    with running_dns(GOOD) as dns:
        resolver = make_resolver([dns.address])
        with pytest.raises(UserInputError, match="--mx HOST"):
            check_domain(DOMAIN, [], resolver)
        report = check_domain("bad..name", [MX_HOST], resolver)
    assert report.findings == [Finding("error", "domain", "'bad..name' is not a domain name")]


def test_dns_check_on_the_command_line() -> None:
    runner = CliRunner()
    with running_dns(GOOD) as good:
        result = runner.invoke(
            cli, ["dns-check", DOMAIN, "--mx", MX_HOST, "--nameserver", good.address, "--json"]
        )
    assert result.exit_code == 0, result.output
    assert '"ok": true' in result.stdout
    with running_dns(changed(**{f"{DOMAIN}|MX": None})) as broken:
        result = runner.invoke(
            cli, ["dns-check", DOMAIN, "--mx", MX_HOST, "--nameserver", broken.address]
        )
    assert result.exit_code == 1
    assert "error  MX" in result.stdout
