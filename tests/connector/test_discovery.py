"""Provider discovery against a real DNS server and a real HTTP server, both on loopback."""

import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from crmmail.config import Settings
from crmmail.connector.discovery import discover
from crmmail.connector.endpoints import Endpoint, Security, ServerSettings
from crmmail.connector.errors import DiscoveryFailed, MailSettingsRefused
from crmmail.connector.providers import (
    GOOGLE,
    ICLOUD,
    MICROSOFT_365,
    YAHOO,
    base_domain,
    provider_for_domain,
)
from crmmail.errors import UserInputError
from tests.dnsstub import DnsStub, Records, running_dns
from tests.httpstub import HttpStub, Reply, running_http

DOMAIN = "example.test"
EMAIL = f"ana@{DOMAIN}"
CONFIG_PATH = f"/{DOMAIN}/config-v1.1.xml"
SRV_RECORDS: Records = {
    (f"_imaps._tcp.{DOMAIN}", "SRV"): ["0 1 993 imap.srv.example.test."],
    (f"_submission._tcp.{DOMAIN}", "SRV"): ["0 1 587 smtp.srv.example.test."],
}
GOOGLE_MX: Records = {(DOMAIN, "MX"): ["1 aspmx.l.google.com.", "5 alt1.aspmx.l.google.com."]}


def client_config(incoming: str, outgoing: str = "") -> bytes:
    """A Thunderbird clientConfig file with these server elements."""
    outgoing = outgoing or server("smtp", "smtp.example.test", 465, "SSL")
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<clientConfig version="1.1"><emailProvider id="example.test">'
        f"<domain>{DOMAIN}</domain>{incoming}{outgoing}</emailProvider></clientConfig>"
    ).encode()


def server(kind: str, host: str, port: int, socket_type: str) -> str:
    element = "outgoingServer" if kind == "smtp" else "incomingServer"
    return (
        f'<{element} type="{kind}"><hostname>{host}</hostname><port>{port}</port>'
        f"<socketType>{socket_type}</socketType><username>%EMAILADDRESS%</username></{element}>"
    )


IMAP_SSL = server("imap", "imap.example.test", 993, "SSL")
IMAP_STARTTLS = server("imap", "imap-tls.example.test", 143, "STARTTLS")
AUTOCONFIG = client_config(IMAP_STARTTLS + IMAP_SSL)


@dataclass
class World:
    """The DNS and HTTP servers one test discovers against, and settings pointing at them."""

    dns: DnsStub
    http: HttpStub
    settings: Settings


@pytest.fixture
def world(request: pytest.FixtureRequest) -> Iterator[World]:
    """Servers with the records and routes the test gives with ``@pytest.mark.parametrize``."""
    records, routes = getattr(request, "param", ({}, {}))
    with running_dns(records) as dns, running_http(routes) as http:
        settings = settings_for(dns, http)
        yield World(dns, http, settings)


def settings_for(
    dns: DnsStub,
    http: HttpStub,
    *,
    autoconfig_urls: tuple[str, ...] | None = None,
    allow_private: bool = True,
) -> Settings:
    """Settings that ask the stubs: DNS at ``dns``, autoconfig files from ``http``."""
    default_url = f"{http.base_url}/{{domain}}/config-v1.1.xml?emailaddress={{email}}"
    return Settings(
        autoconfig_urls=autoconfig_urls or (default_url,),
        allow_private_mail_hosts=allow_private,
        dns_servers=(dns.address,),
        mail_timeout=2.0,
    )


def with_servers(records: Records, routes: dict[str, Reply] | None = None) -> pytest.MarkDecorator:
    """Parametrize the ``world`` fixture with these DNS records and HTTP routes."""
    return pytest.mark.parametrize("world", [(records, routes or {})], indirect=True)


# -- the bundled provider table --------------------------------------------------------------


