"""Parsing raw bytes into a ParsedMessage: decoded, cleaned, bounded, and never raising."""

import hashlib
from datetime import UTC, datetime
from email.message import EmailMessage

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crmmail.mail.limits import bound_message
from crmmail.mail.message import (
    MAX_DEPTH,
    MAX_FIELD_BYTES,
    MAX_HEADER_BLOCK_BYTES,
    MAX_HEADER_FIELDS,
    MAX_PARTS,
    NamedAddress,
    ParsedMessage,
    clean_text,
    parse_message,
)

# --- helpers -------------------------------------------------------------------------------------


def text_fields(parsed: ParsedMessage) -> list[str]:
    """Every ``str`` a ParsedMessage carries towards a text column."""
    fields = [parsed.subject, parsed.text, parsed.html, parsed.content_type]
    if parsed.message_id is not None:
        fields.append(parsed.message_id)
    for mailbox in (*parsed.from_, *parsed.to, *parsed.cc):
        fields += [mailbox.name, mailbox.address]
    for name, value in parsed.headers.items():
        fields += [name, value]
    for attachment in parsed.attachments:
        fields += [attachment.filename, attachment.content_type]
    fields += parsed.defects + parsed.limits
    return fields


def assert_clean(parsed: ParsedMessage) -> None:
    for value in text_fields(parsed):
        assert isinstance(value, str)
        assert "\x00" not in value, value
        value.encode("utf-8", "strict")


def nested(levels: int) -> bytes:
    """A text part inside ``levels`` nested multipart/mixed containers."""
    body, content_type = b"hello from the bottom", b"text/plain"
    for level in range(levels):
        boundary = b"b%d" % level
        body = (
            b"--" + boundary + b"\r\nContent-Type: " + content_type + b"\r\n\r\n"
            b"" + body + b"\r\n--" + boundary + b"--\r\n"
        )
        content_type = b'multipart/mixed; boundary="' + boundary + b'"'
    return b"Content-Type: " + content_type + b"\r\n\r\n" + body


# --- clean_text ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("plain", "plain"),
        ("Jürgen Groß ✓", "Jürgen Groß ✓"),
        ("a\x00b", "ab"),
        ("\x00\x00", ""),
        ("a\udcffb", "a\ufffdb"),
        ("caf\udcc3\udca9", "café"),
        ("\ud800", "\ufffd"),
        ("a\x00\udc80\ud83d", "a\ufffd\ufffd"),
        ("tab\tand\nnewline", "tab\tand\nnewline"),
        ("", ""),
    ],
)
def test_clean_text(text: str, expected: str) -> None:
    assert clean_text(text) == expected


# --- addresses and names -------------------------------------------------------------------------


def test_encoded_display_name_is_decoded_and_the_address_lower_cased() -> None:
    parsed = parse_message(
        b"From: =?utf-8?q?J=C3=BCrgen_Gro=C3=9F?= <JG@X.test>\r\n"
        b"To: Ann Lee <Ann@Corp.Test>, bob@corp.test\r\n"
        b"Cc: =?iso-8859-1?q?Fran=E7ois?= <F@Corp.test>\r\n"
        b"Cc: carol@corp.test\r\n"
        b"Subject: hi\r\n\r\nbody\r\n"
    )
    assert parsed.from_ == [NamedAddress("Jürgen Groß", "jg@x.test")]
    assert parsed.to == [
        NamedAddress("Ann Lee", "ann@corp.test"),
        NamedAddress("", "bob@corp.test"),
    ]
    assert parsed.cc == [
        NamedAddress("François", "f@corp.test"),
        NamedAddress("", "carol@corp.test"),
    ]
    assert parsed.defects == []


def test_display_name_white_space_is_collapsed() -> None:
    parsed = parse_message(b'From: "  Ann \t  Lee  " <ann@corp.test>\r\n\r\nbody\r\n')
    assert parsed.from_ == [NamedAddress("Ann Lee", "ann@corp.test")]


def test_raw_utf8_display_name_is_decoded() -> None:
    """An SMTPUTF8 (RFC 6532) From carries its name as raw UTF-8: it reads as written."""
    parsed = parse_message(
        "From: Jürgen Groß <jg@x.test>\r\nSubject: Grüße\r\n\r\nbody\r\n".encode()
    )
    assert parsed.subject == "Grüße"
    assert parsed.from_ == [NamedAddress("Jürgen Groß", "jg@x.test")]


