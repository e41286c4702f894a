"""Parse raw message bytes into a ``ParsedMessage``: safe, bounded, and never raising on bad mail.

Python's modern header parser (``policy.default``) is quadratic on some inputs (20,000 dots in
a To take seconds) and can raise on hostile headers. So the MIME structure is parsed with the
``compat32`` policy, whose header handling is linear; headers are read from their raw values
(8-bit bytes decoded as UTF-8, RFC 2047 words decoded) and addresses with ``getaddresses``.

Limits, so that every message parses in bounded time (figures: ``bench/parser_abuse.py``):

- before parsing, ``limits.bound_message`` caps lines, every header block (fields, field size,
  block size, parameters) and the MIME tree (depth, parts), see ``crmmail/mail/limits.py``;
- ``MAX_ENCODED_WORDS`` RFC 2047 encoded-words are decoded per header value (a long subject
  has a dozen), the rest of the value is cut;
- each of From, To and Cc is read from its first ``MAX_ADDRESS_LIST_BYTES`` of text and gives
  at most ``MAX_ADDRESSES`` addresses (a message to 100 people needs about 6 KiB); a field whose
  comments or groups nest deeper than ``MAX_ADDRESS_NESTING`` (real mail: 1) is skipped, since
  the stdlib's address parser recurses once per level;
- the MIME walk stops at ``MAX_DEPTH`` and ``MAX_PARTS`` as well, should the parser build more.

Every cut is one sentence in ``ParsedMessage.limits`` (the parse step logs them with the inbound
id); parser complaints are in ``defects``. Every text that will reach a text column is cleaned of
NUL and lone surrogates, and the one-line ones (subject, names, addresses, file names, content
types) of every control character, so nothing stored can break a header it is written into, and
of the bidirectional controls, so no name can be made to read as another.

Addresses are in the one spelling of ``crmmail.mail.addresses`` (lower case, international
domains in Unicode), so that they compare equal to what the command line stores.

The Date is read in UTC: ``-0000`` (RFC 5322 3.3: UTC, the sender's zone unknown) and a date
without a zone are taken as UTC; one that cannot be written in UTC (31 Dec 9999 at -1400 is in
year 10000) or not read at all is ``None``, so the message goes on without it.
"""

import hashlib
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email import policy
from email.header import decode_header
from email.message import Message
from email.parser import BytesParser
from email.utils import getaddresses, parsedate_to_datetime

from crmmail.mail.addresses import normalized_address
from crmmail.mail.limits import (
    LINE_BUDGET_SPENT,
    MAX_DEPTH,
    MAX_FIELD_BYTES,
    MAX_HEADER_BLOCK_BYTES,
    MAX_HEADER_FIELDS,
    MAX_PARTS,
    bound_message,
)
from crmmail.storage.text import clean_text, one_line

__all__ = [
    "MAX_ADDRESSES",
    "MAX_ADDRESS_LIST_BYTES",
    "MAX_ADDRESS_NESTING",
    "MAX_DEPTH",
    "MAX_ENCODED_WORDS",
    "MAX_FIELD_BYTES",
    "MAX_HEADER_BLOCK_BYTES",
    "MAX_HEADER_FIELDS",
    "MAX_PARTS",
    "NamedAddress",
    "ParsedAttachment",
    "ParsedMessage",
    "clean_text",
    "one_line",
    "parse_message",
]

MAX_ENCODED_WORDS = 100
MAX_ADDRESS_LIST_BYTES = 32 * 1024
MAX_ADDRESSES = 1_000
MAX_ADDRESS_NESTING = 10
MAX_CONTENT_TYPE_LENGTH = 255
MAX_LIMIT_NOTES = 20

_ENCODED_WORD = re.compile(r"=\?[^?\s]*\?[^?\s]*\?[^\s]*?\?=")
_ADDRESS_SPECIALS = re.compile(r'\\.|[()"<>:;]', re.DOTALL)


@dataclass(frozen=True)
class NamedAddress:
    """One address from a header, in the one spelling, with its decoded display name."""

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
    from_: list[NamedAddress]
    to: list[NamedAddress]
    cc: list[NamedAddress]
    date: datetime | None
    content_type: str
    headers: dict[str, str]
    text: str = ""
    html: str = ""
    attachments: list[ParsedAttachment] = field(default_factory=list)
    defects: list[str] = field(default_factory=list)
    limits: list[str] = field(default_factory=list)

    def header(self, name: str) -> str:
        """The first value of a header, or ``""``."""
        return self.headers.get(name.lower(), "")


