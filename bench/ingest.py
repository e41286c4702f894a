"""Measure SMTP intake: messages accepted and durably stored per second by crmmail, next to a bare
aiosmtpd that discards (the Python floor) and to Postfix with its durable queue.

Every server runs alone on 127.0.0.1 while it is measured. crmmail runs ``serve`` (listener and
worker) on a fresh SQLite database, and on a fresh database in a throwaway PostgreSQL cluster with
PostgreSQL's default durability (or in the database given with --database-url). This process is
the load generator for crmmail and the bare server: N concurrent SMTP sessions, each sending its
share of the messages one transaction after another over one connection; the clock runs from the
first MAIL FROM to the last ``250``. Postfix is a private instance (its own configuration and
queue under a temporary directory, ``postfix -c DIR start``) with one smtpd on 127.0.0.1, relaying
the bench domain to ``discard:``, so what is measured is acceptance into its queue, which cleanup
fsyncs before smtpd answers ``250``; its load generator is Postfix's own ``smtp-source -d -s N -m
M -l SIZE``, timed from start to exit. Each (size, run) measures every server in an order that
alternates between runs. With --profile, one more crmmail run per database is sampled by py-spy
and the notes say where its time goes.

    .venv/bin/python bench/ingest.py [--sizes 4096,102400,1048576] [--runs 3] [--json FILE]
"""

import argparse
import asyncio
import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from email.utils import formatdate
from pathlib import Path
from typing import Self

from aiosmtpd.smtp import SMTP, Envelope, Session

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.common import (
    PostgresCluster,
    durable_postgres,
    filesystem,
    json_path,
    positive,
    ratio_at_least,
    reported,
    row,
    write_result,
)

BENCH = "ingest"
HOST = "127.0.0.1"
SMART_DOMAIN = "mail.localhost"
ACCOUNT = "bench"
RECIPIENT = f"{ACCOUNT}@{SMART_DOMAIN}"
SENDER = "a@example.test"
TO = "someone@example.test"
BARE = "bare aiosmtpd"
POSTFIX = "Postfix"
SQLITE = "sqlite"
POSTGRESQL = "postgresql"
DATABASES = (SQLITE, POSTGRESQL)
DEFAULT_SIZES = (4096, 100 * 1024, 1024 * 1024)
SMOKE_SIZES = (4096,)
MIB = 1024 * 1024
READY_DEADLINE = 30.0  # seconds for a server to start accepting connections
REPLY_TIMEOUT = 60.0  # seconds to wait for any one SMTP reply
STOP_TIMEOUT = 15.0  # seconds between SIGTERM and SIGKILL
SOURCE_TIMEOUT = 600.0  # seconds for one smtp-source run
QUEUE_DRAIN_DEADLINE = 120.0  # seconds for Postfix to discard what it accepted
LINE_LENGTH = 78  # body line length, CRLF included
BARE_TARGET = 0.8  # crmmail >= 0.8x bare aiosmtpd
POSTFIX_TARGET = 1.5  # crmmail >= 1.5x Postfix
PY_SPY_OPTIONS = ("--format", "raw", "--rate", "200", "--nonblocking")
PROFILE_TOP = 8  # functions listed per profile note
POSTFIX_DIRS = ("/usr/sbin", "/usr/lib/postfix/sbin")
QMGR_SIZE = re.compile(r"postfix/qmgr\[\d+\]: \w+: from=<[^>]*>, size=(\d+)")


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


def crmmail_env(sessions: int) -> dict[str, str]:
    return {
        **os.environ,
        "CRMMAIL_SMART_DOMAINS": SMART_DOMAIN,
        # The sessions, and room for the readiness probe's connection, which the server may
        # still count for a moment after it closes.
        "CRMMAIL_MAX_CONNECTIONS_PER_IP": str(max(20, sessions) + 2),
    }


def prepare_database(database_url: str) -> None:
    """``crmmail init``, then create the account unless it exists already (through the CLI)."""
    steps = [("init",)]
    env = crmmail_env(1)

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        command = crmmail_command(database_url, *args)
        return subprocess.run(command, capture_output=True, text=True, env=env, check=False)

    if run("account", "show", ACCOUNT).returncode != 0:
        steps.append(("account", "create", ACCOUNT))
    for step in steps:
        result = run(*step)
        if result.returncode != 0:
            raise BenchError(f"crmmail {' '.join(step)} failed: {last_line(result.stderr)}")