@pytest.mark.parametrize(
    "raw",
    [
        "Subject: Grüße aus Köln\r\nFrom: Jürgen <jg@x.test>\r\nX-Note: café\r\n\r\nbody".encode(),
        b"Subject: Gr\xfc\xdfe aus K\xf6ln\r\nFrom: J\xfcrgen <jg@x.test>\r\n"
        b"X-Note: caf\xe9\r\n\r\nbody",
        b"Subject: \xff\xfe\xfd\r\nFrom: \xc3 <jg@x.test>\r\nTo: \x80@x.test\r\n\r\nbody",
    ],
    ids=["utf-8", "latin-1", "invalid"],
)
def test_eight_bit_headers_do_not_raise(raw: bytes) -> None:
    parsed = parse_message(raw)
    assert_clean(parsed)
    assert parsed.text == "body"
    assert [m.address for m in parsed.from_] == ["jg@x.test"]
    assert parsed.subject  # something of it is kept, undecodable bytes replaced
    assert set(parsed.headers) >= {"subject", "from"}


@pytest.mark.parametrize(
    ("to", "expected"),
    [
        # The strict parser swallows the rest into the quoted string: nothing usable, no crash.
        (b'"unterminated <a@b.test>, <c@d.test>', []),
        # The strict parser raises on these; the lenient parser still finds the good address.
        (b"c@d.test, a@", [NamedAddress("", "c@d.test")]),
        (b"<", []),
        (b'"', []),
        (b":;", []),
        (b"undisclosed-recipients:;", []),
        (
            b"group: a@b.test;, c@d.test",
            [NamedAddress("", "a@b.test"), NamedAddress("", "c@d.test")],
        ),
        (b"<@relay.test:b@c.test>", [NamedAddress("", "b@c.test")]),
        (b"not an address", []),
    ],
)
def test_malformed_address_headers_fall_back_without_raising(
    to: bytes, expected: list[NamedAddress]
) -> None:
    parsed = parse_message(b"From: ann@corp.test\r\nTo: " + to + b"\r\n\r\nbody\r\n")
    assert parsed.to == expected
    assert parsed.from_ == [NamedAddress("", "ann@corp.test")]
    assert parsed.text == "body\r\n"
    assert_clean(parsed)


def test_a_header_the_strict_parser_raises_on_is_read_without_error() -> None:
    # policy.default raises IndexError on this To; the lenient reading keeps the good address.
    parsed = parse_message(b"To: c@d.test, a@\r\n\r\nbody\r\n")
    assert parsed.to == [NamedAddress("", "c@d.test")]
    assert parsed.header("to") == "c@d.test, a@"


# --- Message-ID, subject, date, headers ---------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (b"", None),
        (b"Message-ID: <abc@x.test>\r\n", "abc@x.test"),
        (b"Message-Id:   <abc@x.test>  \r\n", "abc@x.test"),
        (b"Message-ID: abc@x.test\r\n", "abc@x.test"),
        (b"Message-ID: <abc@x.test> (comment)\r\n", "abc@x.test"),
        (b"Message-ID:\r\n <folded@x.test>\r\n", "folded@x.test"),
        (b"Message-ID: \r\n", None),
        (b"Message-ID: <>\r\n", None),
        (b"Message-ID: <" + b"a" * 300 + b"@x.test>\r\n", "a" * 250),
    ],
)
def test_message_id(header: bytes, expected: str | None) -> None:
    parsed = parse_message(header + b"Subject: s\r\n\r\nbody\r\n")
    assert parsed.message_id == expected


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (b"", ""),
        (b"Subject: Big order\r\n", "Big order"),
        (b"Subject:   Re:   Big \t order  \r\n", "Re: Big order"),
        (b"Subject: Big\r\n order\r\n", "Big order"),
        (b"Subject: =?utf-8?q?caf=C3=A9?=\r\n =?utf-8?q?_au_lait?=\r\n", "café au lait"),
        (b"Subject: =?utf-8?b?R3LDvMOfZQ==?=\r\n", "Grüße"),
        (b"Subject: =?x-unknown?q?abc?=\r\n", "abc"),
    ],
)
def test_subject_is_decoded_and_white_space_collapsed(header: bytes, expected: str) -> None:
    assert parse_message(header + b"From: a@b.test\r\n\r\nbody\r\n").subject == expected


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (b"Date: Tue, 02 Jan 2024 10:00:00 +0100\r\n", datetime(2024, 1, 2, 9, 0, tzinfo=UTC)),
        (b"Date: Tue, 02 Jan 2024 10:00:00 -0000\r\n", datetime(2024, 1, 2, 10, 0, tzinfo=UTC)),
        (b"Date: yesterday\r\n", None),
        (b"Date: \r\n", None),
        (b"", None),
    ],
)
def test_date(header: bytes, expected: datetime | None) -> None:
    assert parse_message(header + b"Subject: s\r\n\r\nbody\r\n").date == expected