@pytest.mark.parametrize(
    ("email", "imap_host", "smtp"),
    [
        ("ana@gmail.com", "imap.gmail.com", Endpoint("smtp.gmail.com", 465, Security.SSL)),
        ("ana@GoogleMail.com", "imap.gmail.com", Endpoint("smtp.gmail.com", 465, Security.SSL)),
        (
            "ana@hotmail.co.uk",
            "outlook.office365.com",
            Endpoint("smtp.office365.com", 587, Security.STARTTLS),
        ),
        ("ana@outlook.com", "outlook.office365.com", MICROSOFT_365.smtp),
        ("ana@live.com", "outlook.office365.com", MICROSOFT_365.smtp),
        ("ana@msn.com", "outlook.office365.com", MICROSOFT_365.smtp),
        ("ana@yahoo.com", "imap.mail.yahoo.com", YAHOO.smtp),
        ("ana@me.com", "imap.mail.me.com", ICLOUD.smtp),
        ("ana@mac.com", "imap.mail.me.com", ICLOUD.smtp),
        ("ana@gmx.de", "imap.gmx.net", Endpoint("mail.gmx.net", 465, Security.SSL)),
        ("ana@web.de", "imap.web.de", Endpoint("smtp.web.de", 587, Security.STARTTLS)),
        ("ana@yandex.ru", "imap.yandex.com", Endpoint("smtp.yandex.com", 465, Security.SSL)),
        ("ana@fastmail.com", "imap.fastmail.com", Endpoint("smtp.fastmail.com", 465, Security.SSL)),
    ],
)
def test_big_providers_come_from_the_bundled_table_without_any_lookup(
    world: World, email: str, imap_host: str, smtp: Endpoint
) -> None:
    found = discover(email, world.settings)
    assert found.source == "provider"
    assert found.imap == Endpoint(imap_host, 993, Security.SSL)
    assert found.smtp == smtp
    assert world.dns.queries == []
    assert world.http.requests == []


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("aspmx.l.google.com.", "google.com"),
        ("acme-com.mail.protection.outlook.com", "outlook.com"),
        ("mta7.am0.yahoodns.net", "yahoodns.net"),
        ("mx1.example.co.uk", "example.co.uk"),
        ("mx.example.com.au", "example.com.au"),
        ("Example.ORG", "example.org"),
    ],
)
def test_base_domain(host: str, expected: str) -> None:
    assert base_domain(host) == expected


def test_the_table_knows_only_whole_domains() -> None:
    assert provider_for_domain("gmail.com.") is GOOGLE
    assert provider_for_domain("mail.gmail.com") is None
    assert provider_for_domain("notgmail.com") is None


# -- MX --------------------------------------------------------------------------------------


@with_servers(GOOGLE_MX)
def test_an_mx_at_google_means_google_workspace(world: World) -> None:
    assert discover(EMAIL, world.settings) == GOOGLE.server_settings("mx")
    assert world.dns.queries == [(DOMAIN, "MX")]


@with_servers({(DOMAIN, "MX"): ["0 example-test.mail.protection.outlook.com."]})
def test_an_mx_at_outlook_means_microsoft_365(world: World) -> None:
    found = discover(EMAIL, world.settings)
    assert found == ServerSettings(MICROSOFT_365.imap, MICROSOFT_365.smtp, "mx")


@with_servers(
    {(DOMAIN, "MX"): ["20 aspmx.l.google.com.", "10 example-test.mail.protection.outlook.com."]}
)
def test_the_lowest_preference_mx_decides(world: World) -> None:
    assert discover(EMAIL, world.settings).imap == MICROSOFT_365.imap


@with_servers({(DOMAIN, "MX"): ["10 mx.example.test."], **SRV_RECORDS})
def test_an_unknown_mx_moves_on(world: World) -> None:
    assert discover(EMAIL, world.settings).source == "srv"


# -- autoconfig ------------------------------------------------------------------------------


