"""The contract with aiosmtpd: the private seams crmmail uses are there, and its words are ours.

``crmmail.smtpd.aiosmtpd_seam`` lists what crmmail needs of aiosmtpd beyond its documented API.
When a release of aiosmtpd drops or changes one of them, a test here fails and names it. The
words the intake says in the stead of aiosmtpd's ``smtp_DATA`` are checked against a bare
aiosmtpd server on loopback, not against a copy.
"""

import asyncio
import tomllib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib.metadata import version
from pathlib import Path

import pytest
from aiosmtpd.handlers import Sink
from aiosmtpd.smtp import SMTP
from packaging.requirements import Requirement

from crmmail.smtpd import aiosmtpd_seam
from crmmail.smtpd.aiosmtpd_seam import SeamMissing, session_reader

PYPROJECT = Path(__file__).parents[2] / "pyproject.toml"
SIZE_LIMIT = 100  # bytes: the bare server's message size limit
TIMEOUT = 10.0


def test_the_installed_aiosmtpd_is_the_tested_one() -> None:
    dependencies = tomllib.loads(PYPROJECT.read_text())["project"]["dependencies"]
    [pinned] = [Requirement(d) for d in dependencies if Requirement(d).name == "aiosmtpd"]
    assert str(pinned.specifier) == str(Requirement(f"x{aiosmtpd_seam.TESTED_RANGE}").specifier)
    installed = version("aiosmtpd")
    assert pinned.specifier.contains(installed), (
        f"aiosmtpd {installed} is outside the range its seams were checked against "
        f"({aiosmtpd_seam.TESTED_RANGE}): check crmmail/smtpd/aiosmtpd_seam.py against it"
    )


class BareSession:
    """A raw client of a bare aiosmtpd server: lines out, one reply line in."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    async def reply(self) -> str:
        line = await asyncio.wait_for(self.reader.readline(), TIMEOUT)
        while line[3:4] == b"-":
            line = await asyncio.wait_for(self.reader.readline(), TIMEOUT)
        return line.decode().rstrip("\r\n")

    async def command(self, line: bytes) -> str:
        self.writer.write(line + b"\r\n")
        return await self.reply()

    async def start_data(self) -> str:
        for line in (b"EHLO client.test", b"MAIL FROM:<a@client.test>", b"RCPT TO:<b@x.test>"):
            assert (await self.command(line)).startswith("250 "), line
        return await self.command(b"DATA")


@asynccontextmanager
async def bare_aiosmtpd() -> AsyncIterator[tuple[list[SMTP], BareSession]]:
    """aiosmtpd's own SMTP (no subclass, a Sink handler) on loopback, and a client session."""
    loop = asyncio.get_running_loop()
    protocols: list[SMTP] = []

    def protocol() -> SMTP:
        smtp = SMTP(Sink(), data_size_limit=SIZE_LIMIT, hostname="localhost", loop=loop)
        protocols.append(smtp)
        return smtp

    server = await loop.create_server(protocol, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    session = BareSession(reader, writer)
    try:
        assert (await session.reply()).startswith("220 ")
        yield protocols, session
    finally:
        writer.close()
        await writer.wait_closed()
        server.close()
        await server.wait_closed()


def test_a_connected_session_has_the_reader_data_is_read_from() -> None:
    async def run() -> None:
        async with bare_aiosmtpd() as (protocols, session):
            [protocol] = protocols
            reader = session_reader(protocol)  # raises SeamMissing, naming it, when gone
            # It is the stream the session's commands come from: what is fed into it, the
            # session reads as the client's (half a command from the client, half from here).
            session.writer.write(b"NO")
            await session.writer.drain()
            await asyncio.sleep(0.1)
            reader.feed_data(b"OP\r\n")
            assert await session.reply() == "250 OK"

    asyncio.run(run())


def test_a_missing_seam_is_named() -> None:
    async def run() -> None:
        unconnected = SMTP(Sink(), hostname="localhost")  # no connection: no reader yet
        with pytest.raises(SeamMissing, match=r"SMTP\._reader") as missing:
            session_reader(unconnected)
        assert missing.value.seam == aiosmtpd_seam.READER_SEAM
        assert aiosmtpd_seam.TESTED_RANGE in str(missing.value)

    asyncio.run(run())


def test_the_words_said_for_aiosmtpd_are_its_own() -> None:
    """What aiosmtpd's own smtp_DATA answers: 354, then 552 or 500 for a refused message."""

    async def run() -> None:
        async with bare_aiosmtpd() as (_, session):
            assert await session.start_data() == aiosmtpd_seam.START_DATA
            session.writer.write(b"x" * (SIZE_LIMIT + 1) + b"\r\n")
            assert await session.command(b".") == aiosmtpd_seam.DATA_TOO_MUCH
            assert await session.start_data() == aiosmtpd_seam.START_DATA
            session.writer.write(b"y" * (SMTP.line_length_limit + 1) + b"\r\n")
            assert await session.command(b".") == aiosmtpd_seam.DATA_LINE_TOO_LONG

    asyncio.run(run())
