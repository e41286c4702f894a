"""Where a mailbox's servers are: host, port and TLS mode for IMAP and for SMTP submission."""

from dataclasses import dataclass
from enum import StrEnum


class Security(StrEnum):
    """How the connection is protected; plain text is never offered."""

    SSL = "ssl"  # implicit TLS from the first byte (IMAP 993, SMTP 465)
    STARTTLS = "starttls"  # upgrade before authenticating (IMAP 143, SMTP 587)


@dataclass(frozen=True)
class Endpoint:
    """One server: host name (never an IP address), port and TLS mode."""

    host: str
    port: int
    security: Security


@dataclass(frozen=True)
class ServerSettings:
    """The IMAP and SMTP endpoints of a mailbox and where they were found."""

    imap: Endpoint
    smtp: Endpoint
    source: str  # "given", "provider", "mx", "autoconfig" or "srv"
