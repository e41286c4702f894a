"""The refusals of a mailbox's settings: IP and IDN hosts, POP3 and Exchange, private networks."""

import ipaddress

import pytest

from crmmail.connector.endpoints import Endpoint, Security, ServerSettings
from crmmail.connector.errors import MailSettingsRefused
from crmmail.connector.hosts import (
    check_address,
    check_host,
    check_not_pop3_or_exchange,
    check_resolves_public,
    check_server_settings,
    non_public_reason,
)
from crmmail.errors import UserInputError

OURS = ("mail.localhost", "crm.example.test")
LOCAL_IMAP = Endpoint("localhost", 1993, Security.SSL)
LOCAL_SMTP = Endpoint("localhost", 1587, Security.STARTTLS)


def refusal(excinfo: pytest.ExceptionInfo[MailSettingsRefused]) -> str:
    """The refusal's message, checked to be the one clear line the user is shown."""
    message = str(excinfo.value)
    assert "\n" not in message
    assert isinstance(excinfo.value, UserInputError)
    return message


# -- addresses -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "email",
    [
        "ana@bücher.example",
        "ana@xn--bcher-kva.example",
        "ana@mail.XN--P1AI",
        "ana@пример.рф",
        "ana@example.org\u212a",  # the Kelvin sign is not a K
    ],
)
def test_idn_addresses_are_refused(email: str) -> None:
    with pytest.raises(MailSettingsRefused) as excinfo:
        check_address(email, OURS)
    assert "internationalised (IDN) domain" in refusal(excinfo)


@pytest.mark.parametrize(
    "email",
    [
        "acme@mail.localhost",
        "acme+lead@mail.localhost",
        "Acme@MAIL.LOCALHOST",
        "anything-at-all@crm.example.test",
        "acme@mail.localhost.",
    ],
)
def test_our_smart_addresses_are_refused(email: str) -> None:
    with pytest.raises(MailSettingsRefused) as excinfo:
        check_address(email, OURS)
    assert refusal(excinfo) == f"{email} is a crmmail smart address; connect a real mailbox"


@pytest.mark.parametrize(
    "email", ["", "ana", "ana@", "@example.org", "ana@[10.0.0.1]", "ana@10.0.0.1", "ana@localhost"]
)
def test_addresses_without_a_domain_name_are_refused(email: str) -> None:
    with pytest.raises(MailSettingsRefused) as excinfo:
        check_address(email, OURS)
    assert "give one like name@example.org" in refusal(excinfo)


@pytest.mark.parametrize(
    "email", ["ana@example.org", "Ana.Lopez+crm@Sub.Example.co.uk", "ana@mail.localhost.example"]
)
def test_real_addresses_pass(email: str) -> None:
    check_address(email, OURS)


# -- host names ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "host",
    [
        "10.0.0.1",
        "93.184.215.14",
        "1.2.3.4.",
        "127.1",
        "0x7f.1",
        "0x7f000001",
        "2130706433",
        "::1",
        "2001:db8::1",
        "[::1]",
        "[10.0.0.1]",
        "::ffff:10.0.0.1",
    ],
)
def test_ip_address_hosts_are_refused(host: str) -> None:
    with pytest.raises(MailSettingsRefused) as excinfo:
        check_host(host, "IMAP")
    assert refusal(excinfo) == f"IMAP host {host} is an IP address; give the server's host name"


@pytest.mark.parametrize(
    "host", ["imap.bücher.example", "imap.xn--bcher-kva.example", "XN--80AKHBYKNJ4F.example"]
)
def test_idn_hosts_are_refused(host: str) -> None:
    with pytest.raises(MailSettingsRefused) as excinfo:
        check_host(host, "SMTP")
    assert refusal(excinfo).startswith(f"SMTP host {host} is an internationalised (IDN) domain")


@pytest.mark.parametrize(
    "host",
    [
        "",
        "   ",
        "imap..example.org",
        "-imap.example.org",
        "imap-.example.org",
        "imap example.org",
        "imap.example.org/x",
        "imap.example.org:993",
        "a" * 64 + ".example.org",
        ("a" * 60 + ".") * 5 + "org",
        "imap.exa\x00mple.org",
    ],
)
def test_invalid_host_names_are_refused(host: str) -> None:
    with pytest.raises(MailSettingsRefused) as excinfo:
        check_host(host, "IMAP")
    assert "give the server's host name" in refusal(excinfo)


@pytest.mark.parametrize(
    "host", ["imap.example.org", "IMAP.Example.ORG.", "localhost", "mail1.example", "a-b.c_d.org"]
)
def test_host_names_pass(host: str) -> None:
    check_host(host, "IMAP")


# -- POP3 and Exchange -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("host", "port"),
    [
        ("mail.example.org", 110),
        ("mail.example.org", 995),
        ("pop.example.org", 993),
        ("POP3.example.org", 993),
        ("pop3s.example.org", 993),
    ],
)
def test_pop3_is_refused(host: str, port: int) -> None:
    with pytest.raises(MailSettingsRefused) as excinfo:
        check_not_pop3_or_exchange(Endpoint(host, port, Security.SSL), "IMAP")
    assert refusal(excinfo).endswith("crmmail connects over IMAP only; POP3 is not supported")


@pytest.mark.parametrize(
    ("host", "port"),
    [
        ("outlook.office365.com", 443),
        ("mail.example.org", 80),
        ("mail.example.org", 135),
        ("mapi.example.org", 993),
        ("ews.example.org", 993),
        ("owa.example.org", 993),
        ("autodiscover.example.org", 993),
    ],
)
def test_exchange_is_refused(host: str, port: int) -> None:
    with pytest.raises(MailSettingsRefused) as excinfo:
        check_not_pop3_or_exchange(Endpoint(host, port, Security.SSL), "IMAP")
    assert "is Exchange (EWS/MAPI); crmmail connects over IMAP and SMTP only" in refusal(excinfo)


