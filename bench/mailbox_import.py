"""Measure crmmail's first import of a mailbox next to mbsync pulling the same Dovecot mailbox.

The mailbox. One real Dovecot on loopback holds one user whose INBOX gets ``--messages``
generated messages, the same ones on every run and machine (a seeded random): mostly 2-20 KiB
plain text, some HTML multipart/alternative, a few 100-300 KiB ones with a base64 attachment,
all dated within the last 28 days so that every one falls inside crmmail's import window. The
user has no Sent folder, so both tools pull INBOX and nothing else. Before the first run every
message is read once, so that no tool pays for Dovecot's cold caches.

Each run is a first import from scratch for each tool, in alternating order:

- crmmail: a fresh SQLite database (account, user, box connected through
  ``services.mailboxes.connect_mailbox``, which logs in to IMAP and SMTP and is not timed), then
  ``SyncScheduler.sync_mailbox`` timed: fetch with ``BODY.PEEK[]`` in batches, parse, store,
  put on CRM cards, commit each batch (SQLite ``synchronous=FULL``). ``import_limit`` is at least
  ``--messages`` (500 is its default), so all of them are imported. PostgreSQL is not measured.
- mbsync: a fresh maildir and sync state, ``mbsync -c RC inbox`` (Sync Pull, Create Near)
  timed from process start to exit: login, fetch every message, write each one to the maildir
  with fsync (its default ``FSync yes``).

Bytes. Both tools reach Dovecot's implicit-TLS port as ``localhost`` through a counting TCP relay
that runs in its own process (so it never competes with crmmail's sync for the GIL). Wire bytes
are what crosses the relay, TLS records in both directions, login and logout included. Payload
bytes are the message bytes fetched: crmmail's ``report.bytes_fetched``; for mbsync the maildir
files it wrote, less the ``X-TUID`` header it adds, each LF counted as the CRLF it was on the
wire (its maildir holds LF line endings). Both should equal the mailbox size shown.

Prints per tool the median and min-max over the runs, and the median of the per-run time
ratios crmmail/mbsync.

    .venv/bin/python bench/mailbox_import.py [--messages 500] [--runs 3] [--smoke] [--json FILE]
"""

import argparse
import contextlib
import html
import logging
import os
import platform
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime, formataddr
from pathlib import Path
from string import Template
from typing import IO, Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script: make ``tests.*`` importable
    sys.path.insert(0, str(ROOT))

from bench.common import json_path, positive, ratio_at_most, reported, row, write_result  # noqa: E402
from crmmail.config import Settings  # noqa: E402
from crmmail.connector.credentials import load_key_ring, new_key  # noqa: E402
from crmmail.connector.scheduler import Schedule, SyncScheduler  # noqa: E402
from crmmail.services import accounts, mailboxes  # noqa: E402
from crmmail.storage.base import utcnow  # noqa: E402
from crmmail.storage.database import Database, make_engine  # noqa: E402
from crmmail.storage.migrate import upgrade_to_head  # noqa: E402
from tests.dovecot import DOVECOT, Dovecot, running_dovecot  # noqa: E402
from tests.submission import Submission, running_submission  # noqa: E402
from tests.tlsca import TestCA, make_test_ca  # noqa: E402

BENCH = "mailbox_import"
SMOKE_MESSAGES = 20
TARGET_RATIO = 1.5  # crmmail's wall time at most 1.5x mbsync's (issue 6)
HOST = "localhost"  # the name on the test certificate
LISTEN_ADDRESS = "127.0.0.1"
ACCOUNT = "bench"
EMAIL = "bench@example.com"
PASSWORD = "bench-password"
FOLDER = "INBOX"
CHANNEL = "inbox"
OURS = "crmmail"
MBSYNC = "mbsync"
SEED = 500
KIB = 1024
MIB = 1024 * 1024
WINDOW_DAYS = 28  # message dates: inside crmmail's 30-day import window
IMPORT_DAYS = 30
DEFAULT_IMPORT_LIMIT = 500
HTML_SHARE = 0.16
ATTACHMENT_SHARE = 0.04
TEXT_SIZES = (2 * KIB, 20 * KIB)
ATTACHMENT_SIZES = (100 * KIB, 300 * KIB)  # whole message, attachment base64-encoded
LINE_WIDTH = 72
RELAY_CHUNK = 65536
RELAY_IDLE_DEADLINE = 10.0  # seconds for a tool's connections to close after it is done
MBSYNC_TIMEOUT = 600.0
STOP_TIMEOUT = 5.0
TUID_HEADER = b"\nX-TUID: "  # mbsync's own header, see fetched_size

