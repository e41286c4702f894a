"""The connector's narrow error tree: what the user must fix, what to retry, what will not work."""

import ssl

from crmmail.errors import CrmmailError, UserInputError


class MailSettingsRefused(UserInputError):
    """Mailbox settings we will not use (IP hosts, IDN, POP3, private networks...); says why."""


class DiscoveryFailed(UserInputError):
    """No IMAP/SMTP settings could be found for an address; the user must give the hosts."""


class ConnectorError(CrmmailError):
    """Root of what talking to a mail server can end in."""


class AuthFailed(ConnectorError):
    """The server refused the credentials: tell the user and stop syncing until they change."""


class Transient(ConnectorError):
    """A failure that may pass (network, timeout, server busy): back off and try again."""


class Permanent(ConnectorError):
    """A failure that retrying will not fix (no IMAP4rev1, no such folder, certificate refused)."""


def transport_error(host: str, exc: OSError) -> ConnectorError:
    """What a socket or TLS failure talking to ``host`` means for the connector."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        return Permanent(f"the certificate of {host} could not be verified: {exc.verify_message}")
    if isinstance(exc, TimeoutError):
        return Transient(f"{host} did not answer in time")
    if isinstance(exc, ssl.SSLError):
        return Transient(f"TLS with {host} failed: {exc.reason or exc}")
    return Transient(f"cannot talk to {host}: {exc.strerror or exc}")
