"""Decide which thread of its mailbox a message belongs to: pure rules, no storage.

A thread groups the messages of one mailbox that share the *counterpart* (the sender of a
received message; the first external recipient of a sent one) and the *normalised subject*
(reply and forward prefixes removed, whitespace folded, case-folded). ``thread_key`` turns the
pair into a fixed-length key that the caller stores as the unique key of a thread within one
mailbox; keys from different mailboxes are never compared. When a mailbox's "Group messages into
threads" setting is off, the caller gives every message a thread of its own and does not call
``thread_key`` at all.

The prefixes removed are the reply/forward markers mail clients write, in English and in the
languages we meet most (``REPLY_FORWARD_PREFIXES``). Only a whole prefix directly followed by its
colon is removed, so ``Recap:`` or ``Trial:`` stay. ``Ref:`` is deliberately not a prefix: it is
an ordinary English subject word ("Ref: order 1234"), not something a client adds on reply.
Changing the list changes the keys of future messages only; stored threads keep their keys.

>>> normalized_subject("Re: RE[2]: Fwd:  AW: Quote  for  you ")
'quote for you'
>>> thread_key("a@x.test", "Quote") == thread_key("A@X.test", "RE: quote")
True
>>> counterpart(True, "me@our.test", ["me@our.test", "Bob@Y.test"], {"me@our.test"})
'bob@y.test'
"""

import hashlib
import re
from collections.abc import Collection, Sequence

REPLY_FORWARD_PREFIXES: tuple[str, ...] = (
    "re",  # reply, most languages
    "fw",  # forward (Outlook)
    "fwd",  # forward
    "aw",  # de: Antwort
    "wg",  # de: Weitergeleitet
    "sv",  # da, no, sv, is: svar
    "vs",  # da, no: videresendt; fi: vastaus
    "vb",  # sv: vidarebefordrat
    "vl",  # fi: välitetty
    "tr",  # fr: transféré
    "rif",  # it: riferimento
    "antw",  # nl: antwoord
    "doorst",  # nl: doorsturen
    "odp",  # pl: odpowiedź
    "pd",  # pl: przekazanie dalej
    "ynt",  # tr: yanit
    "res",  # pt: resposta
    "enc",  # pt: encaminhado
    "rv",  # es: reenviado
    "回复",  # zh-Hans: reply
    "答复",  # zh-Hans: reply
    "转发",  # zh-Hans: forward
    "回覆",  # zh-Hant: reply
    "轉寄",  # zh-Hant: forward
)

# One or more prefixes at the start: the word, an optional counter ("[2]", "(3)", "^4"), then a
# colon (ASCII or full-width), with optional spaces around. Matched against the case-folded,
# whitespace-folded subject, so the pattern itself is lower case and uses single spaces.
_PREFIXES = re.compile(
    r"(?:(?:{words}) ?(?:\[ ?[0-9]+ ?\]|\( ?[0-9]+ ?\)|\^[0-9]+)? ?[:\uff1a] ?)+".format(
        words="|".join(
            re.escape(word) for word in sorted(REPLY_FORWARD_PREFIXES, key=len, reverse=True)
        )
    )
)


def normalized_subject(subject: str) -> str:
    """The subject as threads compare it: reply/forward prefixes removed, whitespace folded to
    single spaces, stripped, case-folded. Idempotent.

    >>> normalized_subject("Re: RE[2]: Fwd:  AW: Quote  for  you ")
    'quote for you'
    >>> normalized_subject("SV : Re(3)\\uff1a Antw:Offerte")
    'offerte'
    >>> normalized_subject("Recap: Trial: notes")
    'recap: trial: notes'
    >>> normalized_subject("Re: ")
    ''
    """
    # Case-fold before matching, so that a prefix that case folding makes (the long s, U+017F,
    # in "\u017fv:" folds to "sv:") goes on the first pass, which keeps the result idempotent.
    # casefold is itself idempotent and neither makes nor changes whitespace.
    folded = " ".join(subject.casefold().split())
    prefixes = _PREFIXES.match(folded)
    return folded[prefixes.end() :] if prefixes else folded


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
