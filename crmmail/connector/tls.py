"""The TLS client context for mail servers: certificates always verified, an extra CA allowed."""

import ssl

from crmmail.config import Settings


def client_context(settings: Settings) -> ssl.SSLContext:
    """System trust plus ``CRMMAIL_TLS_CA_FILE``; host names checked; TLS 1.2 at least."""
    context = ssl.create_default_context()
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if settings.tls_ca_file is not None:
        context.load_verify_locations(cafile=str(settings.tls_ca_file))
    return context
