"""Measure SMTP intake: messages accepted per second by crmmail, next to a bare aiosmtpd.

Each server runs alone in its own subprocess on 127.0.0.1, and this process is the load
generator: N concurrent SMTP sessions, each sending its share of the messages one transaction
after another over one connection. crmmail runs ``serve`` (listener and worker) on a fresh
SQLite database per run, or on the PostgreSQL database given with --database-url; the bare
server discards every message. Prints the median and min-max over the runs of both rates and
of their ratio ours/bare.

    .venv/bin/python bench/ingest.py [--sessions 20] [--messages 2000] [--size 4096] [--runs 3]
"""

import argparse
import asyncio
import contextlib
import json
import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from email.utils import formatdate
from importlib.metadata import version
from pathlib import Path
from typing import Any, Self

from aiosmtpd.smtp import SMTP, Envelope, Session
from sqlalchemy.engine import make_url

HOST = "127.0.0.1"
SMART_DOMAIN = "mail.localhost"
ACCOUNT = "bench"
RECIPIENT = f"{ACCOUNT}@{SMART_DOMAIN}"
SENDER = "a@example.test"
TO = "someone@example.test"
OURS = "crmmail"
BARE = "bare"
READY_DEADLINE = 30.0  # seconds for a server to start accepting connections
REPLY_TIMEOUT = 60.0  # seconds to wait for any one SMTP reply
STOP_TIMEOUT = 15.0  # seconds between SIGTERM and SIGKILL
LINE_LENGTH = 78  # body line length, CRLF included


class BenchError(Exception):
    """Anything unexpected: the benchmark stops and prints this one line."""


# -- the load generator --------------------------------------------------------------------


