"""Parser abuse: inputs on which Python's email package recurses or goes quadratic are bounded.

Each hostile input is one the unbounded parser either raised ``RecursionError`` on or took
seconds over (figures in ``bench/parser_abuse.py``); here each must parse, keep what matters
(From, Subject, the text) and say what was cut in ``ParsedMessage.limits``. Ordinary mail at
the generous end (100 recipients, a long Received chain, deep forwards) must not be cut at all.
"""

import logging
import sys

import pytest

from crmmail.config import Settings
from crmmail.mail.limits import (
    LINE_BUDGET_SPENT,
    MAX_DEPTH,
    MAX_PARAMETERS,
    MAX_PARTS,
    bound_message,
)
from crmmail.mail.message import (
    MAX_ADDRESS_LIST_BYTES,
    MAX_ADDRESS_NESTING,
    MAX_ADDRESSES,
    MAX_ENCODED_WORDS,
    NamedAddress,
    ParsedMessage,
    parse_message,
)
from crmmail.processor.worker import Worker
from crmmail.storage.database import Database
from crmmail.storage.repositories.inbound import InboundRepository, SpoolEntry

TAIL = b"\r\nFrom: Ann <ann@corp.test>\r\nSubject: s\r\n\r\nthe body\r\n"
WORD = b"=?utf-8?q?caf=C3=A9?="


def nested_multipart(levels: int, bottom: bytes, content_type: bytes = b"text/plain") -> bytes:
    head = b"".join(
        b'Content-Type: multipart/mixed; boundary="b%d"\r\n\r\n--b%d\r\n' % (level, level)
        for level in range(levels)
    )
    return (
        b"From: ann@corp.test\r\n" + head + b"Content-Type: " + content_type + b"\r\n\r\n" + bottom
    )


def closed_nesting(levels: int, bottom: bytes) -> bytes:
    """``levels`` nested multiparts, each closed, with a sibling text part after the nest."""
    inner = b"Content-Type: text/plain\r\n\r\n" + bottom
    for level in range(levels):
        inner = (
            b'Content-Type: multipart/mixed; boundary="n%d"\r\n\r\n--n%d\r\n' % (level, level)
            + inner
            + b"\r\n--n%d--\r\n" % level
        )
    return (
        b'From: ann@corp.test\r\nContent-Type: multipart/mixed; boundary="top"\r\n\r\n'
        b"--top\r\nContent-Type: text/plain\r\n\r\nfirst\r\n--top\r\n" + inner + b"--top\r\n"
        b"Content-Type: application/pdf\r\n\r\nafter\r\n--top--\r\n"
    )


def assert_kept(parsed: ParsedMessage) -> None:
    assert parsed.from_ == [NamedAddress("Ann", "ann@corp.test")]
    assert parsed.subject == "s"
    assert parsed.text == "the body\r\n"


# --- address headers -----------------------------------------------------------------------------


@pytest.mark.parametrize("char", [b"(", b":"], ids=["comments", "groups"])
def test_deeply_nested_address_fields_are_skipped_not_a_recursion_error(char: bytes) -> None:
    parsed = parse_message(b"To: " + char * 5_000 + b"\r\nCc: bob@corp.test" + TAIL)
    assert_kept(parsed)
    assert parsed.to == []
    assert parsed.cc == [NamedAddress("", "bob@corp.test")]
    assert f"to: nested deeper than {MAX_ADDRESS_NESTING}: a field skipped" in parsed.limits


def test_ordinary_comments_and_groups_are_read() -> None:
    parsed = parse_message(
        b'To: Ann (sales (EU)) <ann@corp.test>, team: bob@corp.test, "a:(b" <c@corp.test>;\r\n'
        b"Cc: <@relay.test:dan@corp.test>\r\n\r\nx"
    )
    assert [m.address for m in parsed.to] == ["ann@corp.test", "bob@corp.test", "c@corp.test"]
    assert [m.address for m in parsed.cc] == ["dan@corp.test"]
    assert parsed.limits == []


def test_address_text_is_read_up_to_its_budget() -> None:
    field = b"To: " + b"@" * 15_000 + b"\r\n"
    late = b"To: late@corp.test\r\n"
    parsed = parse_message(field * 12 + late + TAIL[2:])
    assert_kept(parsed)
    assert parsed.to == []
    assert f"to: more than {MAX_ADDRESS_LIST_BYTES} bytes of addresses: cut" in parsed.limits


