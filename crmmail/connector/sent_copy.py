"""Make sure exactly one copy of a message we sent is in the box's Sent folder.

Providers such as Gmail and Microsoft 365 file their own copy of mail submitted through them;
others do not. So we look for our Message-ID first and APPEND (flagged ``\\Seen``) only when it
is missing. The sync finishes the job for a send whose check could not run (box busy, network).
"""

from datetime import datetime
from enum import StrEnum

from crmmail.connector.imap import ImapSession


class SentCopy(StrEnum):
    """What the check found."""

    FOUND = "found"  # the provider filed it
    APPENDED = "appended"  # we filed it
    PENDING = "pending"  # not checked yet; the next sync will


def ensure_sent_copy(
    imap: ImapSession, folder: str, message_id: str, raw: bytes, when: datetime
) -> SentCopy:
    imap.examine(folder)
    if imap.uids_with_message_id(f"<{message_id}>"):
        return SentCopy.FOUND
    imap.append(folder, raw, when)
    return SentCopy.APPENDED
