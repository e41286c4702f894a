"""Start the SMTP listener: aiosmtpd's protocol with our handler, limits and hostname."""

import asyncio

from aiosmtpd.smtp import SMTP

from crmmail.config import Settings
from crmmail.smtpd.handler import IntakeHandler

# An MX takes no AUTH: never advertise aiosmtpd's built-in mechanisms.
NO_AUTH = ("LOGIN", "PLAIN")
# RFC 5321 allows 1000 octets a line, but careless senders (HTML without line breaks) send more;
# refusing them would bounce real mail, so lines are accepted up to this length.
MAX_LINE_LENGTH = 64 * 1024


class IntakeSMTP(SMTP):
    """aiosmtpd's SMTP protocol with a line limit that real-world mail fits in."""

    line_length_limit = MAX_LINE_LENGTH


async def start_smtp_server(
    handler: IntakeHandler, settings: Settings, host: str, port: int
) -> asyncio.Server:
    """Listen on ``host:port``; SIZE is advertised and enforced (``552``) by aiosmtpd."""
    loop = asyncio.get_running_loop()

    def protocol() -> SMTP:
        return IntakeSMTP(
            handler,
            data_size_limit=settings.max_message_size,
            enable_SMTPUTF8=True,
            hostname=settings.smtp_hostname,
            ident="crmmail ESMTP",
            timeout=settings.smtp_timeout,
            auth_exclude_mechanism=NO_AUTH,
            loop=loop,
        )

    return await loop.create_server(protocol, host=host, port=port)