def test_more_than_max_addresses_are_not_read() -> None:
    fields = b"".join(
        b"Cc: " + b", ".join(b"u%d.%d@x.test" % (f, i) for i in range(200)) + b"\r\n"
        for f in range(6)
    )
    parsed = parse_message(fields + TAIL[2:])
    assert len(parsed.cc) == MAX_ADDRESSES
    assert parsed.cc[0].address == "u0.0@x.test"
    assert f"cc: more than {MAX_ADDRESSES} addresses: rest not read" in parsed.limits


@pytest.mark.parametrize(
    "value",
    [b"a@", b"@b.test", b"a@@b.test", b"<a\x01b@x.test>", b'"a\x7fb"@x.test', b"a b@x.test"],
)
def test_unusable_addresses_are_dropped(value: bytes) -> None:
    parsed = parse_message(b"To: " + value + b", ok@x.test\r\n\r\nbody")
    assert parsed.to == [NamedAddress("", "ok@x.test")]


# --- encoded-words, parameters, header blocks of parts ---------------------------------------


def test_encoded_words_past_the_cap_are_cut() -> None:
    words = b" ".join([WORD] * (MAX_ENCODED_WORDS + 50))
    parsed = parse_message(b"Subject: " + words + b"\r\nFrom: ann@corp.test\r\n\r\nbody")
    assert parsed.subject == "café" * MAX_ENCODED_WORDS
    assert f"more than {MAX_ENCODED_WORDS} encoded-words in subject: cut" in parsed.limits


def test_a_long_encoded_subject_is_decoded_whole() -> None:
    words = b" ".join([WORD] * 40)
    parsed = parse_message(b"Subject: " + words + b"\r\n\r\nbody")
    assert parsed.subject == "café" * 40
    assert parsed.limits == []


@pytest.mark.timeout(10)
def test_a_part_file_name_of_20000_encoded_words_is_bounded() -> None:
    raw = (
        b'From: Ann <ann@corp.test>\r\nSubject: s\r\nContent-Type: multipart/mixed; boundary="b"'
        b"\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nthe body\r\n"
        b'--b\r\nContent-Disposition: attachment; filename="' + b" ".join([WORD] * 20_000) + b'"'
        b"\r\n\r\nfile\r\n--b--\r\n"
    )
    parsed = parse_message(raw)
    assert parsed.text == "the body"
    [attachment] = parsed.attachments
    assert attachment.content == b"file"
    assert 0 < len(attachment.filename) <= len('"café') * MAX_ENCODED_WORDS  # cut: no closing "
    assert any(note.startswith("header field too long: cut") for note in parsed.limits)


def test_a_part_header_block_is_capped_like_the_message_header() -> None:
    raw = (
        b'From: a@b.test\r\nContent-Type: multipart/mixed; boundary="b"\r\n\r\n--b\r\n'
        + b"X-Big: x\r\n" * 2_000
        + b"Content-Type: text/plain\r\n\r\nhi\r\n--b--\r\n"
    )
    parsed = parse_message(raw)
    assert "too many header fields: cut" in parsed.limits
    assert parsed.defects == [] or parsed.text  # still parsed, whichever way the part reads


def test_content_type_parameters_are_capped() -> None:
    params = b"; ".join(b'p%d="a;b"' % i for i in range(2_000))
    raw = (
        b'From: a@b.test\r\nContent-Type: multipart/mixed; boundary="b"\r\n\r\n--b\r\n'
        b"Content-Type: text/plain; charset=utf-8; " + params + b"\r\n\r\nhi\r\n--b--\r\n"
    )
    parsed = parse_message(raw)
    assert parsed.text == "hi"
    assert f"more than {MAX_PARAMETERS} parameters in content-type: cut" in parsed.limits


# --- MIME structure ------------------------------------------------------------------------------


@pytest.mark.timeout(10)
def test_multipart_nesting_2000_deep_is_not_a_recursion_error() -> None:
    parsed = parse_message(nested_multipart(2_000, b"bottom\r\n"))
    assert parsed.from_ == [NamedAddress("", "ann@corp.test")]
    assert parsed.text == ""
    assert f"MIME nesting deeper than {MAX_DEPTH}: that part not parsed" in parsed.limits


