"""Make sure exactly one copy of a message we sent is in the box's Sent folder.

Providers such as Gmail and Microsoft 365 file their own copy of mail submitted through them
(some a few seconds later); others do not. So we look for our Message-ID for a short while
(``CRMMAIL_SENT_COPY_WAIT``) and APPEND (flagged ``\\Seen``) only when it is still missing.
The sync finishes the job for a send whose check could not run (box busy, network).
"""

import time
from datetime import datetime
from enum import StrEnum

from crmmail.connector.imap import ImapSession

POLL = 0.5  # seconds between two looks for the provider's copy


class SentCopy(StrEnum):
    """What the check found."""

    FOUND = "found"  # the provider filed it
    APPENDED = "appended"  # we filed it
    PENDING = "pending"  # not checked yet; the next sync will


def ensure_sent_copy(
    imap: ImapSession,
    folder: str,
    message_id: str,
    raw: bytes,
    when: datetime,
    wait: float = 0.0,
) -> SentCopy:
    """Look for the copy (again and again for up to ``wait`` seconds); APPEND it if missing."""
    deadline = time.monotonic() + wait
    while True:
        imap.examine(folder)  # a fresh EXAMINE sees what the provider filed meanwhile
        if imap.uids_with_message_id(f"<{message_id}>"):
            return SentCopy.FOUND
        if time.monotonic() >= deadline:
            break
        time.sleep(min(POLL, max(deadline - time.monotonic(), 0)))
    imap.append(folder, raw, when)
    return SentCopy.APPENDED
