"""Parse raw message bytes into a ``ParsedMessage``: safe, bounded, and never raising on bad mail.

Python's ``email`` parser is slow (quadratic on some inputs) and can raise on hostile headers, so
the header block is capped before parsing (field count, field size, block size), each header is
read with a fallback to the lenient compat32 address parser, and every text that will reach a
text column is cleaned of NUL and lone surrogates. Problems become entries in ``defects``.
"""

import hashlib
import re
from dataclasses import dataclass, field
from datetime import datetime
from email import policy
from email.header import decode_header, make_header
from email.headerregistry import AddressHeader
from email.message import EmailMessage, Message
from email.parser import BytesParser
from email.utils import getaddresses, parsedate_to_datetime
from typing import cast

MAX_HEADER_FIELDS = 500
MAX_FIELD_BYTES = 16 * 1024
MAX_HEADER_BLOCK_BYTES = 256 * 1024
MAX_PARTS = 500
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


def clean_text(text: str) -> str:
    """Text safe for a text column: no NUL, no lone surrogates.

    >>> clean_text("a\\x00b\\udcff")
    'ab?'
    """
    return text.replace("\x00", "").encode("utf-8", "replace").decode("utf-8")


def cap_headers(raw: bytes, defects: list[str]) -> bytes:
    """Bound the header block before the parser sees it; drop or cut what is over."""
    end = _HEADER_END.search(raw, 0, MAX_HEADER_BLOCK_BYTES + 4)
    if end is None:
        if len(raw) <= MAX_HEADER_BLOCK_BYTES:
            return raw
        head, separator, body = raw[:MAX_HEADER_BLOCK_BYTES], b"\r\n\r\n", b""
        defects.append("header block too large: cut")
    else:
        head, separator, body = raw[: end.start()], end.group(), raw[end.end() :]
    fields = _FIELD_START.split(head)
    changed = False
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
    if not changed and end is not None:
        return raw
    return b"\r\n".join(fields) + separator + body


def parse_message(raw: bytes) -> ParsedMessage:
    """Parse ``raw``; never raises for bad mail (problems are recorded in ``defects``)."""
    defects: list[str] = []
    message = BytesParser(policy=policy.default).parsebytes(cap_headers(raw, defects))
    parsed = ParsedMessage(
        message_id=_message_id(_header_text(message, "message-id", defects)),
        subject=" ".join(_header_text(message, "subject", defects).split()),
        from_=_mailboxes(message, "from", defects),
        to=_mailboxes(message, "to", defects),
        cc=_mailboxes(message, "cc", defects),
        date=_date(_header_text(message, "date", defects)),
        content_type=message.get_content_type(),
        headers=_first_values(message, defects),
        defects=defects,
    )
    _read_parts(message, parsed)
    for defect in message.defects:
        defects.append(type(defect).__name__)
    return parsed


def _header_text(message: Message, name: str, defects: list[str]) -> str:
    """A header's decoded text; on a parser error, the raw value decoded leniently."""
    try:
        value = message.get(name)
    except Exception as error:  # noqa: BLE001  (the parser's bugs must not stop the message)
        defects.append(f"{name}: {type(error).__name__}")
        raw_values = _raw_values(message, name)
        value = _decode_words(raw_values[0]) if raw_values else None
    return clean_text(str(value)) if value is not None else ""


def _first_values(message: Message, defects: list[str]) -> dict[str, str]:
    headers: dict[str, str] = {}
    for name in message:
        key = name.lower()
        if key not in headers:
            headers[key] = _header_text(message, key, defects)
    return headers


def _raw_values(message: Message, name: str) -> list[str]:
    """A header's values as they came, without the policy's (fallible) parsing."""
    return [str(value) for key, value in message.raw_items() if key.lower() == name]


def _decode_words(value: str) -> str:
    try:
        return str(make_header(decode_header(value)))
    except Exception:  # noqa: BLE001  (undecodable encoded-words stay as they came)
        return value


def _mailboxes(message: Message, name: str, defects: list[str]) -> list[Mailbox]:
    """Every address in the named headers, lower-cased, with display names decoded."""
    found: list[Mailbox] = []
    try:
        headers = message.get_all(name) or []
        pairs = [
            (str(a.display_name), a.addr_spec)
            for header in headers
            for a in cast(AddressHeader, header).addresses
        ]
    except Exception as error:  # noqa: BLE001  (fall back to the lenient parser)
        defects.append(f"{name}: {type(error).__name__}")
        pairs = [(_decode_words(n), a) for n, a in getaddresses(_raw_values(message, name))]
    for display_name, address in pairs:
        address = clean_text(address).strip().strip("<>").lower()
        if "@" not in address or any(ch.isspace() for ch in address):
            continue
        found.append(Mailbox(clean_text(" ".join(display_name.split())), address))
    return found


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


def _read_parts(message: EmailMessage, parsed: ParsedMessage) -> None:
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
                stack.extend((child, depth + 1) for child in reversed(children))
            continue
        _read_leaf(part, parsed)


def _read_leaf(part: Message, parsed: ParsedMessage) -> None:
    content_type = part.get_content_type()
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
    return clean_text(str(name)) if name else ""


def _decoded_text(part: Message, defects: list[str]) -> str:
    """A text part as ``str``, tolerating unknown charsets and bad transfer encodings."""
    payload = part.get_payload(decode=True)
    data = payload if isinstance(payload, bytes) else b""
    charset = part.get_content_charset() or "utf-8"
    try:
        text = data.decode(charset, "replace")
    except LookupError:
        defects.append(f"unknown charset {charset[:40]!r}")
        text = data.decode("utf-8", "replace")
    return clean_text(text)