def last_line(text: str) -> str:
    lines = text.strip().splitlines()
    return lines[-1] if lines else "(no output)"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


def wait_until_listening(process: subprocess.Popen[bytes] | None, port: int) -> None:
    deadline = time.monotonic() + READY_DEADLINE
    while True:
        if process is not None and process.poll() is not None:
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
def running(
    command: list[str], port: int, log: Path, env: dict[str, str]
) -> Iterator[subprocess.Popen[bytes]]:
    """Start a server, wait until it accepts connections, and always stop it afterwards."""
    with log.open("wb") as output:
        process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT, env=env)
        try:
            wait_until_listening(process, port)
            yield process
        finally:
            stop(process)


# -- the databases ---------------------------------------------------------------------------


class Databases:
    """A fresh crmmail database per measurement, copied from a template made once per backend
    (``crmmail init`` and the account), so that no run sees an earlier run's rows."""

    def __init__(self, workdir: Path, cluster: PostgresCluster | None, given_url: str | None):
        self.workdir = workdir
        self.cluster = cluster
        self.given_url = given_url
        self.sqlite_template = workdir / "template.db"
        self.made: set[str] = set()

    def fresh(self, backend: str, name: str) -> str:
        if backend == SQLITE:
            if SQLITE not in self.made:
                prepare_database(f"sqlite:///{self.sqlite_template}")
                self.made.add(SQLITE)
            path = self.workdir / f"{name}.db"
            shutil.copyfile(self.sqlite_template, path)
            return f"sqlite:///{path}"
        if self.given_url:
            if POSTGRESQL not in self.made:
                prepare_database(self.given_url)
                self.made.add(POSTGRESQL)
            return self.given_url
        assert self.cluster is not None
        if POSTGRESQL not in self.made:
            prepare_database(self.cluster.create_database("template_bench"))
            self.made.add(POSTGRESQL)
        return self.cluster.create_database(name, template="template_bench")


# -- Postfix, the reference MTA --------------------------------------------------------------


def postfix_program(name: str) -> str | None:
    for directory in POSTFIX_DIRS:
        path = Path(directory) / name
        if path.is_file() and os.access(path, os.X_OK):
            return str(path)
    return None


def postfix_missing() -> str | None:
    """Why Postfix cannot be measured here, or None."""
    missing = [name for name in ("postfix", "smtp-source") if postfix_program(name) is None]
    if missing:
        return f"{' and '.join(missing)} not installed (run scripts/ensure-bench-services)"
    if os.geteuid() != 0:
        return "a private Postfix instance needs root (postfix -c DIR start)"
    return None


MAIN_CF = """\
compatibility_level = 3.6
config_directory = {base}/etc
queue_directory = {base}/queue
data_directory = {base}/data
meta_directory = /etc/postfix
mail_owner = postfix
setgid_group = postdrop
maillog_file = {base}/maillog
maillog_file_prefixes = {base}
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
myhostname = postfix.bench.localhost
mydomain = bench.localhost
myorigin = bench.localhost
mydestination =
mynetworks = 127.0.0.1/32
alias_maps =
alias_database =
local_recipient_maps =
relay_domains = {domain}
relay_recipient_maps = inline:{{ {recipient}=ok }}
transport_maps = inline:{{ {domain}=discard: }}
smtpd_relay_restrictions = reject_unauth_destination
smtpd_client_connection_count_limit = 0
biff = no
message_size_limit = 0
"""

# One smtpd on loopback and only the internal services that accepting and discarding use.
MASTER_CF = """\
{host}:{port} inet n - n - - smtpd
cleanup unix n - n - 0 cleanup
qmgr unix n - n 300 1 qmgr
rewrite unix - - n - - trivial-rewrite
bounce unix - - n - 0 bounce
defer unix - - n - 0 bounce
trace unix - - n - 0 bounce
verify unix - - n - 1 verify
flush unix n - n 1000? 0 flush
proxymap unix - - n - - proxymap
anvil unix - - n - 1 anvil
scache unix - - n - 1 scache
discard unix - - n - - discard
error unix - - n - - error
retry unix - - n - - error
postlog unix-dgram n - n - 1 postlogd
"""


