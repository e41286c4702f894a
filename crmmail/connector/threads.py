"""Decide which thread of its mailbox a message belongs to: pure rules, no storage.

A thread groups the messages of one mailbox that share the *counterpart* (the sender of a
received message; the first external recipient of a sent one) and the *normalised subject*
(reply and forward prefixes removed, whitespace folded, case-folded). ``thread_key`` turns the
pair into a fixed-length key that the caller stores as the unique key of a thread within one
mailbox; keys from different mailboxes are never compared. When a mailbox's "Group messages into
threads" setting is off, the caller gives every message a thread of its own and does not call
``thread_key`` at all.

The prefix rules live in ``crmmail.mail.subjects``, shared with the names of leads.

>>> normalized_subject("Re: RE[2]: Fwd:  AW: Quote  for  you ")
'quote for you'
>>> thread_key("a@x.test", "Quote") == thread_key("A@X.test", "RE: quote")
True
>>> counterpart(True, "me@our.test", ["me@our.test", "Bob@Y.test"], {"me@our.test"})
'bob@y.test'
"""

import hashlib
from collections.abc import Collection, Sequence

from crmmail.mail.subjects import REPLY_FORWARD_PREFIXES, normalized_subject

__all__ = ["REPLY_FORWARD_PREFIXES", "counterpart", "normalized_subject", "thread_key"]


def counterpart(
    is_sent: bool, sender: str, recipients: Sequence[str], own_addresses: Collection[str]
) -> str:
    """The address on the other side of the conversation, lower-cased.

    Received: the sender. Sent by our mailbox: the first recipient (To then Cc, in the order
    given) that is not one of ``own_addresses`` (the mailbox's own address and the account's
    users); if all are ours, the first recipient; with no recipients, ``""``.

    >>> counterpart(False, "A@X.test", ["me@our.test"], {"me@our.test"})
    'a@x.test'
    >>> counterpart(True, "me@our.test", ["Me@Our.test", "Ann@our.test"], ["me@our.test"])
    'ann@our.test'
    >>> counterpart(True, "me@our.test", ["Me@Our.test"], ["me@our.test"])
    'me@our.test'
    >>> counterpart(True, "me@our.test", [], ["me@our.test"])
    ''
    """
    if not is_sent:
        return sender.lower()
    addresses = [address.lower() for address in recipients if address]
    ours = {address.lower() for address in own_addresses}
    external = (address for address in addresses if address not in ours)
    return next(external, addresses[0] if addresses else "")


def thread_key(counterpart: str, subject: str) -> str:
    """The unique key of a thread within one mailbox: the SHA-256 hex digest (64 characters) of
    the lower-cased counterpart and the normalised subject, joined by NUL.

    >>> len(thread_key("a@x.test", "Re: Quote"))
    64
    >>> thread_key("a@x.test", "Quote") == thread_key("b@y.test", "Quote")
    False
    """
    material = f"{counterpart.lower()}\0{normalized_subject(subject)}"
    return hashlib.sha256(material.encode("utf-8", "surrogatepass")).hexdigest()
