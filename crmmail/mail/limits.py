"""Bound a raw message before Python's ``email`` parser sees it: lines, header blocks, MIME tree.

Python's parser and header helpers are quadratic, or recursive without a bound, on some input:
address parsing recurses once per ``(`` or group ``:``, RFC 2231 parameter splitting rescans
the whole value for every ``;``, and every line of a part nested ``d`` deep passes through
``d`` generators and ``d`` boundary tests, so deep nesting with many lines is quadratic and
nesting a thousand deep overflows the stack. ``bound_message`` walks the bytes once, the way
the feed parser will (header blocks end at the first line that is not a header line; a line
of any open boundary ends the parts inside it; ``message/*`` bodies are messages; a digest's
parts default to ``message/rfc822``) and returns bytes the parser handles in bounded time:

- ``MAX_LINE_LEVELS``: each line counts ``LINE_WEIGHT`` plus its nesting depth, since the
  parser's cost per line grows with depth: 2 million lines at the top, 333,000 lines 20 deep,
  about 2 s of parsing either way (a 25 MiB message of 76-character base64 lines has 340,000,
  counting 1.7 million one level down; a 20 MB CSV attachment of 15-byte lines, 1.4 million
  lines, counts 7 million). A part the budget cuts short is left out, not kept in part;
- in every header block, of the message and of each part: ``MAX_HEADER_FIELDS`` fields,
  ``MAX_FIELD_BYTES`` per field (a long Received chain or References still fits),
  ``MAX_HEADER_BLOCK_BYTES`` in all, ``MAX_PARAMETERS`` parameters in a Content-Type or
  Content-Disposition (RFC 2231 continuations of a 255-character file name need about 10);
- ``MAX_DEPTH`` levels of ``multipart/*`` and ``message/*`` nesting (a message forwarded as an
  attachment five times over is about 12 deep) and ``MAX_PARTS`` parts (a 500-part message is
  a digest or an attack; a CRM note does not need the rest).

What is cut is dropped from the parsed view only (the raw bytes stay in the spool) and each cut
adds one sentence to ``notes``. Ordinary mail comes back as the very same ``bytes`` object.
"""

import re
from collections.abc import Iterator
from dataclasses import dataclass
from email import policy
from email.parser import BytesHeaderParser

MAX_LINE_LEVELS = 8_000_000
LINE_WEIGHT = 4  # a line costs the parser about as much as 4 + its nesting depth boundary tests
MAX_HEADER_FIELDS = 500
MAX_FIELD_BYTES = 16 * 1024
MAX_HEADER_BLOCK_BYTES = 256 * 1024
MAX_PARAMETERS = 100
MAX_DEPTH = 20
MAX_PARTS = 500

# The note of a cut in the middle of a part: the part the parser sees last is incomplete.
LINE_BUDGET_SPENT = f"more than {MAX_LINE_LEVELS:,} line-levels: rest not parsed"

_LINE_END = re.compile(rb"\r\n|\r|\n")
# The feed parser's header line (``email.feedparser.headerRE``), on bytes, with its line end.
_HEADER_LINES = re.compile(rb"(?:(?:From |[\x21-\x39\x3b-\x7e]*:|[\t ])[^\r\n]*(?:\r\n|\r|\n|\Z))*")
_BLANK_LINE_AHEAD = re.compile(rb"(?:\r\n|\r|\n)(?=\r\n|\r|\n)")  # a line end, a blank line next
_CONTENT_FIELD = re.compile(rb"(?i)content-")
# A line end not followed by white space (a fold). ``\r\n`` first and a bare ``\r`` only when no
# ``\n`` follows: else the CR of a folded CRLF would read as a line end of its own.
_FIELD_START = re.compile(rb"(?:\r\n|\r(?!\n)|\n)(?![ \t])")
_UNMATCHABLE = b"\n"  # a boundary no line can match (lines are compared without their end)
_PARAMETER_FIELDS = (b"content-type", b"content-disposition")
_HEADER_PARSER = BytesHeaderParser(policy=policy.compat32)


@dataclass
class _Container:
    """An open ``multipart/*`` (with its boundary) or ``message/*`` (boundary ``None``)."""

    boundary: bytes | None
    digest: bool = False


def bound_message(raw: bytes, notes: list[str]) -> bytes:
    """``raw`` cut to the limits above; ``raw`` itself when nothing is over them."""
    return _Walk(raw, notes).run()


def count_lines(raw: bytes, start: int, stop: int) -> int:
    """Line ends (CRLF, CR or LF, as the parser splits) in ``raw[start:stop]``.

    >>> count_lines(b"a\\r\\nb\\rc\\nd", 0, 9)
    3
    """
    crlf = raw.count(b"\r\n", start, stop)
    return raw.count(b"\n", start, stop) + raw.count(b"\r", start, stop) - crlf


