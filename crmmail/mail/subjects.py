"""Subjects without the reply and forward prefixes mail clients add, for threads and lead names.

The prefixes removed are the reply/forward markers mail clients write, in English and in the
languages we meet most (``REPLY_FORWARD_PREFIXES``). Only a whole prefix directly followed by its
colon is removed, so ``Recap:`` or ``Trial:`` stay. ``Ref:`` is deliberately not a prefix: it is
an ordinary English subject word ("Ref: order 1234"), not something a client adds on reply.
Changing the list changes the keys of future threads only; stored threads keep their keys.

>>> normalized_subject("Re: RE[2]: Fwd:  AW: Quote  for  you ")
'quote for you'
>>> without_prefixes("Fwd: FW:  Big  Order")
'Big Order'
"""

import re

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
# colon (ASCII or full-width), with optional spaces around. Matched against a whitespace-folded
# subject, so the pattern uses single spaces; the words are lower case.
_PREFIX_RUN = r"(?:(?:{words}) ?(?:\[ ?[0-9]+ ?\]|\( ?[0-9]+ ?\)|\^[0-9]+)? ?[:\uff1a] ?)+".format(
    words="|".join(
        re.escape(word) for word in sorted(REPLY_FORWARD_PREFIXES, key=len, reverse=True)
    )
)
_PREFIXES = re.compile(_PREFIX_RUN)
_PREFIXES_ANY_CASE = re.compile(_PREFIX_RUN, re.IGNORECASE)


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


def without_prefixes(subject: str) -> str:
    """The subject with its reply/forward prefixes removed and whitespace folded, case kept.

    >>> without_prefixes("RE: Fwd[2]: Quote for ACME")
    'Quote for ACME'
    >>> without_prefixes("Re:")
    ''
    >>> without_prefixes("Recap: notes")
    'Recap: notes'
    """
    folded = " ".join(subject.split())
    prefixes = _PREFIXES_ANY_CASE.match(folded)
    return folded[prefixes.end() :] if prefixes else folded