def test_headers_keep_the_first_value_under_a_lower_case_name() -> None:
    parsed = parse_message(
        b"X-Mailer: one\r\nx-mailer: two\r\nAuto-Submitted: auto-replied\r\n"
        b"Subject: =?utf-8?q?caf=C3=A9?=\r\n\r\nbody\r\n"
    )
    assert parsed.headers == {
        "x-mailer": "one",
        "auto-submitted": "auto-replied",
        "subject": "café",
    }
    assert parsed.header("X-MAILER") == "one"
    assert parsed.header("Auto-Submitted") == "auto-replied"
    assert parsed.header("precedence") == ""


# --- bodies and attachments ----------------------------------------------------------------------


def test_single_part_text() -> None:
    message = EmailMessage()
    message["Subject"] = "s"
    message.set_content("Grüße,\nAnn\n")
    parsed = parse_message(message.as_bytes())
    assert parsed.content_type == "text/plain"
    assert parsed.text == "Grüße,\nAnn\n"
    assert parsed.html == ""
    assert parsed.attachments == []


def test_multipart_alternative_gives_text_and_html() -> None:
    message = EmailMessage()
    message["Subject"] = "s"
    message.set_content("plain Grüße\n")
    message.add_alternative("<p>html Grüße</p>\n", subtype="html")
    parsed = parse_message(message.as_bytes())
    assert parsed.content_type == "multipart/alternative"
    assert parsed.text == "plain Grüße\n"
    assert parsed.html == "<p>html Grüße</p>\n"
    assert parsed.attachments == []
    assert parsed.defects == []


def test_attachments_keep_name_type_and_bytes() -> None:
    pdf = b"%PDF-1.4\x00\x01\xff binary"
    message = EmailMessage()
    message["Subject"] = "quote"
    message.set_content("see attached\n")
    message.add_alternative("<p>see attached</p>\n", subtype="html")
    message.add_attachment(pdf, maintype="application", subtype="pdf", filename="Quote Q1.pdf")
    message.add_attachment("a,b\n1,2\n", subtype="csv", filename="rows.csv")
    message.add_attachment("notes\n", filename="Grüße.txt")
    parsed = parse_message(message.as_bytes())
    assert parsed.content_type == "multipart/mixed"
    assert parsed.text == "see attached\n"
    assert parsed.html == "<p>see attached</p>\n"
    assert [(a.filename, a.content_type) for a in parsed.attachments] == [
        ("Quote Q1.pdf", "application/pdf"),
        ("rows.csv", "text/csv"),
        ("Grüße.txt", "text/plain"),
    ]
    first, second, third = parsed.attachments
    assert first.content == pdf
    assert first.sha256 == hashlib.sha256(pdf).hexdigest()
    assert second.content == b"a,b\n1,2\n"
    assert third.content == b"notes\n"
    assert third.sha256 == hashlib.sha256(b"notes\n").hexdigest()


def test_an_inline_image_is_an_attachment_without_a_name() -> None:
    message = EmailMessage()
    message.set_content("text\n")
    message.add_related(b"\x89PNG data", maintype="image", subtype="png", cid="<img1@x.test>")
    parsed = parse_message(message.as_bytes())
    assert parsed.text == "text\n"
    assert [(a.filename, a.content_type, a.content) for a in parsed.attachments] == [
        ("", "image/png", b"\x89PNG data")
    ]


@pytest.mark.parametrize(
    "charset",
    [
        # Unknown to Python.
        "x-unknown",
        "no-such-charset-at-all",
        # Known to Python but not text encodings.
        "base64",
        "rot13",
        "zlib",
        # Known text encodings that refuse the "replace" error handler or never decode.
        "undefined",
        "idna",
        "punycode",
    ],
)
def test_a_charset_that_cannot_decode_gives_text_and_a_defect(charset: str) -> None:
    raw = (
        f"Subject: s\r\nContent-Type: text/plain; charset={charset}\r\n\r\n".encode()
        + b"hello caf\xc3\xa9 and \xe9\r\n"
    )
    parsed = parse_message(raw)
    assert parsed.text.startswith("hello caf")
    assert any(charset in defect for defect in parsed.defects)
    assert_clean(parsed)