@dataclass
class Postfix:
    """A private Postfix instance: configuration, queue and log under ``base``."""

    base: Path
    port: int

    @property
    def config(self) -> Path:
        return self.base / "etc"

    def control(self, action: str) -> None:
        postfix = postfix_program("postfix")
        assert postfix is not None
        done = subprocess.run(
            [postfix, "-c", str(self.config), action],
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            raise BenchError(f"postfix {action} failed: {self.last_log_line()}")

    def last_log_line(self) -> str:
        log = self.base / "maillog"
        return last_line(log.read_text(errors="replace")) if log.exists() else "(no maillog)"

    def queued(self) -> int:
        """Messages still in the queue (not yet discarded)."""
        queue = self.base / "queue"
        return sum(
            len(files)
            for name in ("incoming", "active", "maildrop")
            for _, _, files in os.walk(queue / name)
        )

    def wait_until_drained(self) -> None:
        deadline = time.monotonic() + QUEUE_DRAIN_DEADLINE
        while self.queued():
            if time.monotonic() > deadline:
                raise BenchError(f"Postfix still has {self.queued()} queued messages")
            time.sleep(0.1)

    def last_message_size(self) -> int | None:
        """The size qmgr logged for the last message it took (``size=N``), to check what
        smtp-source really sent."""
        log = self.base / "maillog"
        sizes = QMGR_SIZE.findall(log.read_text(errors="replace")) if log.exists() else []
        return int(sizes[-1]) if sizes else None

    def rejections(self) -> int:
        log = self.base / "maillog"
        return log.read_text(errors="replace").count(" reject: ") if log.exists() else 0


@contextlib.contextmanager
def running_postfix(workdir: Path) -> Iterator[Postfix]:
    base = workdir / "postfix"
    workdir.chmod(0o755)  # Postfix's daemons run as the postfix user
    for path in (base / "etc", base / "queue", base / "data"):
        path.mkdir(parents=True)
    base.chmod(0o755)
    shutil.chown(base / "data", user="postfix")
    instance = Postfix(base, free_port())
    fields = {"base": base, "domain": SMART_DOMAIN, "recipient": RECIPIENT}
    (base / "etc" / "main.cf").write_text(MAIN_CF.format(**fields))
    (base / "etc" / "master.cf").write_text(MASTER_CF.format(host=HOST, port=instance.port))
    instance.control("start")
    try:
        wait_until_listening(None, instance.port)
        yield instance
    finally:
        with contextlib.suppress(BenchError):
            instance.control("stop")


def smtp_source(port: int, sessions: int, messages: int, size: int) -> float:
    """Postfix's load generator: ``messages`` over ``sessions`` sessions that stay connected
    (-d); messages per second from its start to its exit."""
    source = postfix_program("smtp-source")
    assert source is not None
    command = [source, "-d", "-s", str(sessions), "-m", str(messages), "-l", str(size)]
    command += ["-f", SENDER, "-t", RECIPIENT, f"{HOST}:{port}"]
    start = time.perf_counter()
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=SOURCE_TIMEOUT, check=False
        )
    except subprocess.TimeoutExpired:
        raise BenchError(f"smtp-source took over {SOURCE_TIMEOUT:.0f} s") from None
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise BenchError(f"smtp-source failed: {last_line(done.stderr or done.stdout)}")
    return messages / elapsed


# -- profiles --------------------------------------------------------------------------------

FRAME = re.compile(r"^(?P<function>.*) \((?P<file>[^():]*)(?::\d+)?\)$")