@with_servers({}, {CONFIG_PATH: Reply(200, AUTOCONFIG)})
def test_the_autoconfig_file_gives_the_servers(world: World) -> None:
    found = discover(EMAIL, world.settings)
    assert found == ServerSettings(
        imap=Endpoint("imap.example.test", 993, Security.SSL),  # SSL preferred to STARTTLS
        smtp=Endpoint("smtp.example.test", 465, Security.SSL),
        source="autoconfig",
    )
    assert world.http.requests == [f"{CONFIG_PATH}?emailaddress=ana%40example.test"]


@with_servers({}, {CONFIG_PATH: Reply(200, client_config(IMAP_STARTTLS))})
def test_autoconfig_starttls_is_taken_when_there_is_no_ssl(world: World) -> None:
    assert discover(EMAIL, world.settings).imap == Endpoint(
        "imap-tls.example.test", 143, Security.STARTTLS
    )


@with_servers({}, {CONFIG_PATH: Reply(200, AUTOCONFIG)})
def test_a_failing_autoconfig_url_moves_on_to_the_next(world: World) -> None:
    settings = settings_for(
        world.dns,
        world.http,
        autoconfig_urls=(
            f"{world.http.base_url}/missing/{{domain}}",
            "http://127.0.0.1:1/{domain}",  # nothing listens on port 1
            f"{world.http.base_url}/{{domain}}/config-v1.1.xml?emailaddress={{email}}",
        ),
    )
    assert discover(EMAIL, settings).source == "autoconfig"
    assert world.http.requests[0] == f"/missing/{DOMAIN}"


@with_servers(
    {},
    {
        "/moved": Reply(302, headers={"Location": CONFIG_PATH}),
        CONFIG_PATH: Reply(200, AUTOCONFIG),
    },
)
def test_autoconfig_follows_a_redirect(world: World) -> None:
    settings = settings_for(
        world.dns, world.http, autoconfig_urls=(f"{world.http.base_url}/moved",)
    )
    assert discover(EMAIL, settings).source == "autoconfig"
    assert world.http.requests == ["/moved", CONFIG_PATH]


@pytest.mark.parametrize(
    "reply",
    [
        Reply(302, headers={"Location": "file:///etc/passwd"}),
        Reply(302, headers={"Location": "ftp://127.0.0.1/config.xml"}),
        Reply(500, b"oops"),
        Reply(200, b"not xml at all <"),
        Reply(
            200,
            AUTOCONFIG.replace(b"<clientConfig", b'<!DOCTYPE c [<!ENTITY a "b">]><clientConfig'),
        ),
        Reply(200, AUTOCONFIG + b"<!--" + b"x" * 100 * 1024 + b"-->"),  # over the size cap
        Reply(200, client_config(server("imap", "imap.example.test", 143, "plain"))),
        Reply(200, client_config(IMAP_SSL, server("smtp", "smtp.example.test", 25, "plain"))),
    ],
    ids=["file", "ftp", "500", "not-xml", "dtd", "too-big", "plain-imap", "plain-smtp"],
)
def test_an_unusable_autoconfig_moves_on_to_srv(reply: Reply) -> None:
    with running_dns(SRV_RECORDS) as dns, running_http({CONFIG_PATH: reply}) as http:
        found = discover(EMAIL, settings_for(dns, http))
        assert http.requests  # it was asked, and its answer not taken
    assert found.source == "srv"


def test_an_autoconfig_url_on_a_private_address_is_not_fetched() -> None:
    with running_dns({}) as dns, running_http({CONFIG_PATH: Reply(200, AUTOCONFIG)}) as http:
        settings = settings_for(dns, http, allow_private=False)
        with pytest.raises(DiscoveryFailed):
            discover(EMAIL, settings)
        assert http.requests == []