class SmtpSession:
    """One SMTP connection on which every reply must carry the expected code."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def open(cls, port: int) -> Self:
        try:
            reader, writer = await asyncio.open_connection(HOST, port)
        except OSError as error:
            raise BenchError(f"cannot connect to {HOST}:{port}: {error}") from None
        session = cls(reader, writer)
        await session.expect(220, "the greeting")
        await session.command(b"EHLO bench.localhost", 250)
        return session

    async def send_messages(self, count: int, body: bytes) -> int:
        """Send ``count`` messages in sequential transactions; return how many got ``250``."""
        accepted = 0
        for _ in range(count):
            await self.command(f"MAIL FROM:<{SENDER}>".encode(), 250)
            await self.command(f"RCPT TO:<{RECIPIENT}>".encode(), 250)
            await self.command(b"DATA", 354)
            # No line of the message starts with a dot, so no dot-stuffing is needed.
            await self.command(make_message(body) + b".", 250, "the end of DATA")
            accepted += 1
        return accepted

    async def quit(self) -> None:
        await self.command(b"QUIT", 221)
        self.writer.close()
        with contextlib.suppress(OSError):
            await self.writer.wait_closed()

    async def command(self, line: bytes, expected: int, name: str | None = None) -> None:
        try:
            self.writer.write(line + b"\r\n")
            await self.writer.drain()
        except OSError as error:
            raise BenchError(f"sending {name or line.decode()}: {error}") from None
        await self.expect(expected, name or line.decode())

    async def expect(self, expected: int, after: str) -> None:
        try:
            reply = await asyncio.wait_for(self._read_reply(), REPLY_TIMEOUT)
        except TimeoutError:
            raise BenchError(f"no reply to {after} within {REPLY_TIMEOUT:.0f} s") from None
        except OSError as error:
            raise BenchError(f"reading the reply to {after}: {error}") from None
        if reply[:3] != str(expected).encode():
            last = reply.splitlines()[-1].decode(errors="replace")
            raise BenchError(f"expected {expected} after {after}, got {last!r}")

    async def _read_reply(self) -> bytes:
        """A whole reply: continuation lines (``250-...``) up to the last one (``250 ...``)."""
        lines = []
        while True:
            line = await self.reader.readline()
            if not line.endswith(b"\n"):
                raise BenchError("the server closed the connection")
            lines.append(line)
            if line[3:4] != b"-":
                return b"".join(lines)


def make_body(size: int) -> bytes:
    """``size`` bytes of text in CRLF-ended lines."""
    line = b"x" * (LINE_LENGTH - 2) + b"\r\n"
    full_lines, rest = divmod(size, LINE_LENGTH)
    last = b"x" * (rest - 2) + b"\r\n" if rest >= 2 else b"x" * rest
    return line * full_lines + last


def make_message(body: bytes) -> bytes:
    """A message with a unique Message-ID, ending with CRLF."""
    headers = (
        f"From: {SENDER}\r\n"
        f"To: {TO}\r\n"
        f"Cc: {RECIPIENT}\r\n"
        "Subject: ingest benchmark\r\n"
        f"Date: {formatdate()}\r\n"
        f"Message-ID: <{uuid.uuid4().hex}@bench.localhost>\r\n"
        "\r\n"
    )
    message = headers.encode() + body
    return message if message.endswith(b"\r\n") else message + b"\r\n"


async def drive(port: int, sessions: int, messages: int, body: bytes) -> float:
    """Send ``messages`` over ``sessions`` concurrent connections; accepted messages per second.

    The clock runs from the first MAIL FROM to the last ``250``: connecting, EHLO and QUIT are
    outside it.
    """
    shares = [messages // sessions + int(i < messages % sessions) for i in range(sessions)]
    clients = await asyncio.gather(*(SmtpSession.open(port) for _ in shares))
    start = time.perf_counter()
    accepted = await asyncio.gather(
        *(client.send_messages(share, body) for client, share in zip(clients, shares, strict=True))
    )
    elapsed = time.perf_counter() - start
    await asyncio.gather(*(client.quit() for client in clients))
    return sum(accepted) / elapsed


# -- the bare server (run by this script in a subprocess) ------------------------------------


class DiscardHandler:
    """Accepts every message and keeps nothing."""

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        return "250 OK"


async def serve_bare(port: int) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: SMTP(DiscardHandler(), hostname="bare.localhost", loop=loop), host=HOST, port=port
    )
    await server.serve_forever()


# -- running the servers ---------------------------------------------------------------------


def crmmail_command(database_url: str, *args: str) -> list[str]:
    return [sys.executable, "-m", "crmmail", "--database-url", database_url, *args]


def crmmail_env() -> dict[str, str]:
    return {**os.environ, "CRMMAIL_SMART_DOMAINS": SMART_DOMAIN}


def run_cli(database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        crmmail_command(database_url, *args),
        capture_output=True,
        text=True,
        env=crmmail_env(),
        check=False,
    )


def prepare_database(database_url: str) -> None:
    """``crmmail init``, then create the account unless it exists already."""
    steps = [("init",)]
    if run_cli(database_url, "account", "show", ACCOUNT).returncode != 0:
        steps.append(("account", "create", ACCOUNT))
    for step in steps:
        result = run_cli(database_url, *step)
        if result.returncode != 0:
            raise BenchError(f"crmmail {' '.join(step)} failed: {last_line(result.stderr)}")


def last_line(text: str) -> str:
    lines = text.strip().splitlines()
    return lines[-1] if lines else "(no output)"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


def wait_until_listening(process: subprocess.Popen[bytes], port: int) -> None:
    deadline = time.monotonic() + READY_DEADLINE
    while True:
        if process.poll() is not None:
            raise BenchError(f"exited with status {process.returncode} before listening")
        try:
            with socket.create_connection((HOST, port), timeout=1):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise BenchError(
                    f"not listening on {HOST}:{port} after {READY_DEADLINE:.0f} s"
                ) from None
            time.sleep(0.05)


def stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM, then SIGKILL if the process is still there after ``STOP_TIMEOUT``."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextlib.contextmanager
def running(command: list[str], port: int, log: Path, env: dict[str, str]) -> Iterator[None]:
    """Start a server, wait until it accepts connections, and always stop it afterwards."""
    with log.open("wb") as output:
        process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT, env=env)
        try:
            wait_until_listening(process, port)
            yield
        finally:
            stop(process)


def measure(server: str, database_url: str, args: argparse.Namespace, log: Path) -> float:
    """Start one server alone, drive it, stop it; its accepted messages per second."""
    port = free_port()
    if server == OURS:
        command = crmmail_command(
            database_url, "serve", "--smtp-host", HOST, "--smtp-port", str(port)
        )
    else:
        command = [sys.executable, str(Path(__file__).resolve()), "--serve-bare", str(port)]
    try:
        with running(command, port, log, crmmail_env()):
            return asyncio.run(drive(port, args.sessions, args.messages, make_body(args.size)))
    except BenchError as error:
        hint = last_line(log.read_text(errors="replace")) if log.exists() else "(no log)"
        raise BenchError(f"{server} server: {error} (its last output line: {hint})") from None


# -- the benchmark and its report ------------------------------------------------------------


def benchmark(args: argparse.Namespace) -> dict[str, list[float]]:
    """Per-server rates over the runs, alternating which server goes first."""
    rates: dict[str, list[float]] = {OURS: [], BARE: []}
    with tempfile.TemporaryDirectory(prefix="crmmail-bench-") as tmp:
        workdir = Path(tmp)
        if args.database_url:
            prepare_database(args.database_url)
        for run in range(1, args.runs + 1):
            database_url = args.database_url or f"sqlite:///{workdir / f'run-{run}.db'}"
            if not args.database_url:
                prepare_database(database_url)
            order = (OURS, BARE) if run % 2 else (BARE, OURS)
            for server in order:
                log = workdir / f"{server}-{run}.log"
                rates[server].append(measure(server, database_url, args, log))
            print(
                f"run {run}/{args.runs}: {OURS} {rates[OURS][-1]:.1f} msg/s, "
                f"{BARE} {rates[BARE][-1]:.1f} msg/s",
                file=sys.stderr,
                flush=True,
            )
    return rates


def spread(values: list[float]) -> dict[str, Any]:
    return {
        "median": statistics.median(values),
        "min": min(values),
        "max": max(values),
        "runs": values,
    }


def summary(args: argparse.Namespace, rates: dict[str, list[float]]) -> dict[str, Any]:
    ratios = [ours / bare for ours, bare in zip(rates[OURS], rates[BARE], strict=True)]
    database = (
        make_url(args.database_url).render_as_string(hide_password=True)
        if args.database_url
        else "sqlite (fresh per run)"
    )
    return {
        "sessions": args.sessions,
        "messages": args.messages,
        "size": args.size,
        "runs": args.runs,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "aiosmtpd": version("aiosmtpd"),
        "database": database,
        "crmmail_msgs_per_s": spread(rates[OURS]),
        "bare_msgs_per_s": spread(rates[BARE]),
        "ratio": spread(ratios),
    }


def table(result: dict[str, Any]) -> str:
    def row(label: str, figure: dict[str, Any], digits: int) -> str:
        low_high = f"{figure['min']:.{digits}f} - {figure['max']:.{digits}f}"
        return f"{label:<24}{figure['median']:>10.{digits}f}{low_high:>22}"

    return "\n".join(
        [
            f"SMTP ingest: {result['sessions']} sessions, {result['messages']} messages per "
            f"server, {result['size']}-byte bodies, {result['runs']} run(s)",
            f"machine: {result['cores']} cores, Python {result['python']}, "
            f"aiosmtpd {result['aiosmtpd']}; crmmail database: {result['database']}",
            "",
            f"{'':<24}{'median':>10}{'min - max':>22}",
            row("crmmail (msg/s)", result["crmmail_msgs_per_s"], 1),
            row("bare aiosmtpd (msg/s)", result["bare_msgs_per_s"], 1),
            row("ratio ours/bare", result["ratio"], 3),
        ]
    )


def positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=positive, default=20, help="concurrent SMTP sessions")
    parser.add_argument("--messages", type=positive, default=2000, help="messages per server")
    parser.add_argument("--size", type=positive, default=4096, help="message body bytes")
    parser.add_argument("--runs", type=positive, default=3, help="runs (median, min-max)")
    parser.add_argument(
        "--database-url",
        help="a postgresql+psycopg:// URL to use instead of a fresh SQLite database",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    # Internal: how this script starts the bare server in its own process.
    parser.add_argument("--serve-bare", type=int, metavar="PORT", help=argparse.SUPPRESS)
    return parser.parse_args()


def exit_on_sigterm() -> None:
    """Make SIGTERM unwind like an error, so that the servers are stopped on the way out."""
    signal.signal(
        signal.SIGTERM, lambda signum, _frame: sys.exit(f"ingest: stopped by signal {signum}")
    )


def main() -> None:
    args = parse_args()
    if args.serve_bare is not None:
        asyncio.run(serve_bare(args.serve_bare))
        return
    exit_on_sigterm()
    try:
        result = summary(args, benchmark(args))
    except BenchError as error:
        sys.exit(f"ingest: error: {error}")
    except KeyboardInterrupt:
        sys.exit("ingest: interrupted")
    print(json.dumps(result) if args.json else table(result))


if __name__ == "__main__":
    main()