def test_a_charset_with_a_nul_gives_text_and_a_defect() -> None:
    parsed = parse_message(b'Content-Type: text/plain; charset="x\x00y"\r\n\r\nhello\r\n')
    assert parsed.text.startswith("hello")
    assert any("charset" in defect for defect in parsed.defects)
    assert_clean(parsed)


def test_nul_bytes_and_lone_surrogates_never_reach_a_text_field() -> None:
    raw = (
        b"Message-ID: <a\x00b@x.test>\r\n"
        b"Subject: sub\x00ject =?utf-8?q?bad=E2=80?= \xff\r\n"
        b'From: "N\x00ame =?utf-8?q?=ED=A0=80?=" <a\x00b@c.test>\r\n'
        b"To: =?utf-8?q?=FF=FE?= <to@x.test>\r\n"
        b"X-Raw: \x00\xed\xa0\x80\xff\r\n"
        b'Content-Type: multipart/mixed; boundary="b"\r\n'
        b"\r\n"
        b"--b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
        b"te\x00xt \xed\xa0\x80 \xff\r\n"
        b"--b\r\nContent-Type: text/html; charset=utf-8\r\n\r\n"
        b"<p>ht\x00ml \xed\xb2\x80</p>\r\n"
        b"--b\r\nContent-Type: application/octet-stream\r\n"
        b'Content-Disposition: attachment; filename="f\x00\xff.bin"\r\n\r\n'
        b"\x00\x01\r\n"
        b"--b--\r\n"
    )
    parsed = parse_message(raw)
    assert_clean(parsed)
    assert parsed.message_id == "ab@x.test"
    assert parsed.subject.startswith("subject bad")
    assert parsed.text.startswith("text ")
    assert parsed.html.startswith("<p>html ")
    assert [m.address for m in parsed.to] == ["to@x.test"]
    assert len(parsed.attachments) == 1
    assert parsed.attachments[0].content == b"\x00\x01"


# --- malformed structure -------------------------------------------------------------------------


def test_multipart_without_its_final_boundary() -> None:
    parsed = parse_message(
        b'Subject: s\r\nContent-Type: multipart/alternative; boundary="b"\r\n\r\n'
        b"--b\r\nContent-Type: text/plain\r\n\r\nhello\r\n"
        b"--b\r\nContent-Type: text/html\r\n\r\n<p>hi"
    )
    assert parsed.text == "hello"
    assert parsed.html == "<p>hi"
    assert "CloseBoundaryNotFoundDefect" in parsed.defects


def test_multipart_without_any_boundary() -> None:
    parsed = parse_message(
        b'Content-Type: multipart/mixed; boundary="never-used"\r\n\r\njust text\r\n'
    )
    assert "StartBoundaryNotFoundDefect" in parsed.defects
    assert parsed.content_type == "multipart/mixed"
    assert_clean(parsed)


def test_message_without_a_header_body_separator() -> None:
    parsed = parse_message(b"Subject: hi\r\nFrom: a@b.test\r\nhello body line\r\n")
    assert parsed.subject == "hi"
    assert parsed.from_ == [NamedAddress("", "a@b.test")]
    assert "hello body line" in parsed.text
    assert "MissingHeaderBodySeparatorDefect" in parsed.defects


@pytest.mark.parametrize("raw", [b"", b"\r\n", b"\r\n\r\n", b"no headers at all", b"\x00" * 10])
def test_degenerate_input(raw: bytes) -> None:
    parsed = parse_message(raw)
    assert parsed.message_id is None
    assert parsed.from_ == []
    assert_clean(parsed)


def test_nesting_up_to_max_depth_is_read() -> None:
    parsed = parse_message(nested(MAX_DEPTH))
    assert parsed.text == "hello from the bottom"
    assert parsed.limits == []


@pytest.mark.parametrize("levels", [MAX_DEPTH + 1, MAX_DEPTH + 30])
def test_nesting_beyond_max_depth_records_a_defect(levels: int) -> None:
    parsed = parse_message(nested(levels))
    assert parsed.text == ""
    assert f"MIME nesting deeper than {MAX_DEPTH}: that part not parsed" in parsed.limits


