"""Parse raw message bytes into a ``ParsedMessage``: safe, bounded, and never raising on bad mail.

Python's modern header parser (``policy.default``) is quadratic on some inputs (a 16 KB header
of dots takes seconds) and can raise on hostile headers. So the MIME structure is parsed with
the ``compat32`` policy, whose header handling is linear; headers are read from their raw values
(8-bit bytes decoded as UTF-8, RFC 2047 words decoded) and addresses with ``getaddresses``. The
header block is capped before parsing (field count, field size, block size), MIME parts and
nesting are bounded while walking, and every text that will reach a text column is cleaned of
NUL and lone surrogates. Problems become entries in ``defects``; nothing here raises on bad mail.
"""

import hashlib
import re
from dataclasses import dataclass, field
from datetime import datetime
from email import policy
from email.header import decode_header
from email.message import Message
from email.parser import BytesParser
from email.utils import getaddresses, parsedate_to_datetime

from crmmail.storage.text import clean_text

MAX_HEADER_FIELDS = 500
MAX_FIELD_BYTES = 16 * 1024
MAX_HEADER_BLOCK_BYTES = 256 * 1024
MAX_PARTS = 500
MAX_ADDRESS_LENGTH = 254  # RFC 5321's path limit, less the angle brackets
MAX_CONTENT_TYPE_LENGTH = 255
MAX_DEPTH = 20

_HEADER_END = re.compile(rb"\r?\n\r?\n")
_FIELD_START = re.compile(rb"\r?\n(?![ \t])")


@dataclass(frozen=True)
class Mailbox:
    """One address from a header, lower-cased, with its decoded display name."""

    name: str
    address: str


@dataclass(frozen=True)
class ParsedAttachment:
    """A file carried by the message."""

    filename: str
    content_type: str
    content: bytes

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.content).hexdigest()


@dataclass
class ParsedMessage:
    """What the pipeline needs of a message, already decoded and cleaned."""

    message_id: str | None
    subject: str
    from_: list[Mailbox]
    to: list[Mailbox]
    cc: list[Mailbox]
    date: datetime | None
    content_type: str
    headers: dict[str, str]
    text: str = ""
    html: str = ""
    attachments: list[ParsedAttachment] = field(default_factory=list)
    defects: list[str] = field(default_factory=list)

    def header(self, name: str) -> str:
        """The first value of a header, or ``""``."""
        return self.headers.get(name.lower(), "")


def cap_headers(raw: bytes, defects: list[str]) -> bytes:
    """Bound the header block before the parser sees it; drop or cut what is over."""
    end = _HEADER_END.search(raw, 0, MAX_HEADER_BLOCK_BYTES + 4)
    if end is not None:
        head, separator, body = raw[: end.start()], end.group(), raw[end.end() :]
    else:  # no blank line within the limit: all header, or a header block that is too large
        head, separator, body = raw[:MAX_HEADER_BLOCK_BYTES], b"", b""
        if len(raw) > MAX_HEADER_BLOCK_BYTES:
            defects.append("header block too large: cut")
    fields = _FIELD_START.split(head)
    changed = len(head) + len(separator) + len(body) != len(raw)
    if len(fields) > MAX_HEADER_FIELDS:
        fields = fields[:MAX_HEADER_FIELDS]
        defects.append("too many header fields: cut")
        changed = True
    for index, value in enumerate(fields):
        if len(value) > MAX_FIELD_BYTES:
            cut = value[:MAX_FIELD_BYTES]
            fields[index] = cut[: cut.rfind(b" ")] if b" " in cut[64:] else cut
            defects.append(f"header field too long: cut ({value[:40]!r})")
            changed = True
    if not changed:
        return raw
    return b"\r\n".join(fields) + (separator or b"\r\n\r\n") + body


def parse_message(raw: bytes) -> ParsedMessage:
    """Parse ``raw``; never raises for bad mail (problems are recorded in ``defects``)."""
    defects: list[str] = []
    message = BytesParser(policy=policy.compat32).parsebytes(cap_headers(raw, defects))
    headers = _first_values(message)
    parsed = ParsedMessage(
        message_id=_message_id(headers.get("message-id", "")),
        subject=" ".join(headers.get("subject", "").split()),
        from_=_mailboxes(message, "from"),
        to=_mailboxes(message, "to"),
        cc=_mailboxes(message, "cc"),
        date=_date(headers.get("date", "")),
        content_type=clean_text(message.get_content_type())[:MAX_CONTENT_TYPE_LENGTH],
        headers=headers,
        defects=defects,
    )
    _read_parts(message, parsed)
    for defect in message.defects:
        defects.append(type(defect).__name__)
    return parsed


def _raw_values(message: Message, name: str) -> list[str]:
    """A header's values as they came, unfolded, 8-bit bytes read as UTF-8."""
    return [_unfold(value) for key, value in message.raw_items() if key.lower() == name]


def _unfold(value: object) -> str:
    """A raw header value on one line, its 8-bit bytes (surrogate-escaped) read as UTF-8."""
    return clean_text(re.sub(r"\r?\n(?=[ \t])", "", str(value)))