@pytest.mark.parametrize(
    "incoming",
    [
        server("pop3", "pop.example.test", 995, "SSL"),
        server("exchange", "outlook.example.test", 443, "SSL"),
        server("pop3", "pop.example.test", 995, "SSL") + server("exchange", "ex.test", 443, "SSL"),
    ],
)
def test_an_autoconfig_offering_only_pop3_or_exchange_is_refused(incoming: str) -> None:
    reply = Reply(200, client_config(incoming))
    with (
        running_dns(SRV_RECORDS) as dns,
        running_http({CONFIG_PATH: reply}) as http,
        pytest.raises(MailSettingsRefused) as excinfo,
    ):
        discover(EMAIL, settings_for(dns, http))
    assert str(excinfo.value) == "example.test offers only POP3/Exchange; crmmail needs IMAP"


@pytest.mark.parametrize(
    ("incoming", "outgoing", "expected"),
    [
        (server("imap", "10.0.0.1", 993, "SSL"), "", "IMAP host 10.0.0.1 is an IP address"),
        (server("imap", "[::1]", 993, "SSL"), "", "IMAP host [::1] is an IP address"),
        (
            IMAP_SSL,
            server("smtp", "192.168.0.1", 587, "STARTTLS"),
            "SMTP host 192.168.0.1 is an IP address",
        ),
        (server("imap", "imap.xn--bcher-kva.test", 993, "SSL"), "", "(IDN)"),
        (server("imap", "pop.example.test", 993, "SSL"), "", "POP3 is not supported"),
    ],
)
def test_autoconfig_hosts_get_the_same_checks_as_given_ones(
    incoming: str, outgoing: str, expected: str
) -> None:
    reply = Reply(200, client_config(incoming, outgoing))
    with (
        running_dns({}) as dns,
        running_http({CONFIG_PATH: reply}) as http,
        pytest.raises(MailSettingsRefused) as excinfo,
    ):
        discover(EMAIL, settings_for(dns, http))
    assert expected in str(excinfo.value)


# -- SRV (RFC 6186) --------------------------------------------------------------------------


@with_servers(SRV_RECORDS)
def test_srv_records_give_the_servers(world: World) -> None:
    assert discover(EMAIL, world.settings) == ServerSettings(
        imap=Endpoint("imap.srv.example.test", 993, Security.SSL),
        smtp=Endpoint("smtp.srv.example.test", 587, Security.STARTTLS),
        source="srv",
    )


@with_servers(
    {
        (f"_imaps._tcp.{DOMAIN}", "SRV"): ["0 0 0 ."],  # explicitly not offered
        (f"_imap._tcp.{DOMAIN}", "SRV"): [
            "20 0 143 imap-backup.example.test.",
            "10 10 143 imap-light.example.test.",
            "10 60 143 imap-heavy.example.test.",
        ],
        (f"_submissions._tcp.{DOMAIN}", "SRV"): ["0 1 465 smtp.example.test."],
        (f"_submission._tcp.{DOMAIN}", "SRV"): ["0 1 587 smtp.example.test."],
    }
)
def test_srv_prefers_tls_then_priority_then_weight(world: World) -> None:
    found = discover(EMAIL, world.settings)
    assert found.imap == Endpoint("imap-heavy.example.test", 143, Security.STARTTLS)
    assert found.smtp == Endpoint("smtp.example.test", 465, Security.SSL)


@with_servers({(f"_imaps._tcp.{DOMAIN}", "SRV"): ["0 1 993 imap.example.test."]})
def test_srv_without_submission_is_not_enough(world: World) -> None:
    with pytest.raises(DiscoveryFailed):
        discover(EMAIL, world.settings)


@with_servers(
    {
        (f"_imaps._tcp.{DOMAIN}", "SRV"): ["0 1 993 10.0.0.1."],
        (f"_submissions._tcp.{DOMAIN}", "SRV"): ["0 1 465 smtp.example.test."],
    }
)
def test_srv_targets_that_are_ip_addresses_are_refused(world: World) -> None:
    with pytest.raises(MailSettingsRefused, match=r"^IMAP host 10\.0\.0\.1 is an IP address"):
        discover(EMAIL, world.settings)