class _Walk:
    """One pass over the bytes, copying them with header blocks capped and the tree cut."""

    def __init__(self, raw: bytes, notes: list[str]) -> None:
        self.raw = raw
        self.end = len(raw)  # the parser sees raw[:end]
        self.notes = notes
        self.out: list[bytes] = []
        self.copied = 0  # raw[:copied] is in out
        self.stack: list[_Container] = []
        self.parts = 0
        self.line_levels = 0
        self.dropping = False  # the body being scanned is a too-deep part: leave it out
        self.dashes_after = {b"\n": -1, b"\r": -1}  # where the next LF-- and CR-- are

    def run(self) -> bytes:
        pos = self.entity(0, "text/plain")
        while pos is not None:
            pos = self.body(pos)
        if not self.out and self.end == len(self.raw):
            return self.raw
        self.out.append(self.raw[self.copied : max(self.copied, self.end)])
        return b"".join(self.out)

    def spend(self, start: int, stop: int) -> bool:
        """Count the lines from ``start`` to ``stop`` at the current depth; cut when over."""
        weight = len(self.stack) + LINE_WEIGHT
        lines = count_lines(self.raw, start, stop)
        if self.line_levels + lines * weight <= MAX_LINE_LEVELS:
            self.line_levels += lines * weight
            return True
        allowed = (MAX_LINE_LEVELS - self.line_levels) // weight
        self.end = start
        for count, line_end in enumerate(_LINE_END.finditer(self.raw, start, stop), start=1):
            if count > allowed:
                break
            self.end = line_end.end()
        self.notes.append(LINE_BUDGET_SPENT)
        return False

    def entity(self, pos: int, default_type: str) -> int | None:
        """Read the header block at ``pos``; return where the body to scan starts, or ``None``."""
        match = _HEADER_LINES.match(self.raw, pos, self.end)
        block_end = self.boundary_inside(pos, match.end() if match else pos)
        block = self.raw[pos:block_end]
        capped = cap_header_block(block, self.notes)
        if capped is not block:
            self.out.append(self.raw[self.copied : pos])
            self.out.append(capped)
            self.copied = block_end
        body = block_end
        blank = _LINE_END.match(self.raw, body, self.end)
        if blank is not None:
            body = blank.end()
        if not self.spend(pos, body):
            return None
        content_type, boundary = _content_type(capped, default_type)
        maintype = content_type.partition("/")[0]
        if content_type == "message/delivery-status":
            self.bound_status_blocks(body)
            return body
        if maintype not in ("multipart", "message"):
            return body
        if maintype == "multipart" and boundary is None:
            return body  # the parser reads it as text
        if len(self.stack) >= MAX_DEPTH:
            self.notes.append(f"MIME nesting deeper than {MAX_DEPTH}: that part not parsed")
            self.out.append(self.raw[self.copied : body])
            self.copied = body
            self.dropping = True  # up to the next line of an open boundary
            return body
        if maintype == "message":
            self.stack.append(_Container(None))
            return self.entity(body, "text/plain")
        self.stack.append(_Container(boundary, content_type == "multipart/digest"))
        return body

    def bound_status_blocks(self, body: int) -> None:
        """A delivery-status body is one part per block of fields: at most ``MAX_PARTS``."""
        found = self.next_boundary(body)
        stop = found[0] if found else self.end
        for count, blank in enumerate(_BLANK_LINE_AHEAD.finditer(self.raw, body, stop), start=1):
            if count == MAX_PARTS:
                self.notes.append(f"more than {MAX_PARTS} delivery-status blocks: rest not parsed")
                self.out.append(self.raw[self.copied : blank.end()])
                self.copied = blank.end()
                self.dropping = True  # up to the next line of an open boundary
                return

    def boundary_inside(self, start: int, end: int) -> int:
        """A header block ends early at a line of an open boundary (the parser's EOF test)."""
        if not self.stack:
            return end
        for line_start in self.dash_lines(start, end):
            if self.match_boundary(line_start) is not None:
                return line_start
        return end

    def dash_lines(self, start: int, end: int) -> Iterator[int]:
        """Where the lines that begin with ``--`` begin, from ``start`` to ``end``.

        Two ``bytes.find`` scans (after LF and after CR) whose results are kept across calls, since
        the walk only moves forward: the bytes are scanned about once in all.
        """
        if start == 0 and self.raw.startswith(b"--"):
            yield 0
        position = max(start - 1, 0)
        while True:
            for char, found in self.dashes_after.items():
                if found < position:
                    found = self.raw.find(char + b"--", position, self.end)
                    self.dashes_after[char] = found if found != -1 else len(self.raw)
            nearest = min(self.dashes_after.values())
            if nearest + 3 > min(end, len(self.raw)):
                return
            yield nearest + 1
            position = nearest + 1

    def match_boundary(self, line_start: int) -> tuple[int, bool, int] | None:
        """(index in the stack, closing?, end of line) if the line is an open boundary."""
        line_end = _LINE_END.search(self.raw, line_start, self.end)
        stop = line_end.end() if line_end else self.end
        line = self.raw[line_start:stop].rstrip(b"\r\n").rstrip(b" \t")
        for index in range(len(self.stack) - 1, -1, -1):
            boundary = self.stack[index].boundary
            if boundary is None:
                continue
            if line == b"--" + boundary:
                return index, False, stop
            if line == b"--" + boundary + b"--":
                return index, True, stop
        return None

    def body(self, pos: int) -> int | None:
        """Scan to the next boundary line of an open multipart; return where to go on."""
        found = self.next_boundary(pos)
        if not self.dropping and not self.spend(pos, found[3] if found else self.end):
            return None
        if found is None:
            if self.dropping:
                self.end = self.copied
            return None
        line_start, index, closing, line_end = found
        if self.dropping:
            self.copied = line_start
            self.dropping = False
        del self.stack[index + 1 :]
        if closing:
            self.stack.pop()
            return line_end
        self.parts += 1
        if self.parts > MAX_PARTS:
            self.notes.append(f"more than {MAX_PARTS} MIME parts: rest not parsed")
            self.end = line_start
            return None
        digest = self.stack[-1].digest
        return self.entity(line_end, "message/rfc822" if digest else "text/plain")

    def next_boundary(self, pos: int) -> tuple[int, int, bool, int] | None:
        """(line start, stack index, closing?, line end) of the next open boundary's line."""
        if all(container.boundary is None for container in self.stack):
            return None
        for line_start in self.dash_lines(pos, self.end):
            found = self.match_boundary(line_start)
            if found is not None:
                return (line_start, *found)
        return None