def test_more_than_max_parts_records_a_defect() -> None:
    parts = b"".join(
        b"--b\r\nContent-Type: application/octet-stream\r\n\r\n%d\r\n" % i
        for i in range(MAX_PARTS + 50)
    )
    parsed = parse_message(
        b'Content-Type: multipart/mixed; boundary="b"\r\n\r\n' + parts + b"--b--\r\n"
    )
    assert f"more than {MAX_PARTS} MIME parts: rest not parsed" in parsed.limits
    assert len(parsed.attachments) == MAX_PARTS


# --- bounds on hostile headers -------------------------------------------------------------------


def assert_field_cut(parsed: ParsedMessage) -> None:
    assert any(note.startswith("header field too long: cut") for note in parsed.limits)


@pytest.mark.timeout(10)
def test_a_200_kb_subject_of_encoded_words_is_capped() -> None:
    words = b" ".join([b"=?utf-8?q?caf=C3=A9?="] * 10_000)
    assert len(words) > 200_000
    parsed = parse_message(b"Subject: " + words + b"\r\nFrom: ann@corp.test\r\n\r\nthe body\r\n")
    assert_field_cut(parsed)
    assert 0 < len(parsed.subject) <= MAX_FIELD_BYTES
    assert parsed.subject.startswith("café")
    assert parsed.from_ == [NamedAddress("", "ann@corp.test")]
    assert parsed.text == "the body\r\n"


@pytest.mark.timeout(10)
def test_a_header_of_20000_dots_is_capped() -> None:
    parsed = parse_message(b"To: " + b"." * 20_000 + b"\r\nSubject: s\r\n\r\nthe body\r\n")
    assert_field_cut(parsed)
    assert parsed.to == []
    assert parsed.subject == "s"
    assert len(parsed.header("to")) <= MAX_FIELD_BYTES
    assert parsed.text.startswith("the body")


@pytest.mark.timeout(10)
@pytest.mark.parametrize("name", [b"To", b"Subject", b"X-Words"])
def test_a_header_of_8000_encoded_words_is_capped(name: bytes) -> None:
    words = b" ".join([b"=?utf-8?q?a?="] * 8_000)
    parsed = parse_message(name + b": " + words + b" <a@b.test>\r\nSubject: s\r\n\r\nbody\r\n")
    assert_field_cut(parsed)
    assert len(parsed.header(name.decode())) <= MAX_FIELD_BYTES
    assert len(parsed.subject) <= MAX_FIELD_BYTES
    assert parsed.text.startswith("body")
    assert_clean(parsed)


@pytest.mark.timeout(10)
def test_1000_header_fields_are_capped() -> None:
    fields = b"".join(b"X-Field-%d: value\r\n" % i for i in range(1_000))
    parsed = parse_message(b"Subject: first\r\n" + fields + b"From: late@x.test\r\n\r\nbody\r\n")
    assert "too many header fields: cut" in parsed.limits
    assert len(parsed.headers) <= MAX_HEADER_FIELDS
    assert parsed.subject == "first"
    assert "x-field-0" in parsed.headers
    assert "x-field-999" not in parsed.headers
    assert parsed.from_ == []
    assert parsed.text.startswith("body")


@pytest.mark.timeout(10)
def test_a_header_block_over_the_limit_is_cut() -> None:
    fields = b"".join(b"X-F%d: " % i + b"v" * 1_000 + b"\r\n" for i in range(400))
    assert len(fields) > MAX_HEADER_BLOCK_BYTES
    parsed = parse_message(b"Subject: first\r\n" + fields + b"\r\nbody\r\n")
    assert "header block too large: cut" in parsed.limits
    assert parsed.subject == "first"
    assert len(parsed.headers) < 400
    assert_clean(parsed)


@pytest.mark.timeout(10)
def test_a_headers_only_message_is_capped_too() -> None:
    """Without a blank line the whole message is header block: the same bounds apply."""
    words = b" ".join([b"=?utf-8?q?caf=C3=A9?="] * 10_000)
    parsed = parse_message(b"Subject: " + words + b"\r\n")
    assert_field_cut(parsed)
    assert len(parsed.subject) <= MAX_FIELD_BYTES


