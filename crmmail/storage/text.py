"""Text made safe for a text column: no NUL, no lone surrogates, 8-bit bytes read as UTF-8."""

import re

_ESCAPED_BYTES = re.compile("[\udc80-\udcff]+")
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


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
