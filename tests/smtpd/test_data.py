"""Reading DATA into one buffer (crmmail.smtpd.data) by aiosmtpd's rules.

The intake as a whole (smuggling, SIZE, long lines) is tested over SMTP in test_hostile.py,
test_intake.py and test_limits.py; these cases pin the reader's own edges.
"""

import asyncio

import pytest

from crmmail.smtpd.data import DataOutcome, ReceivedData, read_data

LIMIT = 64  # the reader's own line limit in these cases


def read(
    wire: bytes, *more: bytes, size_limit: int | None = None, line_limit: int = 1000
) -> ReceivedData:
    """What ``read_data`` makes of ``wire``, then of each of ``more`` once it has read all."""
    return read_leaving(wire, *more, size_limit=size_limit, line_limit=line_limit)[0]


def read_leaving(
    wire: bytes, *more: bytes, size_limit: int | None = None, line_limit: int = 1000
) -> tuple[ReceivedData, bytes]:
    """``read`` and what it left unread (the next command's bytes)."""

    async def run() -> tuple[ReceivedData, bytes]:
        reader = asyncio.StreamReader(limit=LIMIT)
        reader.feed_data(wire)
        reading = asyncio.create_task(read_data(reader, size_limit, line_limit, lambda: True))
        for chunk in more:
            for _ in range(5):
                await asyncio.sleep(0)  # the reader takes what it has and waits for more
            reader.feed_data(chunk)
        reader.feed_eof()
        return await reading, await reader.read()

    return asyncio.run(run())


@pytest.mark.parametrize(
    ("wire", "content"),
    [
        (b".\r\n", b""),
        (b"a\r\nb\r\n.\r\n", b"a\r\nb\r\n"),
        (b"..\r\n.x\r\n...\r\n.\r\n", b".\r\nx\r\n..\r\n"),  # one leading dot removed
        (b"a\n.\nb\r\n.\r\n", b"a\n.\nb\r\n"),  # a bare LF ends nothing
        (b"a\r.\rb\r\n.\r\n", b"a\r.\rb\r\n"),  # nor a bare CR
    ],
)
def test_message_content(wire: bytes, content: bytes) -> None:
    assert read(wire) == ReceivedData(DataOutcome.COMPLETE, content)


def test_what_follows_the_dot_is_left_for_the_next_command() -> None:
    assert read_leaving(b"a\r\n.\r\nQUIT\r\n") == (
        ReceivedData(DataOutcome.COMPLETE, b"a\r\n"),
        b"QUIT\r\n",
    )


def test_the_size_limit_counts_wire_bytes_and_is_inclusive() -> None:
    body = b"..x\r\n" * 4  # 20 bytes on the wire, 16 after unstuffing
    assert read(body + b".\r\n", size_limit=20).outcome is DataOutcome.COMPLETE
    assert read(body + b".\r\n", size_limit=19) == ReceivedData(DataOutcome.TOO_BIG)


def test_a_line_over_the_readers_limit_discards_the_message_but_reads_to_the_dot() -> None:
    wire = b"ok\r\n" + b"x" * (LIMIT * 3) + b"\r\nmore\r\n.\r\n"
    assert read(wire) == ReceivedData(DataOutcome.LINE_TOO_LONG)


def test_a_line_over_the_line_length_limit_discards_the_message() -> None:
    assert read(b"x" * 30 + b"\r\n.\r\n", line_limit=20) == ReceivedData(DataOutcome.LINE_TOO_LONG)


def test_too_big_wins_over_a_later_long_line() -> None:
    wire = b"x" * 30 + b"\r\n" + b"y" * (LIMIT * 2) + b"\r\n.\r\n"
    assert read(wire, size_limit=10).outcome is DataOutcome.TOO_BIG


def test_the_dot_ending_a_long_line_does_not_end_the_message() -> None:
    # Over the limit with no line end, the reader hands out all but the last byte: here the
    # long line's tail ".\r\n" is read on its own, and must not read as the end of the data.
    wire = b"a\r\n" + b"x" * (LIMIT * 2) + b"."
    after = b"\r\nstill data\r\n.\r\nNOOP\r\n"
    assert read_leaving(wire, after) == (ReceivedData(DataOutcome.LINE_TOO_LONG), b"NOOP\r\n")
    assert read(wire, b"\r\n.\r\n") == ReceivedData(DataOutcome.LINE_TOO_LONG)


def test_the_end_of_the_stream_before_the_dot_stores_nothing() -> None:
    assert read(b"a\r\nb\r\n") == ReceivedData(DataOutcome.DISCONNECTED)
    assert read(b"a\r\nno line end") == ReceivedData(DataOutcome.DISCONNECTED)
