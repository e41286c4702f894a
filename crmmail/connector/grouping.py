"""Put an email into its thread: by counterpart and normalised subject, or alone when its box
does not group messages (the rules themselves are in ``threads.py``)."""

from collections.abc import Sequence

from sqlalchemy.orm import Session

from crmmail.connector.threads import counterpart, normalized_subject, thread_key
from crmmail.mail.message import ParsedMessage
from crmmail.storage.models import Email, FolderRole, Mailbox
from crmmail.storage.repositories.threads import NewThread, ThreadRepository


def counterpart_of(mailbox: Mailbox, users: set[str], folder: str, message: ParsedMessage) -> str:
    """The other party: the sender of received mail, the first outside recipient of sent mail
    (not the box itself nor one of the account's ``users``)."""
    own = users | {mailbox.email}
    sender = message.from_[0].address if message.from_ else ""
    recipients = [m.address for m in (*message.to, *message.cc)]
    return counterpart(folder == FolderRole.SENT.value, sender, recipients, own)


def place_in_thread(session: Session, mailbox: Mailbox, email: Email) -> None:
    """Give ``email`` its thread (``counterpart``, ``subject`` and ``message_key`` must be set;
    the email itself need not be stored yet)."""
    wanted = _thread_of(mailbox, email)
    thread = ThreadRepository(session).find_or_start(
        mailbox.id, wanted.key, wanted.counterpart, wanted.subject
    )
    email.thread_id = thread.id


def place_in_threads(session: Session, mailbox: Mailbox, emails: Sequence[Email]) -> None:
    """``place_in_thread`` for many emails of one box: one lookup, one insert of new threads."""
    wanted = [_thread_of(mailbox, email) for email in emails]
    threads = ThreadRepository(session).find_or_start_many(mailbox.id, wanted)
    for email, thread in zip(emails, wanted, strict=True):
        email.thread_id = threads[thread.key]


def _thread_of(mailbox: Mailbox, email: Email) -> NewThread:
    subject = normalized_subject(email.subject)
    if mailbox.threads:
        key = thread_key(email.counterpart, email.subject)
    else:  # a thread of its own (the same message in Inbox and Sent shares it)
        key = f"single:{email.message_key}"
    return NewThread(key, email.counterpart, email.subject.strip() or subject)
