"""Fuzz the parse, participants and routing path with hostile messages built from a grammar.

Hypothesis assembles messages from pieces known to hurt mail parsers (runs of ``(``, ``<``,
``"``, ``:``, dots and encoded-words thousands long, unknown charsets, 8-bit and NUL bytes,
broken and missing boundaries, MIME nesting hundreds deep, bare CR or LF line ends) mixed with
raw random bytes, and runs each through the real functions the worker calls before it touches
the database. Whatever comes in: nothing raises (the parser has no quarantine path of its own:
a bad message is parsed as far as it goes, with ``defects`` and ``limits``), every participant is
a usable address, and no text that can end up in a header (subject, names, addresses, file
names, content types, Message-ID) carries CR, LF, NUL or another control character.

Each input has a time budget: the ``deadline`` of 2 s (the issue's budget per input, generous
against the ~50 ms the largest ones take), and the run is bounded by ``max_examples``.
"""

import re
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crmmail.mail.message import NamedAddress, ParsedMessage, parse_message
from crmmail.mail.names import lead_name, person_names
from crmmail.mail.participants import participants_of
from crmmail.routing.address import parse as parse_smart_address

SMART_DOMAINS = ("mail.localhost",)
USERS = {"owner@corp.test"}
CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")

PIECES = st.sampled_from(
    [
        b"(",
        b")",
        b"<",
        b">",
        b'"',
        b"\\",
        b":",
        b";",
        b",",
        b"@",
        b".",
        b"[",
        b"]",
        b" ",
        b"\t",
        b"\r\n ",
        b"\r",
        b"\n",
        b"\x00",
        b"\xff",
        b"\xc3\xa9",
        b"\xed\xa0\x80",
        b"=?utf-8?q?caf=C3=A9?=",
        b"=?utf-8?b?R3LDvMOfZQ==?=",
        b"=?x-unknown?q?abc?=",
        b"=?utf-8?q?=0D=0A=00?=",
        b"=?",
        b"?=",
        b"ann@corp.test",
        b"Ann Lee <ann@corp.test>",
        b"acme@mail.localhost",
        b"acme+lead@mail.localhost",
        b'"acme+contact"@MAIL.localhost',
        b"group:",
        b"<@relay.test:b@c.test>",
        b"a%b@mail.localhost",
        b"name*0*=utf-8''caf%C3%A9",
        b"; charset=",
        b'; boundary="b"',
        b"; filename=",
    ]
)
RUNS = st.tuples(PIECES, st.integers(1, 3_000)).map(lambda run: run[0] * run[1])
VALUES = st.lists(st.one_of(PIECES, RUNS, st.binary(max_size=40)), max_size=8).map(b"".join)
NAMES = st.sampled_from(
    [
        b"From",
        b"To",
        b"Cc",
        b"Subject",
        b"Message-ID",
        b"Date",
        b"Content-Type",
        b"Content-Disposition",
        b"Content-Transfer-Encoding",
        b"Received",
        b"X-Anything",
    ]
)
HEADER = st.tuples(NAMES, VALUES).map(lambda field: field[0] + b": " + field[1])
HEADERS = st.lists(HEADER, max_size=8).map(b"\r\n".join)
CONTENT_TYPES = st.sampled_from(
    [
        b"text/plain; charset=utf-8",
        b"text/plain; charset=x-unknown",
        b"text/plain; charset=rot13",
        b"text/html; charset=iso-8859-1",
        b"application/octet-stream",
        b"message/rfc822",
        b"message/delivery-status",
        b"multipart/digest",
    ]
)
ENCODINGS = st.sampled_from([b"", b"base64", b"quoted-printable", b"8bit", b"x-uuencode"])
BODIES = st.one_of(
    st.binary(max_size=200),
    st.lists(st.one_of(PIECES, st.just(b"--b"), st.just(b"\r\n")), max_size=30).map(b"".join),
)


def leaf(content_type: bytes, encoding: bytes, extra: bytes, body: bytes) -> bytes:
    head = b"Content-Type: " + content_type + b"\r\n"
    if encoding:
        head += b"Content-Transfer-Encoding: " + encoding + b"\r\n"
    if extra:
        head += extra + b"\r\n"
    return head + b"\r\n" + body


def multipart(boundary: bytes, parts: list[bytes], closed: bool, preamble: bytes) -> bytes:
    body = preamble + b"".join(b"\r\n--" + boundary + b"\r\n" + part for part in parts)
    if closed:
        body += b"\r\n--" + boundary + b"--\r\n"
    return b'Content-Type: multipart/mixed; boundary="' + boundary + b'"\r\n\r\n' + body