@pytest.mark.timeout(10)
def test_message_rfc822_nesting_2000_deep_is_not_a_recursion_error() -> None:
    raw = b"From: ann@corp.test\r\n" + b"Content-Type: message/rfc822\r\n\r\n" * 2_000 + b"x"
    parsed = parse_message(raw)
    assert parsed.from_ == [NamedAddress("", "ann@corp.test")]
    assert f"MIME nesting deeper than {MAX_DEPTH}: that part not parsed" in parsed.limits


@pytest.mark.timeout(10)
def test_digest_parts_count_as_nested_messages() -> None:
    """A digest's parts are ``message/rfc822`` without saying so: they nest one more level."""
    inner = b"Subject: bottom\r\n\r\nbottom text\r\n"
    for level in range(MAX_DEPTH):
        inner = (
            b'Content-Type: multipart/digest; boundary="d%d"\r\n\r\n--d%d\r\n' % (level, level)
            + inner
            + b"\r\n--d%d--\r\n" % level
        )
    parsed = parse_message(b"From: ann@corp.test\r\n" + inner)
    assert f"MIME nesting deeper than {MAX_DEPTH}: that part not parsed" in parsed.limits
    assert parsed.text == ""


def test_only_the_too_deep_part_is_left_out() -> None:
    parsed = parse_message(closed_nesting(MAX_DEPTH + 5, b"deep"))
    assert parsed.text == "first"
    assert [a.content for a in parsed.attachments] == [b"after"]
    assert f"MIME nesting deeper than {MAX_DEPTH}: that part not parsed" in parsed.limits


def test_nesting_within_the_limit_is_read_whole() -> None:
    parsed = parse_message(closed_nesting(MAX_DEPTH - 2, b"deep"))
    assert parsed.text == "first"
    assert parsed.limits == []
    assert b"after" in [a.content for a in parsed.attachments]


@pytest.mark.timeout(20)
def test_deep_nesting_with_many_lines_is_cut_by_line_levels() -> None:
    """Each line costs the parser one boundary test per level: 20 deep, 600,000 lines is cut."""
    parsed = parse_message(nested_multipart(MAX_DEPTH, b"l\r\n" * 600_000))
    assert LINE_BUDGET_SPENT in parsed.limits
    assert parsed.text.startswith("l\r\nl\r\n")
    assert parsed.text.count("\n") < 600_000


@pytest.mark.timeout(20)
def test_an_attachment_the_line_budget_cuts_is_not_kept_half() -> None:
    csv = b"text/csv\r\nContent-Disposition: attachment; filename=big.csv"
    parsed = parse_message(nested_multipart(MAX_DEPTH, b"1,2\r\n" * 600_000, csv))
    assert LINE_BUDGET_SPENT in parsed.limits
    assert "attachment 'big.csv' cut short: not kept" in parsed.limits
    assert parsed.attachments == []


@pytest.mark.timeout(20)
def test_a_csv_of_short_lines_near_the_size_limit_is_read_whole() -> None:
    rows = b"1001,2002,3003\r\n" * 1_400_000  # 22 MB
    raw = (
        b'From: a@b.test\r\nContent-Type: multipart/mixed; boundary="b"\r\n\r\n--b\r\n'
        b"Content-Type: text/csv\r\nContent-Disposition: attachment; filename=rows.csv\r\n\r\n"
        + rows
        + b"--b--\r\n"
    )
    parsed = parse_message(raw)
    assert parsed.limits == []
    [attachment] = parsed.attachments
    assert attachment.content == rows[:-2]  # the line end before the boundary belongs to it


def test_a_large_attachment_one_level_down_is_not_cut() -> None:
    lines = b"QUJD" * 19 + b"\r\n"
    raw = (
        b'From: a@b.test\r\nContent-Type: multipart/mixed; boundary="b"\r\n\r\n--b\r\n'
        b"Content-Type: application/pdf\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        + lines * 340_000
        + b"--b--\r\n"
    )
    parsed = parse_message(raw)
    assert parsed.limits == []
    assert len(parsed.attachments[0].content) == 57 * 340_000