def _content_type(block: bytes, default_type: str) -> tuple[str, bytes | None]:
    """The content type and boundary the parser will read from a (capped) header block."""
    if _CONTENT_FIELD.search(block) is None:
        return default_type, None
    headers = _HEADER_PARSER.parsebytes(block + b"\n")
    headers.set_default_type(default_type)
    boundary = headers.get_boundary() if headers.get_content_maintype() == "multipart" else None
    if boundary is None:
        return headers.get_content_type(), None
    try:
        return headers.get_content_type(), boundary.encode("ascii", "surrogateescape")
    except UnicodeEncodeError:  # decoded to text no line can equal: the parser never matches it
        return headers.get_content_type(), _UNMATCHABLE


def cap_header_block(block: bytes, notes: list[str]) -> bytes:
    """One header block within the field, size and parameter limits; ``block`` if it already is."""
    changed = False
    if len(block) > MAX_HEADER_BLOCK_BYTES:
        block = block[:MAX_HEADER_BLOCK_BYTES]
        notes.append("header block too large: cut")
        changed = True
    ending = next((end for end in (b"\r\n", b"\r", b"\n") if block.endswith(end)), b"")
    fields = _FIELD_START.split(block[: len(block) - len(ending)]) if block else []
    if len(fields) > MAX_HEADER_FIELDS:
        fields = fields[:MAX_HEADER_FIELDS]
        notes.append("too many header fields: cut")
        changed = True
    for index, value in enumerate(fields):
        capped = _cap_field(value, notes)
        if capped is not value:
            fields[index] = capped
            changed = True
    if not changed:
        return block
    return (ending or b"\r\n").join(fields) + (ending or b"\r\n")


def _cap_field(value: bytes, notes: list[str]) -> bytes:
    if len(value) > MAX_FIELD_BYTES:
        cut = value[:MAX_FIELD_BYTES]
        notes.append(f"header field too long: cut ({value[:40]!r})")
        value = cut[: cut.rfind(b" ")] if b" " in cut[64:] else cut
        value = value.rstrip(b" \t\r\n")  # cut at a fold: no line end left to end the block
    name = value.partition(b":")[0].strip().lower()
    if name in _PARAMETER_FIELDS and value.count(b";") > MAX_PARAMETERS:
        notes.append(f"more than {MAX_PARAMETERS} parameters in {name.decode()}: cut")
        value = b";".join(value.split(b";", MAX_PARAMETERS + 1)[: MAX_PARAMETERS + 1])
    return value