def profile_summary(raw: Path, top: int) -> str:
    """Where the sampled time went, from py-spy's raw (collapsed stack) output: the share of
    samples per package (by the innermost frame) and the functions with the most own time."""
    packages: Counter[str] = Counter()
    functions: Counter[str] = Counter()
    total = 0
    for line in raw.read_text(errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        total += count
        leaf = stack.split(";")[-1]
        match = FRAME.match(leaf)
        function, file = (match["function"], match["file"]) if match else (leaf, "?")
        packages[package_of(file)] += count
        functions[f"{function} ({Path(file).name})"] += count
    if not total:
        return "no samples"
    by_package = ", ".join(f"{name} {share(n, total)}" for name, n in packages.most_common(6))
    by_function = ", ".join(f"{name} {share(n, total)}" for name, n in functions.most_common(top))
    return f"{total} samples; own time by package: {by_package}; top functions: {by_function}"


def share(count: int, total: int) -> str:
    return f"{100 * count / total:.0f}%"


def package_of(file: str) -> str:
    """The package of a sampled frame's file, as py-spy names it (relative to ``sys.path``):
    ``crmmail/<subpackage>``, else the top-level package or module (``sqlalchemy``,
    ``asyncio``, ``selectors``...)."""
    parts = Path(file).parts
    if not parts:
        return "native"
    if parts[0] == "crmmail" and len(parts) > 2:
        return f"crmmail/{parts[1]}"
    return parts[0].removesuffix(".py")


def py_spy() -> str | None:
    found = Path(sys.executable).with_name("py-spy")
    return str(found) if found.exists() else shutil.which("py-spy")


# -- the benchmark ---------------------------------------------------------------------------


@dataclass
class Plan:
    sessions: int
    sizes: list[int]
    counts: dict[int, int]
    runs: int
    databases: list[str]


def plan_from(args: argparse.Namespace) -> Plan:
    sizes = list(SMOKE_SIZES) if args.smoke else args.sizes
    runs = 1 if args.smoke else args.runs
    sessions = 2 if args.smoke else args.sessions
    budget = args.megabytes * MIB
    counts = {
        size: 10 if args.smoke else max(sessions, min(args.messages, budget // size))
        for size in sizes
    }
    return Plan(sessions, sizes, counts, runs, args.databases)


def measure_crmmail(
    database_url: str, plan: Plan, size: int, log: Path, profile_to: Path | None = None
) -> float:
    port = free_port()
    command = crmmail_command(database_url, "serve", "--smtp-host", HOST, "--smtp-port", str(port))
    body = make_body(size)
    try:
        with running(command, port, log, crmmail_env(plan.sessions)) as process:
            if profile_to is None:
                return asyncio.run(drive(port, plan.sessions, plan.counts[size], body))
            spy_command = [py_spy() or "py-spy", "record", "--pid", str(process.pid)]
            spy = subprocess.Popen(
                [*spy_command, *PY_SPY_OPTIONS, "--output", str(profile_to)],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            time.sleep(1.0)  # py-spy attaches
            rate = asyncio.run(drive(port, plan.sessions, plan.counts[size], body))
    except BenchError as error:
        raise BenchError(f"crmmail: {error} (its last output line: {log_tail(log)})") from None
    spy.wait(STOP_TIMEOUT)  # it writes its output once the server has exited
    return rate


def log_tail(log: Path) -> str:
    return last_line(log.read_text(errors="replace")) if log.exists() else "(no log)"


def measure_bare(plan: Plan, size: int, log: Path) -> float:
    port = free_port()
    command = [sys.executable, str(Path(__file__).resolve()), "--serve-bare", str(port)]
    try:
        with running(command, port, log, dict(os.environ)):
            return asyncio.run(drive(port, plan.sessions, plan.counts[size], make_body(size)))
    except BenchError as error:
        raise BenchError(f"bare server: {error} (its last output line: {log_tail(log)})") from None


def measure_postfix(postfix: Postfix, plan: Plan, size: int, seen: dict[int, int]) -> float:
    postfix.wait_until_drained()
    try:
        rate = smtp_source(postfix.port, plan.sessions, plan.counts[size], size)
    except BenchError as error:
        raise BenchError(
            f"Postfix: {error} (its last log line: {postfix.last_log_line()})"
        ) from None
    if postfix.rejections():
        raise BenchError(f"Postfix rejected mail: {postfix.last_log_line()}")
    postfix.wait_until_drained()
    logged = postfix.last_message_size()
    if logged is not None:
        seen[size] = logged
    return rate


def message_bytes(size: int) -> int:
    return len(make_message(make_body(size)))


def benchmark(args: argparse.Namespace) -> tuple[list[dict[str, object]], list[str]]:
    plan = plan_from(args)
    why_no_postfix = "left out (--no-postfix)" if args.no_postfix else postfix_missing()
    rates: dict[tuple[str, int], list[float]] = {}
    notes = [
        f"{plan.sessions} concurrent sessions, one connection each; messages per measurement: "
        + ", ".join(f"{plan.counts[size]} x {label(size)}" for size in plan.sizes)
        + f"; {plan.runs} run(s), server order alternating; load average at start "
        + "{:.2f} {:.2f} {:.2f}".format(*os.getloadavg())
        + " (other work on this machine moves every figure; compare the ratios)",
        "crmmail: `crmmail serve` (listener and worker in one process) on a fresh database per "
        "measurement; SQLite in a file on the temporary directory's disk, PostgreSQL "
        + (
            "at the URL given"
            if args.database_url
            else "in a throwaway cluster with fsync, "
            "synchronous_commit and full_page_writes on (PostgreSQL's defaults)"
        ),
    ]
    with (
        tempfile.TemporaryDirectory(prefix="crmmail-bench-ingest-") as tmp,
        contextlib.ExitStack() as stack,
    ):
        workdir = Path(tmp)
        notes.append(
            f"SQLite files, the PostgreSQL cluster and Postfix's queue are on one "
            f"{filesystem(workdir)} file system ({tempfile.gettempdir()})"
        )
        cluster = None
        if POSTGRESQL in plan.databases and not args.database_url:
            cluster = stack.enter_context(durable_postgres())
        databases = Databases(workdir, cluster, args.database_url)
        postfix = None
        if why_no_postfix is None:
            postfix = stack.enter_context(running_postfix(workdir))
            smtp_source(postfix.port, plan.sessions, plan.sessions, 1024)  # start its smtpds
            notes.append(
                "Postfix: a private instance (`postfix -c DIR start`), one smtpd on loopback "
                f"relaying {SMART_DOMAIN} to `discard:`, driven by `smtp-source -d -s "
                f"{plan.sessions} -m N -l SIZE` timed from start to exit (connecting included); "
                "its cleanup fsyncs each queue file before smtpd answers 250 (one fsync per "
                "message, checked with strace)"
            )
        else:
            notes.append(f"Postfix: not measured: {why_no_postfix}")
        servers = [BARE, *([POSTFIX] if postfix else []), *plan.databases]
        postfix_sizes: dict[int, int] = {}
        for run in range(1, plan.runs + 1):
            for size in plan.sizes:
                order = servers if run % 2 else servers[::-1]
                for server in order:
                    log = workdir / f"{server}-{run}-{size}.log"
                    if server == BARE:
                        rate = measure_bare(plan, size, log)
                    elif server == POSTFIX:
                        assert postfix is not None
                        rate = measure_postfix(postfix, plan, size, postfix_sizes)
                    else:
                        url = databases.fresh(server, f"bench_{run}_{size}")
                        rate = measure_crmmail(url, plan, size, log)
                    rates.setdefault((server, size), []).append(rate)
                print(
                    f"run {run}/{plan.runs}, {label(size)}: "
                    + ", ".join(f"{server} {rates[server, size][-1]:.1f}" for server in servers)
                    + " msg/s",
                    file=sys.stderr,
                    flush=True,
                )
        if postfix_sizes:
            notes.append(
                "message sizes on the wire, crmmail and bare / Postfix (qmgr's size=): "
                + ", ".join(
                    f"{label(size)}: {message_bytes(size):,} / {postfix_sizes[size]:,} B"
                    for size in plan.sizes
                    if size in postfix_sizes
                )
            )
        if args.profile:
            notes.extend(profiles(plan, databases, workdir))
    return rows_from(plan, rates, postfix is not None), notes


def profiles(plan: Plan, databases: Databases, workdir: Path) -> list[str]:
    """One more crmmail run per database at the smallest size, sampled by py-spy."""
    if py_spy() is None:
        return ["profile: py-spy not installed (pip install -e '.[dev]')"]
    size = min(plan.sizes)
    notes = []
    for backend in plan.databases:
        raw = workdir / f"profile-{backend}.txt"
        url = databases.fresh(backend, f"bench_profile_{size}")
        rate = measure_crmmail(url, plan, size, workdir / f"profile-{backend}.log", raw)
        summary = profile_summary(raw, PROFILE_TOP) if raw.exists() else "py-spy wrote nothing"
        notes.append(
            f"where crmmail's time goes ({backend}, {label(size)}, {rate:.0f} msg/s while "
            f"sampled by py-spy at 200 Hz, CPU samples of every thread): {summary}"
        )
    return notes


def label(size: int) -> str:
    if size % MIB == 0:
        return f"{size // MIB} MiB"
    if size % 1024 == 0:
        return f"{size // 1024} KiB"
    return f"{size} B"


def rows_from(
    plan: Plan, rates: dict[tuple[str, int], list[float]], with_postfix: bool
) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    for size in plan.sizes:
        megabytes = message_bytes(size) / 1e6
        for backend in plan.databases:
            ours = rates[backend, size]
            name = "SQLite" if backend == SQLITE else "PostgreSQL"
            what = f"intake {label(size)}, {name}"
            rows.append(
                row(
                    f"{what} vs bare aiosmtpd",
                    "msg/s",
                    ours,
                    ratio_at_least(BARE_TARGET),
                    rates[BARE, size],
                    BARE,
                )
            )
            postfix = rates.get((POSTFIX, size)) if with_postfix else None
            rows.append(
                row(
                    f"{what} vs Postfix",
                    "msg/s",
                    ours,
                    ratio_at_least(POSTFIX_TARGET),
                    postfix,
                    POSTFIX if postfix else None,
                )
            )
            rows.append(
                row(
                    f"{what}, throughput",
                    "MB/s",
                    [rate * megabytes for rate in ours],
                    reported(),
                    [rate * megabytes for rate in rates[BARE, size]],
                    BARE,
                )
            )
    return rows


# -- the command line ------------------------------------------------------------------------


def sizes(text: str) -> list[int]:
    try:
        return [positive(part.strip()) for part in text.split(",") if part.strip()]
    except argparse.ArgumentTypeError as error:
        raise argparse.ArgumentTypeError(f"sizes: {error}") from None


def databases(text: str) -> list[str]:
    chosen = [part.strip() for part in text.split(",") if part.strip()]
    unknown = [name for name in chosen if name not in DATABASES]
    if unknown or not chosen:
        raise argparse.ArgumentTypeError(f"choose from {', '.join(DATABASES)}, not {text!r}")
    return chosen


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=positive, default=20, help="concurrent SMTP sessions")
    parser.add_argument(
        "--sizes", type=sizes, default=list(DEFAULT_SIZES), help="message body sizes, bytes"
    )
    parser.add_argument(
        "--messages", type=positive, default=2000, help="most messages per measurement"
    )
    parser.add_argument(
        "--megabytes", type=positive, default=100, help="most MiB per measurement (big sizes)"
    )
    parser.add_argument("--runs", type=positive, default=3, help="runs (median, min-max)")
    parser.add_argument(
        "--databases", type=databases, default=list(DATABASES), help="sqlite,postgresql"
    )
    parser.add_argument(
        "--database-url", help="a postgresql+psycopg:// URL instead of a throwaway cluster"
    )
    parser.add_argument("--no-postfix", action="store_true", help="leave Postfix out")
    parser.add_argument("--profile", action="store_true", help="py-spy one more crmmail run")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, one run")
    parser.add_argument("--json", type=json_path, metavar="FILE", help="write the result file")
    # Internal: how this script starts the bare server in its own process.
    parser.add_argument("--serve-bare", type=int, metavar="PORT", help=argparse.SUPPRESS)
    return parser.parse_args()


def exit_on_sigterm() -> None:
    """Make SIGTERM unwind like an error, so that the servers are stopped on the way out."""
    signal.signal(
        signal.SIGTERM, lambda signum, _frame: sys.exit(f"ingest: stopped by signal {signum}")
    )


def print_table(rows: list[dict[str, object]], notes: list[str]) -> None:
    for item in rows:
        reference = (
            f"{item['reference']:.1f} ({item['reference_name']})"
            if item["reference"] is not None
            else "—"
        )
        ratio = f"{item['ratio']:.2f}x" if item["ratio"] is not None else "—"
        print(
            f"{item['what']:<44} {item['ours']:>9.1f} {item['unit']:<6} ref {reference:<26}"
            f" ratio {ratio:<7} target {item['target']:<6} [{item['spread']}]"
        )
    for note in notes:
        print(f"- {note}")


def main() -> None:
    args = parse_args()
    if args.serve_bare is not None:
        asyncio.run(serve_bare(args.serve_bare))
        return
    exit_on_sigterm()
    try:
        rows, notes = benchmark(args)
    except (BenchError, RuntimeError, subprocess.CalledProcessError, OSError) as error:
        sys.exit(f"ingest: error: {error}")
    except KeyboardInterrupt:
        sys.exit("ingest: interrupted")
    print_table(rows, notes)
    if args.json:
        write_result(args.json, BENCH, rows, notes)


if __name__ == "__main__":
    main()