def test_boundaries_on_bare_cr_lines_are_followed() -> None:
    raw = nested_multipart(MAX_DEPTH + 10, b"bottom\r").replace(b"\r\n", b"\r")
    parsed = parse_message(raw)
    assert f"MIME nesting deeper than {MAX_DEPTH}: that part not parsed" in parsed.limits


def test_a_boundary_that_looks_like_a_header_line_ends_the_part_headers() -> None:
    """``--a:b`` matches the parser's header pattern, but as an open boundary it ends the part."""
    raw = (
        b'From: a@b.test\r\nContent-Type: multipart/mixed; boundary="a:b"\r\n\r\n'
        b"--a:b\r\nContent-Type: text/plain\r\n--a:b\r\n"
        + b'Content-Type: multipart/mixed; boundary="c"\r\n\r\n--c\r\n' * 50
        + b"Content-Type: text/plain\r\n\r\nbottom\r\n--a:b--\r\n"
    )
    parsed = parse_message(raw)
    assert f"MIME nesting deeper than {MAX_DEPTH}: that part not parsed" in parsed.limits


def test_more_than_max_parts_are_cut_before_parsing() -> None:
    raw = (
        b'From: a@b.test\r\nContent-Type: multipart/mixed; boundary="b"\r\n\r\n'
        + b"--b\r\nContent-Type: application/octet-stream\r\n\r\nx\r\n" * 5_000
        + b"--b--\r\n"
    )
    notes: list[str] = []
    bounded = bound_message(raw, notes)
    assert notes == [f"more than {MAX_PARTS} MIME parts: rest not parsed"]
    assert bounded.count(b"--b\r\n") == MAX_PARTS
    assert len(parse_message(raw).attachments) == MAX_PARTS


# --- real mail at the generous end is not cut ---------------------------------------------------


def test_generous_real_mail_is_not_cut() -> None:
    received = b"".join(
        b"Received: from relay%d.example.net (relay%d.example.net [192.0.2.%d])\r\n"
        b"\tby mx.example.net with ESMTPS id %d; Tue, 2 Jan 2024 10:00:00 +0000\r\n" % (i, i, i, i)
        for i in range(60)
    )
    references = b"References: " + b"\r\n ".join(b"<%d.x@lists.example>" % i for i in range(200))
    to = b"To: " + b",\r\n ".join(b'"Person %d" <p%d@corp.test>' % (i, i) for i in range(60))
    cc = b"Cc: " + b",\r\n ".join(
        b"=?utf-8?q?J=C3=BCrgen_%d?= <j%d@corp.test>" % (i, i) for i in range(40)
    )
    raw = (
        received + references + b"\r\n" + to + b"\r\n" + cc + b"\r\n"
        b"Subject: =?utf-8?q?Gr=C3=BC=C3=9Fe?= aus K=?utf-8?q?=C3=B6?=ln\r\n"
        + closed_nesting(12, b"forwarded")
    )
    parsed = parse_message(raw)
    assert parsed.limits == []
    assert len(parsed.to) == 60
    assert len(parsed.cc) == 40
    assert parsed.cc[7] == NamedAddress("Jürgen 7", "j7@corp.test")


# --- the worker logs what was cut, and carries on -----------------------------------------------


@pytest.mark.timeout(60)
def test_the_worker_logs_the_cuts_and_processes_the_message(
    db: Database, settings: Settings, acme: int, caplog: pytest.LogCaptureFixture
) -> None:
    raw = (
        b"Cc: acme@mail.localhost\r\nTo: "
        + b"(" * 5_000
        + b"\r\n"
        + nested_multipart(2_000, b"bottom\r\n")
    )
    with db.transaction() as session:
        [inbound_id] = InboundRepository(session).spool(
            [SpoolEntry(acme, "127.0.0.1:1", "t", "ann@corp.test", ["acme@mail.localhost"], raw)]
        )
    with caplog.at_level(logging.WARNING, logger="crmmail.processor.steps.parse"):
        Worker(db, settings).run_until_idle()
    with db.transaction() as session:
        row = InboundRepository(session).get(inbound_id)
        assert row is not None
        assert row.status in {"done", "ignored"}, row.last_error
        assert row.raw == raw
    [record] = [r for r in caplog.records if r.name == "crmmail.processor.steps.parse"]
    assert record.getMessage().startswith(f"inbound {inbound_id}: parsed within limits: ")
    assert "to: nested deeper than" in record.getMessage()
    assert f"MIME nesting deeper than {MAX_DEPTH}" in record.getMessage()