WORDS = (
    "account", "agenda", "attached", "budget", "call", "contract", "customer", "deadline",
    "delivery", "draft", "estimate", "follow", "forecast", "invoice", "licence", "meeting",
    "migration", "notes", "offer", "order", "partner", "payment", "plan", "pricing", "project",
    "proposal", "quarter", "question", "quote", "renewal", "report", "request", "review",
    "schedule", "service", "shipping", "signed", "support", "team", "terms", "thanks", "the",
    "and", "for", "with", "we", "you", "our", "this", "next", "week", "please", "can", "will",
    "update", "before", "after", "about", "on", "in", "to", "of", "a", "is", "it", "as", "by",
)  # fmt: skip
SUBJECTS = (
    "Re: quote for the spring order",
    "Invoice 2024-117",
    "Meeting notes",
    "Question about the contract renewal",
    "Fwd: shipping schedule",
    "Proposal draft v3",
    "Support ticket update",
    "Pricing for 50 seats",
)
SENDERS = tuple(
    (f"{first} {last}", f"{first.lower()}.{last.lower()}@{domain}")
    for first, last, domain in (
        ("Ann", "Lee", "customer.test"),
        ("Bo", "Chen", "customer.test"),
        ("Carla", "Diaz", "supplier.test"),
        ("Dev", "Patel", "partner.test"),
        ("Erik", "Olsen", "supplier.test"),
        ("Fatima", "Khan", "customer.test"),
        ("Gus", "Moreau", "prospect.test"),
        ("Hana", "Sato", "partner.test"),
    )
)

MBSYNC_CONFIG = Template(
    """IMAPAccount bench
Host $host
Port $port
User $user
Pass "$password"
SSLType IMAPS
CertificateFile $ca_file

IMAPStore far
Account bench

MaildirStore near
Path $maildir/
Inbox $maildir/INBOX

Channel $channel
Far :far:INBOX
Near :near:INBOX
Sync Pull
Create Near
Expunge None
SyncState *
"""
)


class BenchError(Exception):
    """Anything unexpected: the benchmark stops and prints this one line."""


# -- the mailbox -----------------------------------------------------------------------------


def make_mailbox(count: int, now: datetime) -> list[tuple[bytes, datetime]]:
    """``count`` messages, oldest first, each with its internal date; the same for a given count."""
    rng = random.Random(SEED)
    window = WINDOW_DAYS * 86400
    ages = sorted((rng.uniform(60, window) for _ in range(count)), reverse=True)
    dates = [(now - timedelta(seconds=age)).replace(microsecond=0) for age in ages]
    return [(make_message(rng, index, when), when) for index, when in enumerate(dates)]


