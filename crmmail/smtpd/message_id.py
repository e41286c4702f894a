"""The Message-ID of a received message, read from its header block with a bounded scan.

The intake stores it on the spool row, so that ``inbound list`` names every message, also the
ones the worker has not finished (queued, processing) or gave up on (dead). No MIME parsing on
the SMTP hot path: only the first ``HEADER_SCAN_LIMIT`` bytes are looked at, up to the blank
line that ends the header block, for the first ``Message-ID`` field. Its value is read as the
worker's parser reads it (``crmmail.mail.message``): unfolded, its first word without the
angle brackets, at most ``MAX_MESSAGE_ID`` characters; the worker's value replaces it once the
message is processed.
"""

import re

from crmmail.storage.text import clean_text

HEADER_SCAN_LIMIT = 64 * 1024  # bytes; a Message-ID further down is left to the worker
MAX_MESSAGE_ID = 250  # characters, as the worker keeps
_END_OF_HEADERS = re.compile(rb"(?:^|\n)\r?\n")
_MESSAGE_ID_FIELD = re.compile(rb"^message-id:([^\n]*(?:\n[ \t][^\n]*)*)", re.I | re.M)
_CONTROL = re.compile("[\x00-\x1f\x7f]")


def message_id_of(raw: bytes) -> str | None:
    """The first Message-ID of the header block, or ``None`` when there is none.

    >>> message_id_of(b"From: a@x.test\\r\\nMessage-Id:\\r\\n  <abc@x.test> (note)\\r\\n\\r\\nbody")
    'abc@x.test'
    >>> message_id_of(b"Subject: hi\\r\\n\\r\\nMessage-ID: <in-the-body@x.test>\\r\\n") is None
    True
    >>> message_id_of(b"X-Message-ID: <not-this@x.test>\\r\\nMessage-ID:  \\r\\n") is None
    True
    >>> message_id_of(b"\\r\\nMessage-ID: <body-only@x.test>\\r\\n") is None
    True
    """
    head = raw[:HEADER_SCAN_LIMIT]
    end = _END_OF_HEADERS.search(head)
    if end is not None:
        head = head[: end.start()]
    field = _MESSAGE_ID_FIELD.search(head)
    if field is None:
        return None
    value = _CONTROL.sub(" ", clean_text(field.group(1).decode("utf-8", "replace"))).split()
    token = value[0].strip("<>") if value else ""
    return token[:MAX_MESSAGE_ID] or None
