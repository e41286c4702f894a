"""Text made safe for a text column: no NUL, no lone surrogates, 8-bit bytes read as UTF-8; and
one-line texts (names, subjects) without control characters or bidirectional controls."""

import re

_ESCAPED_BYTES = re.compile("[\udc80-\udcff]+")
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")
# The controls that reorder text (embeddings, overrides, isolates and the marks, Unicode's
# bidirectional algorithm): in a name they can make it read as another in every listing.
_BIDI_CONTROL = re.compile("[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def clean_text(text: str) -> str:
    """``text`` as it may be stored and re-emitted.

    Surrogate-escaped bytes (how ``email`` and aiosmtpd carry 8-bit input) are decoded as UTF-8,
    what is still undecodable becomes U+FFFD, other lone surrogates too, and NUL is dropped.

    >>> clean_text("a\\x00b\\udcff")
    'ab\\ufffd'
    >>> clean_text("caf\\udcc3\\udca9 \\ud800")
    'café \\ufffd'
    """
    if _LONE_SURROGATE.search(text):
        text = _ESCAPED_BYTES.sub(_decode_escaped, text)
        text = _LONE_SURROGATE.sub("\ufffd", text)
    return text.replace("\x00", "")


def _decode_escaped(run: re.Match[str]) -> str:
    return bytes(ord(ch) - 0xDC00 for ch in run.group()).decode("utf-8", "replace")


def one_line(text: str) -> str:
    """``text`` as one clean line: control characters as spaces, bidirectional controls dropped,
    white space collapsed.

    >>> one_line(" Re:\\r\\n  Big\\x00 order\\x1b ")
    'Re: Big order'
    >>> one_line("Ann \\u202eeeL nnA\\u202c \\u2066x\\u2069")
    'Ann eeL nnA x'
    """
    return " ".join(_CONTROL.sub(" ", _BIDI_CONTROL.sub("", clean_text(text))).split())
