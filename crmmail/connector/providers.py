"""The bundled tables of big mail providers: by address domain and by the base domain of an MX host.

The first table answers "where are the servers of ``someone@gmail.com``?" without any network.
The second tells apart hosted domains by where their mail goes: a domain whose MX is
``aspmx.l.google.com`` is on Google Workspace, one whose MX is
``acme-com.mail.protection.outlook.com`` is on Microsoft 365. MX hosts are reduced with
:func:`base_domain` (the last two labels, or three under a known two-level public suffix) before
the look-up, so the tables list registrable domains only.

>>> provider_for_domain("GMail.com").imap
Endpoint(host='imap.gmail.com', port=993, security=<Security.SSL: 'ssl'>)
>>> provider_for_mx("acme-com.mail.protection.outlook.com.").name
'Microsoft 365'
>>> provider_for_mx("mx.example.org") is None
True
"""

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final

from crmmail.connector.endpoints import Endpoint, Security, ServerSettings

IMAPS_PORT: Final = 993
SUBMISSIONS_PORT: Final = 465  # SMTP submission over implicit TLS (RFC 8314)
SUBMISSION_PORT: Final = 587  # SMTP submission with STARTTLS


@dataclass(frozen=True)
class Provider:
    """A mail provider we know: its name and the IMAP and SMTP endpoints every box there uses."""

    name: str
    imap: Endpoint
    smtp: Endpoint

    def server_settings(self, source: str) -> ServerSettings:
        """This provider's endpoints, recorded as found by ``source`` ("provider" or "mx")."""
        return ServerSettings(imap=self.imap, smtp=self.smtp, source=source)


def _provider(name: str, imap_host: str, smtp_host: str, smtp_port: int) -> Provider:
    smtp_security = Security.SSL if smtp_port == SUBMISSIONS_PORT else Security.STARTTLS
    return Provider(
        name=name,
        imap=Endpoint(imap_host, IMAPS_PORT, Security.SSL),
        smtp=Endpoint(smtp_host, smtp_port, smtp_security),
    )


GOOGLE: Final = _provider("Google", "imap.gmail.com", "smtp.gmail.com", SUBMISSIONS_PORT)
MICROSOFT_365: Final = _provider(
    "Microsoft 365", "outlook.office365.com", "smtp.office365.com", SUBMISSION_PORT
)
YAHOO: Final = _provider("Yahoo", "imap.mail.yahoo.com", "smtp.mail.yahoo.com", SUBMISSIONS_PORT)
ICLOUD: Final = _provider("iCloud", "imap.mail.me.com", "smtp.mail.me.com", SUBMISSION_PORT)
AOL: Final = _provider("AOL", "imap.aol.com", "smtp.aol.com", SUBMISSIONS_PORT)
GMX_NET: Final = _provider("GMX", "imap.gmx.net", "mail.gmx.net", SUBMISSIONS_PORT)
GMX_COM: Final = _provider("GMX", "imap.gmx.com", "mail.gmx.com", SUBMISSIONS_PORT)
MAIL_COM: Final = _provider("mail.com", "imap.mail.com", "smtp.mail.com", SUBMISSION_PORT)
WEB_DE: Final = _provider("WEB.DE", "imap.web.de", "smtp.web.de", SUBMISSION_PORT)
T_ONLINE: Final = _provider(
    "Telekom", "secureimap.t-online.de", "securesmtp.t-online.de", SUBMISSIONS_PORT
)
YANDEX: Final = _provider("Yandex", "imap.yandex.com", "smtp.yandex.com", SUBMISSIONS_PORT)
MAIL_RU: Final = _provider("Mail.ru", "imap.mail.ru", "smtp.mail.ru", SUBMISSIONS_PORT)
FASTMAIL: Final = _provider("Fastmail", "imap.fastmail.com", "smtp.fastmail.com", SUBMISSIONS_PORT)
ZOHO: Final = _provider("Zoho", "imap.zoho.com", "smtp.zoho.com", SUBMISSIONS_PORT)
ZOHO_EU: Final = _provider("Zoho", "imap.zoho.eu", "smtp.zoho.eu", SUBMISSIONS_PORT)


def _table(groups: Mapping[Provider, tuple[str, ...]]) -> Mapping[str, Provider]:
    return MappingProxyType({domain: provider for provider, ds in groups.items() for domain in ds})


