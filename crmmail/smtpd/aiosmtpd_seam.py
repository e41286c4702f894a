"""The one place crmmail reaches past aiosmtpd's documented API; each seam is guarded by a test.

Everything else in the intake uses what aiosmtpd documents: the constructor arguments, the
handler hooks (``handle_PROXY``, ``handle_RCPT``, ``handle_DATA``, ``handle_exception``), the
``smtp_<COMMAND>`` methods a subclass may override, ``push``, the ``session``, ``envelope``,
``transport`` and ``loop`` attributes and the asyncio protocol methods. Two things have no
public form:

``SMTP._reader``, the session's ``asyncio.StreamReader``
    ``crmmail.smtpd.data`` reads a message into one buffer (half the memory of aiosmtpd 1.4's
    own ``smtp_DATA`` at the final dot, see that module). aiosmtpd offers no way to read the
    DATA phase but its own method, and the bytes of a message may already sit in this reader
    when ``DATA`` is dispatched (a client that does not wait for ``354``), so the intake must
    read from it, not from a stream of its own.

aiosmtpd's words around DATA
    Standing in for aiosmtpd's ``smtp_DATA``, the intake says what it would: ``354``, and
    ``500`` / ``552`` for a message with an overlong line or over the size limit. (The
    ``503`` and ``501`` before a message are left to aiosmtpd itself.) The texts are aiosmtpd's
    and listed in its ``aiosmtpd.testing.statuscodes``, which is not imported here: it looks up
    the host's FQDN when imported.

``pyproject.toml`` pins aiosmtpd to the minor range these seams were checked against
(``>=1.4.6,<1.5``); ``tests/smtpd/test_aiosmtpd_seam.py`` fails, naming the seam, when the
installed aiosmtpd no longer has one, and ``tests/smtpd/test_aiosmtpd_private_names.py`` that no
other module of crmmail touches a private name of aiosmtpd's.
"""

import asyncio

from aiosmtpd.smtp import SMTP

# The range of aiosmtpd releases the seams below were checked against (also in pyproject.toml).
TESTED_RANGE = ">=1.4.6,<1.5"

# aiosmtpd's own replies of its smtp_DATA, word for word (aiosmtpd.testing.statuscodes:
# S354_DATA_ENDWITH, S500_DATALINE_TOO_LONG, S552_DATA_TOO_MUCH).
START_DATA = "354 End data with <CR><LF>.<CR><LF>"
DATA_LINE_TOO_LONG = "500 Line too long (see RFC5321 4.5.3.1.6)"
DATA_TOO_MUCH = "552 Error: Too much mail data"

READER_SEAM = "SMTP._reader"


class SeamMissing(RuntimeError):
    """The installed aiosmtpd no longer has a private seam crmmail relies on."""

    def __init__(self, seam: str, what: str) -> None:
        super().__init__(
            f"aiosmtpd seam {seam} ({what}) is missing: crmmail is tested with "
            f"aiosmtpd {TESTED_RANGE}; see crmmail/smtpd/aiosmtpd_seam.py"
        )
        self.seam = seam


def session_reader(protocol: SMTP) -> asyncio.StreamReader:
    """The stream a connected session reads its client's bytes from (``SMTP._reader``)."""
    reader = getattr(protocol, "_reader", None)
    if not isinstance(reader, asyncio.StreamReader):
        raise SeamMissing(READER_SEAM, "the connected session's asyncio.StreamReader")
    return reader