LEAVES = st.builds(leaf, CONTENT_TYPES, ENCODINGS, HEADERS, BODIES)
BOUNDARIES = st.sampled_from([b"b", b"b1", b"a:b", b"", b"x" * 70, b"b\xff"])
TREES = st.recursive(
    LEAVES,
    lambda inner: st.builds(
        multipart, BOUNDARIES, st.lists(inner, max_size=4), st.booleans(), BODIES
    ),
    max_leaves=12,
)


def deep(levels: int, kind: int, bottom: bytes) -> bytes:
    """Nesting hundreds deep: multiparts, message/rfc822 or unclosed digests."""
    if kind == 0:
        return (
            b"".join(
                b'Content-Type: multipart/mixed; boundary="d%d"\r\n\r\n--d%d\r\n' % (i, i)
                for i in range(levels)
            )
            + bottom
        )
    if kind == 1:
        return b"Content-Type: message/rfc822\r\n\r\n" * levels + bottom
    return b'Content-Type: multipart/digest; boundary="g"\r\n\r\n--g\r\n' * levels + bottom


DEEP = st.builds(deep, st.integers(0, 400), st.integers(0, 2), BODIES)


@st.composite
def messages(draw: st.DrawFn) -> bytes:
    top = draw(HEADERS)
    structure = draw(st.one_of(TREES, DEEP, BODIES.map(lambda body: b"\r\n" + body)))
    raw = top + b"\r\n" + structure
    newline = draw(st.sampled_from([b"\r\n", b"\n", b"\r"]))
    if newline != b"\r\n":
        raw = raw.replace(b"\r\n", newline)
    for _ in range(draw(st.integers(0, 3))):  # raw random bytes spliced in anywhere
        at = draw(st.integers(0, len(raw)))
        raw = raw[:at] + draw(st.binary(max_size=20)) + raw[at:]
    return raw


def one_line_texts(parsed: ParsedMessage, participants: list[NamedAddress]) -> list[str]:
    """The texts that may be written into a header later (a lead name, a To, a file name)."""
    texts = [parsed.subject, parsed.content_type, parsed.message_id or ""]
    for mailbox in (*parsed.from_, *parsed.to, *parsed.cc, *participants):
        texts += [mailbox.name, mailbox.address]
    for attachment in parsed.attachments:
        texts += [attachment.filename, attachment.content_type]
    for mailbox in participants:
        texts += person_names(mailbox)  # a contact's name and first name
    return [*texts, lead_name(parsed.subject, participants)]


def assert_usable_address(address: str) -> None:
    local, at, domain = address.rpartition("@")
    assert at and local and domain and "@" not in domain, address
    assert len(address) <= 254, address
    assert address == address.lower() or not address.isascii(), address
    assert not any(ch.isspace() or ch in "<>[]" for ch in address), address


def run_the_path(raw: bytes) -> None:
    parsed = parse_message(raw)
    participants = participants_of(parsed, USERS, SMART_DOMAINS)
    for mailbox in participants:
        assert_usable_address(mailbox.address)
        assert mailbox.address not in USERS
        assert parse_smart_address(mailbox.address, SMART_DOMAINS) is None  # ours are left out
    for mailbox in (*parsed.to, *parsed.cc):
        smart = parse_smart_address(mailbox.address, SMART_DOMAINS)
        if smart is not None:
            assert parse_smart_address(str(smart), SMART_DOMAINS) == smart
    for text in one_line_texts(parsed, participants):
        assert not CONTROL.search(text), repr(text)
    stored = [parsed.text, parsed.html, *parsed.headers, *parsed.headers.values()]
    for text in stored + one_line_texts(parsed, participants):
        assert "\x00" not in text
        text.encode("utf-8", "strict")  # no lone surrogates: every text column takes it


@pytest.mark.timeout(300)
@settings(
    max_examples=250,
    deadline=timedelta(seconds=2),
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(messages())
def test_hostile_messages_through_parse_participants_and_routing(raw: bytes) -> None:
    run_the_path(raw)


@pytest.mark.timeout(120)
@settings(max_examples=100, deadline=timedelta(seconds=2), database=None)
@given(st.binary(max_size=5_000))
def test_random_bytes_through_parse_participants_and_routing(raw: bytes) -> None:
    run_the_path(raw)