def make_message(rng: random.Random, index: int, when: datetime) -> bytes:
    """Plain text, HTML alternative, or text with a base64 attachment, as the dice say."""
    message = EmailMessage(policy=SMTP)
    message["From"] = formataddr(rng.choice(SENDERS))
    message["To"] = EMAIL
    if rng.random() < 0.3:
        message["Cc"] = formataddr(rng.choice(SENDERS))
    message["Subject"] = f"{rng.choice(SUBJECTS)} ({index})"
    message["Date"] = format_datetime(when)
    message["Message-ID"] = f"<bench-{SEED}-{index}@customer.test>"
    kind = rng.random()
    if kind < ATTACHMENT_SHARE:
        message.set_content(prose(rng, rng.randint(*TEXT_SIZES) // 4))
        encoded_size = rng.randint(*ATTACHMENT_SIZES)
        message.add_attachment(
            rng.randbytes(encoded_size * 3 // 4),
            maintype="application",
            subtype="pdf",
            filename=f"document-{index}.pdf",
        )
    else:
        text = prose(rng, rng.randint(*TEXT_SIZES))
        message.set_content(text)
        if kind < ATTACHMENT_SHARE + HTML_SHARE:
            message.add_alternative(as_html(text), subtype="html")
    return message.as_bytes()


def prose(rng: random.Random, size: int) -> str:
    """About ``size`` characters of words in lines of at most ``LINE_WIDTH``, in paragraphs."""
    lines: list[str] = []
    length = 0
    line: list[str] = []
    width = 0
    for word in rng.choices(WORDS, k=size // 5 + 8):
        if width + len(word) + 1 > LINE_WIDTH:
            lines.append(" ".join(line))
            length += width + 1
            line, width = [], 0
            if rng.random() < 0.15:
                lines.append("")
            if length >= size:
                break
        line.append(word)
        width += len(word) + 1
    return "\n".join(lines) + "\n"


def as_html(text: str) -> str:
    paragraphs = (part for part in text.split("\n\n") if part.strip())
    body = "\n".join(f"<p>{html.escape(part)}</p>" for part in paragraphs)
    return f"<html>\n<body>\n{body}\n</body>\n</html>\n"


def fill_mailbox(dovecot: Dovecot, messages: list[tuple[bytes, datetime]]) -> None:
    dovecot.add_user(EMAIL, PASSWORD)
    raws = [raw for raw, _ in messages]
    dovecot.append_many(EMAIL, FOLDER, raws, internal_dates=[when for _, when in messages])
    status = dovecot.status(EMAIL, FOLDER)
    if status[b"MESSAGES"] != len(messages):
        raise BenchError(f"Dovecot holds {status[b'MESSAGES']} messages, not {len(messages)}")


def warm_up(dovecot: Dovecot) -> None:
    """Read every message once, so the first tool measured does not pay for cold caches."""
    with dovecot.login(EMAIL) as client:
        client.select_folder(FOLDER, readonly=True)
        client.fetch(client.search("ALL"), [b"BODY.PEEK[]"])


# -- the counting relay (run by this script in a subprocess) ---------------------------------


class CountingRelay:
    """Forwards each connection to ``target`` with two threads, counting the bytes either way."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.listener = socket.create_server((LISTEN_ADDRESS, 0))
        self.port = int(self.listener.getsockname()[1])
        self._lock = threading.Lock()
        self.down = 0  # server -> client
        self.up = 0  # client -> server
        self.open = 0  # connections not yet closed on both sides

    def start(self) -> None:
        threading.Thread(target=self._accept, name="accept", daemon=True).start()

    def counts(self) -> tuple[int, int, int]:
        with self._lock:
            return self.down, self.up, self.open

    def _accept(self) -> None:
        while True:
            client, _ = self.listener.accept()
            try:
                upstream = socket.create_connection(self.target)
            except OSError:  # Dovecot is gone: the client sees its connection close
                client.close()
                continue
            for end in (client, upstream):
                end.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self._lock:
                self.open += 1
            pumps = [
                threading.Thread(target=self._pump, args=(upstream, client, "down"), daemon=True),
                threading.Thread(target=self._pump, args=(client, upstream, "up"), daemon=True),
            ]
            for pump in pumps:
                pump.start()
            threading.Thread(
                target=self._close_after, args=(pumps, client, upstream), daemon=True
            ).start()

    def _pump(self, source: socket.socket, sink: socket.socket, direction: str) -> None:
        try:
            while data := source.recv(RELAY_CHUNK):
                sink.sendall(data)
                with self._lock:
                    if direction == "down":
                        self.down += len(data)
                    else:
                        self.up += len(data)
            sink.shutdown(socket.SHUT_WR)  # pass the end of the stream on
        except OSError:  # a reset: end the other direction too
            for end in (source, sink):
                with contextlib.suppress(OSError):  # that end is closed already
                    end.shutdown(socket.SHUT_RDWR)

    def _close_after(
        self, pumps: list[threading.Thread], client: socket.socket, upstream: socket.socket
    ) -> None:
        for pump in pumps:
            pump.join()
        client.close()
        upstream.close()
        with self._lock:
            self.open -= 1


def serve_relay(target_port: int) -> None:
    """Print the port, then answer each line on stdin with ``down up open``; stop at EOF."""
    relay = CountingRelay((LISTEN_ADDRESS, target_port))
    relay.start()
    print(relay.port, flush=True)
    for _ in sys.stdin:
        print(*relay.counts(), flush=True)


@dataclass(frozen=True)
class Wire:
    down: int
    up: int

    def __sub__(self, other: "Wire") -> "Wire":
        return Wire(self.down - other.down, self.up - other.up)


class RelayProcess:
    """The relay subprocess, seen from here."""

    def __init__(self, process: subprocess.Popen[str], port: int) -> None:
        self.process = process
        self.port = port

    def counts(self) -> Wire:
        """Bytes relayed so far, once every connection through the relay has closed."""
        deadline = time.monotonic() + RELAY_IDLE_DEADLINE
        while True:
            down, up, still_open = (int(part) for part in self._ask().split())
            if still_open == 0:
                return Wire(down, up)
            if time.monotonic() > deadline:
                raise BenchError(f"{still_open} connection(s) still open through the relay")
            time.sleep(0.01)

    def _ask(self) -> str:
        stdin, stdout = self._pipes()
        try:
            stdin.write("\n")
            stdin.flush()
        except OSError as error:
            raise BenchError(f"the relay is gone: {error}") from None
        answer = stdout.readline()
        if not answer:
            raise BenchError(f"the relay exited with status {self.process.poll()}")
        return answer

    def _pipes(self) -> tuple[IO[str], IO[str]]:
        assert self.process.stdin is not None and self.process.stdout is not None
        return self.process.stdin, self.process.stdout


@contextlib.contextmanager
def running_relay(target_port: int) -> Iterator[RelayProcess]:
    command = [sys.executable, str(Path(__file__).resolve()), "--relay", str(target_port)]
    process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        if not line.strip().isdigit():
            raise BenchError(f"the relay did not start (status {process.poll()})")
        yield RelayProcess(process, int(line))
    finally:
        if process.stdin is not None:
            with contextlib.suppress(OSError):  # it has exited already
                process.stdin.close()
        try:
            process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


# -- one first import per tool ---------------------------------------------------------------


@dataclass(frozen=True)
class Measurement:
    seconds: float
    messages: int
    payload_bytes: int
    wire: Wire


@dataclass(frozen=True)
class Servers:
    ca: TestCA
    relay: RelayProcess
    submission: Submission
    sqlite_template: Path


def make_sqlite_template(path: Path) -> Path:
    engine = make_engine(f"sqlite:///{path}")
    upgrade_to_head(engine)
    engine.dispose()
    return path


def import_with_crmmail(servers: Servers, workdir: Path, messages: int) -> Measurement:
    """Fresh database, connect the box (untimed), then time one ``sync_mailbox``."""
    workdir.mkdir()
    path = workdir / "crmmail.db"
    shutil.copyfile(servers.sqlite_template, path)
    settings = Settings(
        database_url=f"sqlite:///{path}",
        allow_private_mail_hosts=True,
        tls_ca_file=servers.ca.ca_file,
        secret_key=new_key(),
        import_limit=max(DEFAULT_IMPORT_LIMIT, messages),
        import_days=IMPORT_DAYS,
    )
    db = Database.from_url(settings.database_url)
    try:
        with db.transaction() as session:
            accounts.create_account(session, ACCOUNT, None)
            accounts.add_user(
                session,
                ACCOUNT,
                EMAIL,
                name=None,
                admin=True,
                email_access=True,
                smart_domains=settings.smart_domains,
            )
        request = mailboxes.ConnectRequest(
            slug=ACCOUNT,
            user_email=EMAIL,
            email=EMAIL,
            password=PASSWORD,
            imap=mailboxes.HostChoice(HOST, servers.relay.port, "ssl"),
            smtp=mailboxes.HostChoice(servers.submission.host, servers.submission.port, "ssl"),
        )
        mailbox_id = int(mailboxes.connect_mailbox(db, settings, request)["id"])
        schedule = Schedule(
            settings.sync_interval_min, settings.sync_interval_max, random.Random(SEED)
        )
        scheduler = SyncScheduler(db, settings, load_key_ring(settings), schedule, utcnow)
        before = servers.relay.counts()
        start = time.perf_counter()
        result = scheduler.sync_mailbox(mailbox_id)
        seconds = time.perf_counter() - start
        wire = servers.relay.counts() - before
    finally:
        db.dispose()
    report = result.report
    if result.status != "active" or result.error is not None:
        raise BenchError(f"crmmail's sync ended {result.status}: {result.error}")
    if report.folders != {"inbox": FOLDER} or report.quarantined:
        raise BenchError(f"crmmail's sync did something else: {result.as_dict()}")
    return Measurement(seconds, report.imported, report.bytes_fetched, wire)


def import_with_mbsync(servers: Servers, workdir: Path, mbsync: str) -> Measurement:
    """Fresh maildir and sync state, then time one ``mbsync`` run of the INBOX channel."""
    maildir = workdir / "maildir"
    maildir.mkdir(parents=True)
    config = workdir / "mbsyncrc"
    config.touch(mode=0o600)
    config.write_text(
        MBSYNC_CONFIG.substitute(
            host=HOST,
            port=servers.relay.port,
            user=EMAIL,
            password=PASSWORD,
            ca_file=servers.ca.ca_file,
            maildir=maildir,
            channel=CHANNEL,
        )
    )
    before = servers.relay.counts()
    start = time.perf_counter()
    try:
        done = subprocess.run(
            [mbsync, "-q", "-c", str(config), CHANNEL],
            capture_output=True,
            text=True,
            timeout=MBSYNC_TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise BenchError(f"mbsync did not finish within {MBSYNC_TIMEOUT:.0f} s") from None
    seconds = time.perf_counter() - start
    wire = servers.relay.counts() - before
    if done.returncode != 0:
        raise BenchError(f"mbsync exited with {done.returncode}: {last_line(done.stderr)}")
    files = [path for sub in ("cur", "new") for path in (maildir / FOLDER / sub).iterdir()]
    payload = sum(fetched_size(path.read_bytes()) for path in files)
    return Measurement(seconds, len(files), payload, wire)


def fetched_size(stored: bytes) -> int:
    """Size of a maildir file as IMAP sent it: CRLF line endings, without mbsync's ``X-TUID``.

    mbsync stores LF line endings and adds an ``X-TUID:`` header to each message it writes.
    """
    header_end = stored.find(b"\n\n")
    tuid = stored.find(TUID_HEADER, 0, header_end)
    if tuid != -1:
        stored = stored[:tuid] + stored[stored.index(b"\n", tuid + 1) :]
    return len(stored) + stored.count(b"\n") - stored.count(b"\r\n")


def last_line(text: str) -> str:
    lines = text.strip().splitlines()
    return lines[-1] if lines else "(no output)"


# -- the benchmark and its report ------------------------------------------------------------


def find_mbsync() -> str:
    found = shutil.which(MBSYNC)
    if found is None:
        raise BenchError(
            "mbsync not found: run scripts/ensure-test-services (Debian: apt-get install isync)"
        )
    return found


def tool_version(command: list[str]) -> str:
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    return last_line(done.stdout or done.stderr)


def benchmark(args: argparse.Namespace) -> dict[str, Any]:
    mbsync = find_mbsync()
    if not Path(DOVECOT).exists():
        raise BenchError(f"{DOVECOT} not found: run scripts/ensure-test-services")
    results: dict[str, list[Measurement]] = {OURS: [], MBSYNC: []}
    messages = make_mailbox(args.messages, datetime.now(UTC))
    with contextlib.ExitStack() as stack:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="crmmail-bench-")))
        ca = make_test_ca(workdir / "ca")
        dovecot = stack.enter_context(running_dovecot(workdir / "dovecot", ca))
        fill_mailbox(dovecot, messages)
        warm_up(dovecot)
        relay = stack.enter_context(running_relay(dovecot.ssl_port))
        submission = stack.enter_context(running_submission(ca, {EMAIL: PASSWORD}, True))
        template = make_sqlite_template(workdir / "template.db")
        servers = Servers(ca, relay, submission, template)
        for run in range(1, args.runs + 1):
            order = (OURS, MBSYNC) if run % 2 else (MBSYNC, OURS)
            for tool in order:
                rundir = workdir / f"{tool}-{run}"
                if tool == OURS:
                    measured = import_with_crmmail(servers, rundir, args.messages)
                else:
                    measured = import_with_mbsync(servers, rundir, mbsync)
                if measured.messages != args.messages:
                    raise BenchError(
                        f"{tool} imported {measured.messages} of {args.messages} messages"
                    )
                results[tool].append(measured)
            print(
                f"run {run}/{args.runs}: {OURS} {results[OURS][-1].seconds:.2f} s, "
                f"{MBSYNC} {results[MBSYNC][-1].seconds:.2f} s",
                file=sys.stderr,
                flush=True,
            )
    return summary(args, messages, results, mbsync)


def spread(values: list[float]) -> dict[str, Any]:
    return {
        "median": statistics.median(values),
        "min": min(values),
        "max": max(values),
        "runs": values,
    }


def tool_summary(runs: list[Measurement]) -> dict[str, Any]:
    return {
        "messages": runs[0].messages,
        "seconds": spread([run.seconds for run in runs]),
        "payload_bytes": spread([run.payload_bytes for run in runs]),
        "wire_down_bytes": spread([run.wire.down for run in runs]),
        "wire_up_bytes": spread([run.wire.up for run in runs]),
        "messages_per_s": spread([run.messages / run.seconds for run in runs]),
    }


def summary(
    args: argparse.Namespace,
    messages: list[tuple[bytes, datetime]],
    results: dict[str, list[Measurement]],
    mbsync: str,
) -> dict[str, Any]:
    ratios = [
        ours.seconds / theirs.seconds
        for ours, theirs in zip(results[OURS], results[MBSYNC], strict=True)
    ]
    return {
        "messages": args.messages,
        "runs": args.runs,
        "folder": FOLDER,
        "mailbox_bytes": sum(len(raw) for raw, _ in messages),
        "largest_message_bytes": max(len(raw) for raw, _ in messages),
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "dovecot": tool_version([DOVECOT, "--version"]),
        "mbsync_version": tool_version([mbsync, "--version"]),
        "database": "sqlite (fresh per run)",
        "tools": {OURS: tool_summary(results[OURS]), MBSYNC: tool_summary(results[MBSYNC])},
        "time_ratio_crmmail_to_mbsync": spread(ratios),
    }


def table(result: dict[str, Any]) -> str:
    def low_high(figure: dict[str, Any], scale: float, digits: int) -> str:
        median, low, high = (figure[key] / scale for key in ("median", "min", "max"))
        return f"{median:.{digits}f} ({low:.{digits}f}-{high:.{digits}f})"

    def row(tool: str) -> str:
        figures = result["tools"][tool]
        wire = (
            f"{figures['wire_down_bytes']['median'] / MIB:.2f} / "
            f"{figures['wire_up_bytes']['median'] / MIB:.3f}"
        )
        return (
            f"{tool:<9}{low_high(figures['seconds'], 1, 2):>20}{figures['messages']:>10}"
            f"{figures['payload_bytes']['median'] / MIB:>13.2f}{wire:>18}"
            f"{low_high(figures['messages_per_s'], 1, 0):>20}"
        )

    ratio = result["time_ratio_crmmail_to_mbsync"]
    return "\n".join(
        [
            f"First import of {result['folder']} only: {result['messages']} messages "
            f"({result['mailbox_bytes'] / MIB:.2f} MiB, largest "
            f"{result['largest_message_bytes'] / KIB:.0f} KiB) from Dovecot "
            f"{result['dovecot'].split()[0]} over TLS on loopback, {result['runs']} run(s)",
            f"machine: {result['cores']} cores, Python {result['python']}; "
            f"crmmail on {result['database']}; {result['mbsync_version']}",
            "",
            f"{'tool':<9}{'seconds':>20}{'messages':>10}{'payload MiB':>13}"
            f"{'wire MiB down/up':>18}{'messages/s':>20}",
            row(OURS),
            row(MBSYNC),
            "",
            "seconds and messages/s: median (min-max); MiB: medians; "
            f"time crmmail/mbsync: {low_high(ratio, 1, 2)}",
        ]
    )


def result_rows(result: dict[str, Any]) -> tuple[list[dict[str, Any]], list[str]]:
    """The rows and notes of the result file (``bench/common.py``'s schema)."""
    ours, theirs = result["tools"][OURS], result["tools"][MBSYNC]
    what = (
        f"mailbox import: first sync of {result['messages']} messages "
        f"({result['mailbox_bytes'] / MIB:.1f} MiB) from Dovecot, TLS, loopback"
    )
    rows = [
        row(
            what,
            "s",
            ours["seconds"]["runs"],
            ratio_at_most(TARGET_RATIO),
            theirs["seconds"]["runs"],
            f"mbsync {result['mbsync_version']}",
        ),
        row(
            "mailbox import: messages/s (crmmail on SQLite, mbsync to a Maildir)",
            "messages/s",
            ours["messages_per_s"]["runs"],
            reported(),
            theirs["messages_per_s"]["runs"],
            "mbsync",
        ),
    ]
    notes = [
        f"mailbox import: INBOX only, {result['messages']} messages, largest "
        f"{result['largest_message_bytes'] / KIB:.0f} KiB; crmmail stores into a fresh SQLite "
        "database (WAL, synchronous=FULL) and puts mail on CRM cards, mbsync writes a Maildir "
        "with fsync; both through the same counting relay, in alternating order per run",
        "mailbox import, where crmmail's time goes (cProfile, 500 messages, 2026-11-27): "
        "before: one transaction per batch of 50 but a dozen statements and two savepoints "
        "per message (thread lookup and insert, key lookup, contacts, ledger: about 60%), "
        "parse_message in the same thread (about 25%), IMAPClient's INTERNALDATE parsing "
        "(500 dates fetched to plan the import, and again with every body); after: a few "
        "statements per batch (batch_capture.py), the next batch fetched on a reader thread "
        "and parsed in 2 forked processes while the last one is stored, no INTERNALDATE unless "
        "the window holds more than the import limit. What is left: SQLite writing the 11 MiB "
        "of raw messages (WAL, synchronous=FULL, one commit per batch), parse_message's CPU "
        "in the workers, and TLS reads; with 2 cores shared by Dovecot and the relay",
    ]
    return rows, notes


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=positive, default=500, help="messages in the INBOX")
    parser.add_argument("--runs", type=positive, default=3, help="runs (median, min-max)")
    parser.add_argument("--smoke", action="store_true", help="tiny mailbox, one run")
    parser.add_argument("--json", type=json_path, metavar="FILE", help="write the result file")
    # Internal: how this script starts the counting relay in its own process.
    parser.add_argument("--relay", type=int, metavar="PORT", help=argparse.SUPPRESS)
    return parser.parse_args()


def exit_on_sigterm() -> None:
    """Make SIGTERM unwind like an error, so that the servers are stopped on the way out."""
    signal.signal(
        signal.SIGTERM,
        lambda signum, _frame: sys.exit(f"mailbox_import: stopped by signal {signum}"),
    )


def main() -> None:
    args = parse_args()
    if args.relay is not None:
        serve_relay(args.relay)
        return
    exit_on_sigterm()
    logging.basicConfig(level=logging.WARNING, format="%(name)s: %(message)s")
    # aiosmtpd (under the submission stub) warns about its own deprecated API at every AUTH.
    logging.getLogger("mail.log").setLevel(logging.ERROR)
    if args.smoke:
        args.messages, args.runs = SMOKE_MESSAGES, 1
    try:
        result = benchmark(args)
    except BenchError as error:
        sys.exit(f"mailbox_import: error: {error}")
    except KeyboardInterrupt:
        sys.exit("mailbox_import: interrupted")
    print(table(result))
    if args.json:
        rows, notes = result_rows(result)
        write_result(args.json, BENCH, rows, notes)


if __name__ == "__main__":
    main()