def _decode_words(value: str) -> str:
    """RFC 2047 encoded-words decoded; an unknown charset or bad bytes give U+FFFD, not errors.

    >>> _decode_words("Re: =?utf-8?q?Gr=C3=BC=C3=9Fe?= und =?x-unknown?q?abc?= end")
    'Re: Grüße und abc end'
    """
    if "=?" not in value:
        return value
    try:
        chunks = decode_header(value)
    except Exception:  # noqa: BLE001  (a malformed encoded-word: keep the raw text)
        return value
    return "".join(
        chunk if isinstance(chunk, str) else _decode_bytes(chunk, charset)
        for chunk, charset in chunks
    )


def _decode_bytes(data: bytes, charset: str | None) -> str:
    if charset is None:  # text between encoded-words, as decode_header hands it back
        return data.decode("raw-unicode-escape", "replace")
    try:
        return data.decode(charset, "replace")
    except (LookupError, UnicodeError, ValueError):
        return data.decode("utf-8", "replace")


def _first_values(message: Message) -> dict[str, str]:
    """The first value of every header, by lower-cased name, decoded and cleaned."""
    headers: dict[str, str] = {}
    for key, value in message.raw_items():
        name = key.lower()
        if name not in headers:
            headers[name] = clean_text(_decode_words(_unfold(value)).strip())
    return headers


def _mailboxes(message: Message, name: str) -> list[Mailbox]:
    """Every address in the named headers, lower-cased, with display names decoded."""
    found: list[Mailbox] = []
    for display_name, address in getaddresses(_raw_values(message, name)):
        address = _unquote_local_part(clean_text(address).strip().strip("<>").lower())
        if (
            len(address) > MAX_ADDRESS_LENGTH
            or address.count("@") != 1
            or any(ch.isspace() or ch in "<>[]" for ch in address)
        ):
            continue
        name_text = clean_text(" ".join(_decode_words(display_name).split()))
        found.append(Mailbox(name_text, address))
    return found


_QUOTED_ATOM_LOCAL = re.compile(r'"([A-Za-z0-9!#$%&\'*+/=?^_`{|}~.-]+)"(@[^@]+)')


def _unquote_local_part(address: str) -> str:
    """``"ann"@x.test`` is the mailbox ``ann@x.test`` (RFC 5321 4.1.2): drop needless quotes.

    >>> _unquote_local_part('"acme+lead"@mail.localhost')
    'acme+lead@mail.localhost'
    >>> _unquote_local_part('"a b"@x.test')
    '"a b"@x.test'
    """
    match = _QUOTED_ATOM_LOCAL.fullmatch(address)
    return match.group(1) + match.group(2) if match else address


def _message_id(value: str) -> str | None:
    """The Message-ID without brackets and spaces; ``None`` when absent or empty.

    >>> _message_id(" <abc@x.test> ")
    'abc@x.test'
    """
    token = value.strip().split()[0] if value.strip() else ""
    token = token.strip("<>")
    return token[:250] or None


def _date(value: str) -> datetime | None:
    if not value:
        return None
    try:
        parsed = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if parsed.tzinfo is None:
        return None
    return parsed


def _read_parts(message: Message, parsed: ParsedMessage) -> None:
    """Fill the text, HTML and attachments, within the part and depth limits."""
    stack: list[tuple[Message, int]] = [(message, 0)]
    seen = 0
    while stack:
        part, depth = stack.pop()
        seen += 1
        if seen > MAX_PARTS:
            parsed.defects.append(f"more than {MAX_PARTS} MIME parts: rest ignored")
            return
        if part.is_multipart():
            if depth >= MAX_DEPTH:
                parsed.defects.append(f"MIME nesting deeper than {MAX_DEPTH}: rest ignored")
                continue
            children = part.get_payload()
            if isinstance(children, list):
                stack.extend(
                    (child, depth + 1) for child in reversed(children) if isinstance(child, Message)
                )
            continue
        _read_leaf(part, parsed)


def _read_leaf(part: Message, parsed: ParsedMessage) -> None:
    content_type = clean_text(part.get_content_type())[:MAX_CONTENT_TYPE_LENGTH]
    disposition = (part.get_content_disposition() or "").lower()
    filename = _filename(part, parsed.defects)
    is_body_text = content_type in ("text/plain", "text/html") and disposition != "attachment"
    if is_body_text and not filename:
        text = _decoded_text(part, parsed.defects)
        if content_type == "text/plain" and not parsed.text:
            parsed.text = text
        elif content_type == "text/html" and not parsed.html:
            parsed.html = text
        return
    if content_type.startswith("multipart/"):
        return
    payload = part.get_payload(decode=True)
    content = payload if isinstance(payload, bytes) else b""
    parsed.attachments.append(
        ParsedAttachment(filename=filename, content_type=content_type, content=content)
    )


def _filename(part: Message, defects: list[str]) -> str:
    try:
        name = part.get_filename()
    except Exception as error:  # noqa: BLE001
        defects.append(f"filename: {type(error).__name__}")
        return ""
    return clean_text(_decode_words(str(name))) if name else ""


def _decoded_text(part: Message, defects: list[str]) -> str:
    """A text part as ``str``, tolerating unknown charsets and bad transfer encodings."""
    payload = part.get_payload(decode=True)
    data = payload if isinstance(payload, bytes) else b""
    charset = part.get_content_charset() or "utf-8"
    try:
        text = data.decode(charset, "replace")
    except (LookupError, UnicodeError, ValueError):  # unknown, or a codec that cannot decode
        defects.append(f"undecodable charset {charset[:40]!r}")
        text = data.decode("utf-8", "replace")
    return clean_text(text)