@pytest.mark.timeout(10)
def test_a_headers_only_message_with_1000_fields_is_capped_too() -> None:
    fields = b"".join(b"X-Field-%d: value\r\n" % i for i in range(1_000))
    parsed = parse_message(b"Subject: first\r\n" + fields)
    assert "too many header fields: cut" in parsed.limits
    assert len(parsed.headers) <= MAX_HEADER_FIELDS


@pytest.mark.timeout(10)
def test_many_address_headers_of_dots_stay_bounded() -> None:
    """Each field is under the size cap, but together they must not stall the parser."""
    field = b"To: " + b"." * (MAX_FIELD_BYTES - 1_000) + b"\r\n"
    raw = field * 12 + b"Subject: s\r\n\r\nbody\r\n"
    assert len(raw) < MAX_HEADER_BLOCK_BYTES
    parsed = parse_message(raw)
    assert parsed.to == []
    assert parsed.subject == "s"


def test_bound_message_leaves_ordinary_mail_alone() -> None:
    raw = b"Subject: s\r\nTo: a@b.test\r\n\r\nbody\r\n\r\nmore\r\n"
    notes: list[str] = []
    assert bound_message(raw, notes) is raw
    assert notes == []


def test_bound_message_cuts_only_the_header_block() -> None:
    body = b"x" * (MAX_FIELD_BYTES * 2) + b"\r\n"
    raw = b"Subject: " + b"w " * MAX_FIELD_BYTES + b"\r\nTo: a@b.test\r\n\r\n" + body
    defects: list[str] = []
    capped = bound_message(raw, defects)
    head, _, rest = capped.partition(b"\r\n\r\n")
    assert rest == body
    first, second = head.split(b"\r\n")
    assert first.startswith(b"Subject: w w")
    assert len(first) <= MAX_FIELD_BYTES
    assert second == b"To: a@b.test"
    assert len(defects) == 1


# --- properties ----------------------------------------------------------------------------------

HEADER_NAMES = st.sampled_from(
    [
        "From",
        "To",
        "Cc",
        "Subject",
        "Message-ID",
        "Date",
        "Content-Type",
        "Content-Disposition",
        "Content-Transfer-Encoding",
        "Auto-Submitted",
        "X-Anything",
    ]
)
TOKENS = st.sampled_from(
    [
        "=?utf-8?q?",
        "=?utf-8?b?",
        "=?x-unknown?q?",
        "=?iso-8859-1?q?",
        "?=",
        "=C3=A9",
        "=E2=80",
        "=00",
        "<",
        ">",
        '"',
        "\\",
        "@",
        ",",
        ";",
        ":",
        "(",
        ")",
        "[",
        "]",
        ".",
        " ",
        "\t",
        "\r\n ",
        "a@b.test",
        "multipart/mixed",
        "text/plain",
        "text/html",
        "message/rfc822",
        "boundary=",
        "charset=",
        "filename*=utf-8''",
        "name=",
        "%FF",
        "base64",
        "quoted-printable",
        "\x00",
        "\x7f",
        "é",
        "\U0001f600",
    ]
)
HEADER_VALUES = st.lists(
    st.one_of(TOKENS, st.text(st.characters(codec="utf-8"), max_size=8)), max_size=20
).map("".join)
HEADER_LINES = st.lists(
    st.tuples(HEADER_NAMES, HEADER_VALUES).map(lambda pair: f"{pair[0]}: {pair[1]}"),
    max_size=12,
)
BODIES = st.one_of(
    st.binary(max_size=300),
    st.lists(st.one_of(TOKENS, st.just("--"), st.just("\r\n")), max_size=40).map(
        lambda parts: "".join(parts).encode("utf-8", "surrogateescape")
    ),
)


@pytest.mark.timeout(60)
@settings(max_examples=200, deadline=None, database=None)
@given(st.binary(max_size=2_000))
def test_arbitrary_bytes_never_raise_and_give_clean_text(raw: bytes) -> None:
    assert_clean(parse_message(raw))


@pytest.mark.timeout(60)
@settings(max_examples=200, deadline=None, database=None)
@given(HEADER_LINES, st.sampled_from(["\r\n", "\n"]), BODIES, st.sampled_from(["utf-8", "latin-1"]))
def test_arbitrary_header_text_never_raises_and_gives_clean_text(
    lines: list[str], newline: str, body: bytes, encoding: str
) -> None:
    head = "\r\n".join(lines).encode(encoding, "replace")
    raw = head + newline.encode() * 2 + body
    assert_clean(parse_message(raw))