def parse_message(raw: bytes) -> ParsedMessage:
    """Parse ``raw``; never raises for bad mail (problems are in ``defects`` and ``limits``)."""
    limits: list[str] = []
    bounded = bound_message(raw, limits)
    parser = BytesParser(policy=policy.compat32)
    try:
        message = parser.parsebytes(bounded)
    except RecursionError:  # a structure the bounds did not foresee: keep the headers
        limits.append("MIME structure too deep for the parser: body not parsed")
        message = parser.parsebytes(bounded, headersonly=True)
        message.set_payload("")
    headers = _first_values(message, limits)
    parsed = ParsedMessage(
        message_id=_message_id(headers.get("message-id", "")),
        subject=one_line(headers.get("subject", "")),
        from_=_named_addresses(message, "from", limits),
        to=_named_addresses(message, "to", limits),
        cc=_named_addresses(message, "cc", limits),
        date=_date(headers.get("date", "")),
        content_type=_content_type(message),
        headers=headers,
        limits=limits,
    )
    _read_parts(message, parsed)
    if LINE_BUDGET_SPENT in limits and parsed.attachments:
        # The parser saw the last part only in part: a cut file is worse than none (the whole
        # message stays in the spool).
        cut = parsed.attachments.pop()
        limits.append(f"attachment {cut.filename or cut.content_type!r} cut short: not kept")
    for defect in message.defects:
        parsed.defects.append(type(defect).__name__)
    if len(limits) > MAX_LIMIT_NOTES:  # one per cut field of every part: keep the log line short
        limits[MAX_LIMIT_NOTES:] = [f"and {len(limits) - MAX_LIMIT_NOTES} more cuts"]
    return parsed


def _raw_values(message: Message, name: str) -> list[str]:
    """A header's values as they came, unfolded, 8-bit bytes read as UTF-8."""
    return [_unfold(value) for key, value in message.raw_items() if key.lower() == name]


def _unfold(value: object) -> str:
    """A raw header value on one line, its 8-bit bytes (surrogate-escaped) read as UTF-8."""
    return clean_text(re.sub(r"\r?\n(?=[ \t])", "", str(value)))


def _decode_words(value: str, limits: list[str], what: str) -> str:
    """RFC 2047 encoded-words decoded; an unknown charset or bad bytes give U+FFFD, not errors.

    Only the first ``MAX_ENCODED_WORDS`` are decoded: the value is cut after them.

    >>> _decode_words("Re: =?utf-8?q?Gr=C3=BC=C3=9Fe?= und =?x-unknown?q?abc?= end", [], "s")
    'Re: Grüße und abc end'
    >>> notes = []
    >>> _decode_words(" ".join(["=?utf-8?q?a?="] * 150), notes, "subject") == "a" * 100
    True
    >>> notes
    ['more than 100 encoded-words in subject: cut']
    """
    if "=?" not in value:
        return value
    for count, word in enumerate(_ENCODED_WORD.finditer(value), start=1):
        if count == MAX_ENCODED_WORDS and _ENCODED_WORD.search(value, word.end()):
            limits.append(f"more than {MAX_ENCODED_WORDS} encoded-words in {what}: cut")
            value = value[: word.end()]
            break
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


def _first_values(message: Message, limits: list[str]) -> dict[str, str]:
    """The first value of every header, by lower-cased name, decoded, on one clean line."""
    headers: dict[str, str] = {}
    for key, value in message.raw_items():
        name = key.lower()
        if name not in headers:
            headers[name] = one_line(_decode_words(_unfold(value), limits, name[:40]))
    return headers


def _named_addresses(message: Message, name: str, limits: list[str]) -> list[NamedAddress]:
    """The addresses in the named headers, lower-cased, with display names decoded; bounded."""
    found: list[NamedAddress] = []
    budget = MAX_ADDRESS_LIST_BYTES
    for value in _raw_values(message, name):
        if len(value) > budget:
            limits.append(f"{name}: more than {MAX_ADDRESS_LIST_BYTES} bytes of addresses: cut")
            value = value[: value.rfind(",", 0, budget) + 1 or budget]
        budget -= len(value)
        if address_nesting(value) > MAX_ADDRESS_NESTING:
            limits.append(f"{name}: nested deeper than {MAX_ADDRESS_NESTING}: a field skipped")
            continue
        for display_name, raw_address in getaddresses([value]):
            address = normalized_address(clean_text(raw_address))
            if address is None:
                continue
            if len(found) == MAX_ADDRESSES:
                limits.append(f"{name}: more than {MAX_ADDRESSES} addresses: rest not read")
                return found
            found.append(NamedAddress(one_line(_decode_words(display_name, limits, name)), address))
        if budget <= 0:
            break
    return found