PROVIDERS_BY_DOMAIN: Final = _table(
    {
        GOOGLE: ("gmail.com", "googlemail.com"),
        MICROSOFT_365: (
            "outlook.com",
            "outlook.de",
            "outlook.fr",
            "hotmail.com",
            "hotmail.co.uk",
            "hotmail.de",
            "hotmail.es",
            "hotmail.fr",
            "hotmail.it",
            "live.com",
            "live.co.uk",
            "live.de",
            "live.fr",
            "msn.com",
        ),
        YAHOO: ("yahoo.com", "yahoo.co.uk", "yahoo.de", "yahoo.fr", "ymail.com", "rocketmail.com"),
        ICLOUD: ("icloud.com", "me.com", "mac.com"),
        AOL: ("aol.com", "aim.com"),
        GMX_NET: ("gmx.net", "gmx.de", "gmx.at", "gmx.ch"),
        GMX_COM: ("gmx.com",),
        MAIL_COM: ("mail.com",),
        WEB_DE: ("web.de",),
        T_ONLINE: ("t-online.de",),
        YANDEX: ("yandex.ru", "yandex.com", "ya.ru"),
        MAIL_RU: ("mail.ru", "inbox.ru", "list.ru", "bk.ru"),
        FASTMAIL: ("fastmail.com", "fastmail.fm"),
        ZOHO: ("zoho.com", "zohomail.com"),
    }
)
"""Address domain -> provider, for the providers whose users have addresses on the provider's
own domains."""

PROVIDERS_BY_MX: Final = _table(
    {
        GOOGLE: ("google.com", "googlemail.com"),  # aspmx.l.google.com, smtp.google.com
        MICROSOFT_365: ("outlook.com",),  # <tenant>.mail.protection.outlook.com
        YAHOO: ("yahoodns.net",),  # mta5.am0.yahoodns.net
        ICLOUD: ("icloud.com",),  # mx01.mail.icloud.com
        ZOHO: ("zoho.com",),  # mx.zoho.com
        ZOHO_EU: ("zoho.eu",),  # mx.zoho.eu
        FASTMAIL: ("messagingengine.com",),  # in1-smtp.messagingengine.com
        YANDEX: ("yandex.net", "yandex.ru"),  # mx.yandex.net
        MAIL_RU: ("mail.ru",),  # mxs.mail.ru
    }
)
"""Base domain of a domain's lowest-preference MX host -> the provider hosting its mailboxes."""

TWO_LEVEL_SUFFIXES: Final = frozenset(
    {
        "ac.uk",
        "co.uk",
        "gov.uk",
        "org.uk",
        "com.au",
        "net.au",
        "org.au",
        "co.nz",
        "co.jp",
        "ne.jp",
        "co.za",
        "co.in",
        "com.br",
        "com.cn",
        "com.mx",
        "com.tr",
    }
)
"""The few public suffixes of two labels that MX hosts of big providers can live under."""


def base_domain(host: str) -> str:
    """The registrable domain of a host name: its last two labels, three under a two-level suffix.

    Lower-cased, trailing dot dropped. No public-suffix list and no network: the tables only need
    the providers' own domains to come out right.

    >>> base_domain("acme-com.mail.protection.outlook.com.")
    'outlook.com'
    >>> base_domain("ASPMX.L.Google.com")
    'google.com'
    >>> base_domain("mx1.mail.example.co.uk")
    'example.co.uk'
    >>> base_domain("co.uk")
    'co.uk'
    >>> base_domain("localhost")
    'localhost'
    """
    labels = host.lower().rstrip(".").split(".")
    keep = 3 if ".".join(labels[-2:]) in TWO_LEVEL_SUFFIXES else 2
    return ".".join(labels[-keep:])


def provider_for_domain(domain: str) -> Provider | None:
    """The provider whose users have addresses on ``domain``, if it is one we bundle."""
    return PROVIDERS_BY_DOMAIN.get(domain.lower().rstrip("."))


def provider_for_mx(mx_host: str) -> Provider | None:
    """The provider hosting a domain whose MX is ``mx_host``, if we know the MX's base domain."""
    return PROVIDERS_BY_MX.get(base_domain(mx_host))