def test_a_boundary_the_parser_decodes_to_text_never_matches() -> None:
    """Found by the fuzz test: a non-ASCII boundary comes back as U+FFFD and matches no line."""
    raw = b'From: a@b.test\r\nContent-Type: multipart/mixed; boundary="b\xff"\r\n\r\n--b\xff\r\nx'
    parsed = parse_message(raw)
    assert parsed.from_ == [NamedAddress("", "a@b.test")]
    assert "StartBoundaryNotFoundDefect" in parsed.defects


@pytest.mark.timeout(20)
def test_delivery_status_blocks_are_capped() -> None:
    """The parser makes one message per block of a delivery-status: 100,000 took 5 s."""
    report = (
        b'From: MAILER-DAEMON@x.test\r\nContent-Type: multipart/report; boundary="r"\r\n\r\n'
        b"--r\r\nContent-Type: text/plain\r\n\r\nbounced\r\n"
        b"--r\r\nContent-Type: message/delivery-status\r\n\r\n"
        + b"Final-Recipient: rfc822; a@x.test\r\nStatus: 5.0.0\r\n\r\n" * 100_000
        + b"--r\r\nContent-Type: text/rfc822-headers\r\n\r\nSubject: x\r\n--r--\r\n"
    )
    parsed = parse_message(report)
    assert parsed.text == "bounced"
    assert [a.content_type for a in parsed.attachments] == ["text/rfc822-headers"]
    assert f"more than {MAX_PARTS} delivery-status blocks: rest not parsed" in parsed.limits


def test_the_notes_of_what_was_cut_stay_few() -> None:
    part = b"--b\r\n" + b"X-Long: " + b"x " * 10_000 + b"\r\n\r\nbody\r\n"
    raw = b'From: a@b.test\r\nContent-Type: multipart/mixed; boundary="b"\r\n\r\n' + part * 100
    parsed = parse_message(raw)
    assert len(parsed.limits) == 21
    assert parsed.limits[-1] == "and 80 more cuts"


def stack_depth() -> int:
    frame, depth = sys._getframe(), 0
    while frame is not None:
        frame, depth = frame.f_back, depth + 1  # type: ignore[assignment]
    return depth


def test_a_recursion_error_inside_the_parser_keeps_the_headers() -> None:
    """The last resort, should the parser still run out of stack: the headers, and a note."""
    raw = nested_multipart(MAX_DEPTH, b"bottom\r\n")

    def parse_deep_in_the_stack(levels: int) -> ParsedMessage:
        return parse_message(raw) if levels == 0 else parse_deep_in_the_stack(levels - 1)

    room = sys.getrecursionlimit() - stack_depth()
    for margin in range(20, 120, 2):
        try:
            parsed = parse_deep_in_the_stack(room - margin)
        except RecursionError:
            continue  # the stack ran out before or after the parser: a little more room
        if parsed.limits == ["MIME structure too deep for the parser: body not parsed"]:
            assert parsed.from_ == [NamedAddress("", "ann@corp.test")]
            assert parsed.text == ""
            return
    pytest.fail("no stack depth made the parser itself run out of stack")


@pytest.mark.parametrize("end", [b"\r\n", b"\n", b"\r"])
def test_a_cut_header_block_keeps_its_folded_fields_whole(end: bytes) -> None:
    """A block cut for one long field keeps every other field, folds included, in any line end."""
    references = b"References:" + b"".join(
        b"%s <m%d@x.test>" % (end + b" ", n) for n in range(3000)
    )
    block = end.join(
        [b"From: Ann <ann@x.test>", b"Subject: Re: a long", b" thread", references, b"To: b@y.test"]
    )
    parsed = parse_message(block + end + end + b"body" + end)
    assert [m.address for m in parsed.from_] == ["ann@x.test"]
    assert [m.address for m in parsed.to] == ["b@y.test"]
    assert parsed.subject == "Re: a long thread"
    assert any("header field too long" in note for note in parsed.limits)