def address_nesting(value: str) -> int:
    """How deep comments and groups nest in an address list (the stdlib recurses per level).

    >>> address_nesting('Ann (sales (EU)) <ann@x.test>, team: "a:(b" <b@x.test>;')
    2
    >>> address_nesting("a:b:c:d@x.test")
    3
    """
    deepest = comments = groups = 0
    quoted = angle = False
    for match in _ADDRESS_SPECIALS.finditer(value):
        token = match.group()
        if token[0] == "\\":  # a quoted pair: literal inside quotes and comments only
            if quoted or comments:
                continue
            token = token[1]
        if quoted:
            quoted = token != '"'
        elif token == "(":
            comments += 1
        elif token == ")":
            comments = max(0, comments - 1)
        elif comments:
            continue
        elif token == '"':
            quoted = True
        elif token in "<>":
            angle = token == "<"
        elif token == ":" and not angle:
            groups += 1
        elif token == ";":
            groups = max(0, groups - 1)
        deepest = max(deepest, comments, groups)
    return deepest


def _message_id(value: str) -> str | None:
    """The Message-ID without brackets and spaces; ``None`` when absent or empty.

    >>> _message_id(" <abc@x.test> ")
    'abc@x.test'
    """
    token = value.strip().split()[0] if value.strip() else ""
    token = token.strip("<>")
    return token[:250] or None


def _date(value: str) -> datetime | None:
    """The date in UTC, a zone-less one taken as UTC; ``None`` when absent or unusable.

    >>> [_date(v).isoformat() for v in ("Tue, 2 Jan 2024 10:00:00 -0000", "2 Jan 2024 10:00:00")]
    ['2024-01-02T10:00:00+00:00', '2024-01-02T10:00:00+00:00']
    >>> _date("Fri, 31 Dec 9999 23:59:59 -1400") is None
    True
    """
    if not value:
        return None
    try:
        parsed = parsedate_to_datetime(value)
        return parsed.replace(tzinfo=parsed.tzinfo or UTC).astimezone(UTC)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


def _read_parts(message: Message, parsed: ParsedMessage) -> None:
    """Fill the text, HTML and attachments, within the part and depth limits.

    Parts are counted as ``limits.bound_message`` counts them: the children of multiparts.
    """
    stack: list[tuple[Message, int]] = [(message, 0)]
    room = MAX_PARTS
    while stack:
        part, depth = stack.pop()
        if not part.is_multipart():
            _read_leaf(part, parsed)
            continue
        if depth >= MAX_DEPTH:
            parsed.limits.append(f"MIME nesting deeper than {MAX_DEPTH}: that part not read")
            continue
        payload = part.get_payload()
        children = [child for child in payload if isinstance(child, Message)]
        if part.get_content_maintype() == "multipart":
            if len(children) > room:
                parsed.limits.append(f"more than {MAX_PARTS} MIME parts: rest not read")
                children = children[:room]
            room -= len(children)
        stack.extend((child, depth + 1) for child in reversed(children))


def _read_leaf(part: Message, parsed: ParsedMessage) -> None:
    content_type = _content_type(part)
    disposition = (part.get_content_disposition() or "").lower()
    filename = _filename(part, parsed)
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


def _content_type(part: Message) -> str:
    """The part's ``type/subtype``, lower-cased, without white space or control characters."""
    content_type = "".join(one_line(part.get_content_type()).split())
    return content_type[:MAX_CONTENT_TYPE_LENGTH]


def _filename(part: Message, parsed: ParsedMessage) -> str:
    try:
        name = part.get_filename()
    except Exception as error:  # noqa: BLE001
        parsed.defects.append(f"filename: {type(error).__name__}")
        return ""
    return one_line(_decode_words(str(name), parsed.limits, "a file name")) if name else ""


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