@pytest.mark.parametrize(
    ("host", "port"),
    [
        ("outlook.office365.com", 993),
        ("imap.example.org", 143),
        ("smtp.office365.com", 587),
        ("smtp.example.org", 465),
        ("popular.example.org", 993),  # only the whole first label counts
    ],
)
def test_imap_and_smtp_ports_pass(host: str, port: int) -> None:
    check_not_pop3_or_exchange(Endpoint(host, port, Security.SSL), "IMAP")


# -- where the names resolve -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("127.0.0.1", "loopback"),
        ("127.8.9.10", "loopback"),
        ("::1", "loopback"),
        ("::ffff:127.0.0.1", "loopback"),
        ("10.1.2.3", "private"),
        ("172.16.0.1", "private"),
        ("192.168.1.1", "private"),
        ("fc00::1", "private"),
        ("fd12:3456::1", "private"),
        ("::ffff:10.0.0.1", "private"),
        ("169.254.1.1", "link-local"),
        ("fe80::1", "link-local"),
        ("169.254.169.254", "cloud metadata"),
        ("fd00:ec2::254", "cloud metadata"),
        ("::ffff:169.254.169.254", "cloud metadata"),
        ("100.64.0.1", "carrier-grade NAT"),
        ("100.127.255.254", "carrier-grade NAT"),
        ("0.0.0.0", "unspecified"),
        ("::", "unspecified"),
        ("224.0.0.1", "multicast"),
        ("ff02::1", "multicast"),
        ("240.0.0.1", "reserved"),
        ("255.255.255.255", "reserved"),
    ],
)
def test_non_public_addresses_are_classified(address: str, reason: str) -> None:
    assert non_public_reason(ipaddress.ip_address(address)) == reason


@pytest.mark.parametrize(
    "address", ["8.8.8.8", "93.184.215.14", "100.128.0.1", "2606:4700:4700::1111", "::ffff:1.1.1.1"]
)
def test_public_addresses_pass(address: str) -> None:
    assert non_public_reason(ipaddress.ip_address(address)) is None


def test_a_host_resolving_to_loopback_is_refused() -> None:
    with pytest.raises(MailSettingsRefused) as excinfo:
        check_resolves_public("localhost", 993, allow_private=False, what="IMAP")
    message = refusal(excinfo)
    assert message.startswith("IMAP host localhost resolves to ")
    assert "a loopback address; set CRMMAIL_ALLOW_PRIVATE_MAIL_HOSTS" in message


def test_a_host_resolving_to_loopback_passes_when_private_hosts_are_allowed() -> None:
    check_resolves_public("localhost", 993, allow_private=True, what="IMAP")


@pytest.mark.parametrize("allow_private", [False, True])
def test_a_host_that_does_not_resolve_is_refused(allow_private: bool) -> None:
    with pytest.raises(MailSettingsRefused) as excinfo:
        check_resolves_public("imap.nowhere.invalid", 993, allow_private, what="IMAP")
    assert refusal(excinfo) == (
        "IMAP host imap.nowhere.invalid does not resolve; check the host name"
    )


# -- both endpoints together -----------------------------------------------------------------


def test_local_servers_pass_when_private_hosts_are_allowed() -> None:
    server = ServerSettings(LOCAL_IMAP, LOCAL_SMTP, "given")
    check_server_settings(server, allow_private=True)


def test_local_servers_are_refused_otherwise() -> None:
    server = ServerSettings(LOCAL_IMAP, LOCAL_SMTP, "given")
    with pytest.raises(MailSettingsRefused, match=r"^IMAP host localhost resolves to"):
        check_server_settings(server, allow_private=False)


def test_the_smtp_endpoint_is_checked_too() -> None:
    server = ServerSettings(LOCAL_IMAP, Endpoint("10.0.0.1", 587, Security.SSL), "given")
    with pytest.raises(MailSettingsRefused) as excinfo:
        check_server_settings(server, allow_private=True)
    assert refusal(excinfo) == "SMTP host 10.0.0.1 is an IP address; give the server's host name"


def test_names_are_checked_before_anything_is_resolved() -> None:
    server = ServerSettings(LOCAL_IMAP, Endpoint("10.0.0.1", 587, Security.SSL), "given")
    with pytest.raises(MailSettingsRefused, match=r"^SMTP host 10\.0\.0\.1 is an IP address"):
        check_server_settings(server, allow_private=False)


@pytest.mark.parametrize(
    ("imap", "smtp", "expected"),
    [
        (Endpoint("[::1]", 993, Security.SSL), LOCAL_SMTP, "IMAP host [::1] is an IP address"),
        (Endpoint("imap.xn--bcher-kva.example", 993, Security.SSL), LOCAL_SMTP, "(IDN)"),
        (Endpoint("pop.example.org", 995, Security.SSL), LOCAL_SMTP, "POP3 is not supported"),
        (Endpoint("outlook.office365.com", 443, Security.SSL), LOCAL_SMTP, "Exchange"),
        (LOCAL_IMAP, Endpoint("localhost", 0, Security.SSL), "SMTP port 0 is not a TCP port"),
        (LOCAL_IMAP, Endpoint("smtp.nowhere.invalid", 587, Security.SSL), "does not resolve"),
    ],
)
def test_every_refusal_applies_to_server_settings(
    imap: Endpoint, smtp: Endpoint, expected: str
) -> None:
    with pytest.raises(MailSettingsRefused) as excinfo:
        check_server_settings(ServerSettings(imap, smtp, "given"), allow_private=True)
    assert expected in refusal(excinfo)