@with_servers(
    {
        (f"_imaps._tcp.{DOMAIN}", "SRV"): ["0 1 995 pop.example.test."],
        (f"_submissions._tcp.{DOMAIN}", "SRV"): ["0 1 465 smtp.example.test."],
    }
)
def test_srv_targets_that_are_pop3_are_refused(world: World) -> None:
    with pytest.raises(MailSettingsRefused, match="POP3 is not supported"):
        discover(EMAIL, world.settings)


# -- the order of the methods ----------------------------------------------------------------


@with_servers(
    {("gmail.com", "MX"): ["0 gmail-com.mail.protection.outlook.com."]},
    {"/gmail.com/config-v1.1.xml": Reply(200, AUTOCONFIG)},
)
def test_the_provider_table_beats_mx(world: World) -> None:
    assert discover("ana@gmail.com", world.settings) == GOOGLE.server_settings("provider")


@with_servers({**GOOGLE_MX, **SRV_RECORDS}, {CONFIG_PATH: Reply(200, AUTOCONFIG)})
def test_mx_beats_autoconfig_and_srv(world: World) -> None:
    assert discover(EMAIL, world.settings).source == "mx"
    assert world.http.requests == []


@with_servers(SRV_RECORDS, {CONFIG_PATH: Reply(200, AUTOCONFIG)})
def test_autoconfig_beats_srv(world: World) -> None:
    assert discover(EMAIL, world.settings).source == "autoconfig"
    assert world.dns.queries == [(DOMAIN, "MX")]


@with_servers({})
def test_nothing_found_asks_for_the_hosts(world: World) -> None:
    with pytest.raises(DiscoveryFailed) as excinfo:
        discover(EMAIL, world.settings)
    assert str(excinfo.value) == (
        "no IMAP settings found for example.test: give --imap-host and --smtp-host"
    )
    assert world.http.requests == [f"{CONFIG_PATH}?emailaddress=ana%40example.test"]
    assert world.dns.queries == [
        (DOMAIN, "MX"),
        (f"_imaps._tcp.{DOMAIN}", "SRV"),
        (f"_imap._tcp.{DOMAIN}", "SRV"),
    ]


# -- refused before any lookup ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("email", "expected"),
    [
        ("acme@mail.localhost", "acme@mail.localhost is a crmmail smart address"),
        ("ana@bücher.example", "(IDN)"),
        ("ana@xn--bcher-kva.example", "(IDN)"),
        ("ana@[127.0.0.1]", "no valid domain name"),
    ],
)
def test_refused_addresses_make_no_lookup(world: World, email: str, expected: str) -> None:
    with pytest.raises(MailSettingsRefused) as excinfo:
        discover(email, world.settings)
    assert expected in str(excinfo.value)
    assert world.dns.queries == []
    assert world.http.requests == []


# -- DNS settings ----------------------------------------------------------------------------


def test_a_silent_dns_server_times_out_quickly() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:
        silent.bind(("127.0.0.1", 0))
        port = silent.getsockname()[1]
        settings = Settings(
            dns_servers=(f"127.0.0.1:{port}",), autoconfig_urls=(), mail_timeout=0.3
        )
        started = time.monotonic()
        with pytest.raises(DiscoveryFailed):
            discover(EMAIL, settings)
    assert time.monotonic() - started < 5


def test_a_bad_dns_server_setting_is_a_user_error() -> None:
    settings = Settings(dns_servers=("ns.example.test",), autoconfig_urls=())
    with pytest.raises(UserInputError, match="is not ip or ip:port"):
        discover(EMAIL, settings)


def test_a_bad_autoconfig_url_template_is_a_user_error() -> None:
    with running_dns({}) as dns:
        settings = Settings(dns_servers=(dns.address,), autoconfig_urls=("http://{host}/x",))
        with pytest.raises(UserInputError, match="may use only"):
            discover(EMAIL, settings)
