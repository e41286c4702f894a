"""The server TLS context for STARTTLS, from ``CRMMAIL_TLS_CERT_FILE`` and ``CRMMAIL_TLS_KEY_FILE``.

STARTTLS is offered, never required: an MX must take mail from senders without TLS. Clients
are not asked for certificates, and nothing older than TLS 1.2 is spoken. A certificate or key
that is missing, unreadable, not PEM or not a pair is one clear error at start-up.
"""

import ssl
from pathlib import Path

from crmmail.config import Settings
from crmmail.errors import CrmmailError


def server_tls_context(settings: Settings) -> ssl.SSLContext | None:
    """The context presenting the configured certificate, or ``None`` when TLS is not set up."""
    cert_file, key_file = settings.tls_cert_file, settings.tls_key_file
    if cert_file is None and key_file is None:
        return None
    if cert_file is None or key_file is None:
        raise CrmmailError(
            "CRMMAIL_TLS_CERT_FILE and CRMMAIL_TLS_KEY_FILE must be set together (or neither)"
        )
    for kind, path in (("certificate", cert_file), ("key", key_file)):
        _check_readable(kind, path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(cert_file, key_file)
    except ssl.SSLError as error:
        why = error.reason or error.__class__.__name__
        raise CrmmailError(
            f"TLS certificate {cert_file} and key {key_file} cannot be used together ({why}): "
            "both must be PEM, the key that of the certificate"
        ) from None
    return context


def _check_readable(kind: str, path: Path) -> None:
    try:
        with path.open("rb") as file:
            file.read(1)
    except OSError as error:
        raise CrmmailError(
            f"cannot read the TLS {kind} {path}: {error.strerror or error}"
        ) from None
