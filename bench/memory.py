"""Measure the memory of ``crmmail serve`` under large messages: peak RSS against message sizes.

Two scenarios, each on a fresh ``serve`` process and a fresh SQLite database (or the PostgreSQL
database given with --database-url): N concurrent sessions each sending one message just under
the size limit (default 10 x 25 MiB, the default CRMMAIL_MAX_MESSAGE_SIZE), and M concurrent
sessions of 1 MiB each (default 20). For each: the RSS once started (baseline), the peak RSS
(VmHWM from /proc/PID/status) when every message has been answered 250 (intake), and after the
worker has processed them all (intake + worker); and the growth per in-flight message as a
multiple of its size ((peak at intake - baseline) / (sessions x size)).

    .venv/bin/python bench/memory.py [--large 10] [--small 20] [--json FILE] [--smoke]
"""

import argparse
import contextlib
import json
import os
import re
import smtplib
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from email.message import EmailMessage
from email.policy import SMTP
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.common import json_path, ours_at_most, reported, row, write_result
from crmmail.services import accounts
from crmmail.storage.database import Database
from crmmail.storage.migrate import upgrade_to_head
from crmmail.storage.repositories.accounts import AccountRepository
from crmmail.storage.repositories.inbound import InboundRepository

BENCH = "memory"
HOST = "127.0.0.1"
SMART_DOMAIN = "mail.localhost"
ACCOUNT = "bench"
RECIPIENT = f"{ACCOUNT}@{SMART_DOMAIN}"
MIB = 1024 * 1024
DEFAULT_LIMIT = 25 * MIB  # crmmail's default CRMMAIL_MAX_MESSAGE_SIZE
HEADROOM = 64 * 1024  # a message "at the limit" stays this far under it (headers, base64 lines)
READY_DEADLINE = 60.0  # seconds for serve to listen
DRAIN_DEADLINE = 600.0  # seconds for the worker to process every message
LISTENING = re.compile(r"SMTP on 127\.0\.0\.1:(\d+)")


class BenchError(Exception):
    """Anything unexpected: the benchmark stops and prints this one line."""


def make_message(size: int, number: int) -> bytes:
    """A message of about ``size`` bytes on the wire: a short text and a base64 attachment."""
    mail = EmailMessage()
    mail["From"] = "Bob Buyer <bob@corp.test>"
    mail["To"] = "ann@example.com"
    mail["Cc"] = RECIPIENT
    mail["Subject"] = f"memory {number}"
    mail["Message-ID"] = f"<memory-{number}-{time.monotonic_ns()}@corp.test>"
    mail.set_content("The drawings are attached.\n")
    attachment = os.urandom(max(1, (size - 2048) * 3 // 4 * 76 // 78))
    mail.add_attachment(
        attachment, maintype="application", subtype="octet-stream", filename="drawing.bin"
    )
    return mail.as_bytes(policy=SMTP)


def rss_kib(pid: int) -> dict[str, int]:
    """VmRSS (now) and VmHWM (peak) of a process, in KiB."""
    figures = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            figures[name] = int(value.split()[0])
    return figures


def crmmail(database_url: str, *args: str) -> list[str]:
    return [sys.executable, "-m", "crmmail", "--database-url", database_url, *args]


def prepare_database(database_url: str) -> None:
    """The schema at head and the benchmark's account (kept if it exists)."""
    db = Database.from_url(database_url)
    try:
        upgrade_to_head(db.engine)
        with db.transaction() as session:
            if AccountRepository(session).by_slug(ACCOUNT) is None:
                accounts.create_account(session, ACCOUNT, None)
    finally:
        db.dispose()


@contextlib.contextmanager
def running_serve(database_url: str, log: Path, env: dict[str, str]) -> Iterator[Any]:
    """``crmmail serve`` on a free port; yields (process, port); always stopped afterwards."""
    with log.open("wb") as output:
        process = subprocess.Popen(
            crmmail(database_url, "serve", "--smtp-host", HOST, "--smtp-port", "0"),
            stdout=output,
            stderr=subprocess.STDOUT,
            env=env,
        )
    try:
        deadline = time.monotonic() + READY_DEADLINE
        while not (match := LISTENING.search(log.read_text(errors="replace"))):
            if process.poll() is not None or time.monotonic() > deadline:
                raise BenchError(f"serve did not start: {log.read_text(errors='replace')[-500:]}")
            time.sleep(0.05)
        yield process, int(match.group(1))
    finally:
        process.terminate()
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def send_concurrently(port: int, messages: list[bytes]) -> None:
    """One session per message, all at once; each must be answered 250."""
    errors: list[str] = []
    start = threading.Barrier(len(messages))

    def session(raw: bytes) -> None:
        try:
            with smtplib.SMTP(HOST, port, timeout=300) as client:
                start.wait()
                client.sendmail("bob@corp.test", [RECIPIENT], raw)
        except (OSError, smtplib.SMTPException, threading.BrokenBarrierError) as error:
            errors.append(f"{type(error).__name__}: {error}")

    threads = [threading.Thread(target=session, args=(raw,)) for raw in messages]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise BenchError(f"{len(errors)} message(s) not accepted: {errors[0]}")


def wait_for_worker(database_url: str, count: int) -> None:
    """Until ``count`` messages are spooled and every one is processed."""
    db = Database.from_url(database_url)
    try:
        deadline = time.monotonic() + DRAIN_DEADLINE
        while time.monotonic() < deadline:
            with db.read() as session:
                statuses = InboundRepository(session).count_by_status()
            if sum(statuses.values()) >= count and set(statuses) <= {"done", "ignored"}:
                return
            time.sleep(0.2)
    finally:
        db.dispose()
    raise BenchError("the worker did not process every message in time")


def scenario(
    name: str, sessions: int, size: int, limit: int, database_url: str | None, workdir: Path
) -> dict[str, Any]:
    url = database_url or f"sqlite:///{workdir / f'{name}.db'}"
    env = {
        **os.environ,
        "CRMMAIL_SMART_DOMAINS": SMART_DOMAIN,
        "CRMMAIL_MAX_MESSAGE_SIZE": str(limit),
        "CRMMAIL_MAX_CONNECTIONS_PER_IP": str(max(20, sessions)),
    }
    prepare_database(url)
    messages = [make_message(size, number) for number in range(sessions)]
    with running_serve(url, workdir / f"{name}.log", env) as (process, port):
        time.sleep(1.0)  # let start-up settle (imports, first queries)
        baseline = rss_kib(process.pid)["VmRSS"]
        began = time.monotonic()
        send_concurrently(port, messages)
        intake_s = time.monotonic() - began
        intake_peak = rss_kib(process.pid)["VmHWM"]
        wait_for_worker(url, sessions)
        figures = rss_kib(process.pid)
    total = sum(len(raw) for raw in messages)
    return {
        "sessions": sessions,
        "message_bytes": len(messages[0]),
        "baseline_rss_mib": round(baseline / 1024, 1),
        "peak_rss_at_intake_mib": round(intake_peak / 1024, 1),
        "peak_rss_after_worker_mib": round(figures["VmHWM"] / 1024, 1),
        "rss_after_worker_mib": round(figures["VmRSS"] / 1024, 1),
        "growth_per_message_x_size": round((intake_peak - baseline) * 1024 / total, 2),
        "intake_s": round(intake_s, 2),
    }


GROWTH_TARGET = 3.0  # peak growth per in-flight message, as a multiple of its size
SCENARIOS = {"one_mib": "sessions of 1 MiB", "at_limit": "sessions at the size limit"}


def rows_from(result: dict[str, Any]) -> list[dict[str, Any]]:
    """The result file's rows: peak RSS (reported) and growth per message (the target)."""
    rows = []
    for name, what in SCENARIOS.items():
        figures = result[name]
        scenario = f"memory, {figures['sessions']} {what}"
        rows.append(
            row(
                f"{scenario}: peak RSS at intake",
                "MiB",
                [figures["peak_rss_at_intake_mib"]],
                reported(f"reported (baseline {figures['baseline_rss_mib']} MiB)"),
            )
        )
        rows.append(
            row(
                f"{scenario}: peak growth per in-flight message",
                "x its size",
                [figures["growth_per_message_x_size"]],
                ours_at_most(GROWTH_TARGET, "x"),
            )
        )
    return rows


def notes_from(result: dict[str, Any]) -> list[str]:
    return [
        f"{name}: {json.dumps(figures)}" for name, figures in result.items() if name in SCENARIOS
    ] + [f"size limit {result['size_limit']} bytes; one serve process per scenario"]


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--large", type=int, default=10, help="sessions at the size limit")
    parser.add_argument("--small", type=int, default=20, help="sessions of 1 MiB")
    parser.add_argument("--limit", type=int, default=DEFAULT_LIMIT, help="size limit, bytes")
    parser.add_argument("--database-url", help="PostgreSQL instead of a fresh SQLite file")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, to check it runs")
    parser.add_argument("--json", type=json_path, metavar="FILE", help="write the result file")
    args = parser.parse_args()
    if args.smoke:
        args.large, args.small, args.limit = 2, 2, 256 * 1024
    return args


def main() -> None:
    args = parse_args()
    small = MIB if not args.smoke else 16 * 1024
    try:
        with tempfile.TemporaryDirectory(prefix="crmmail-memory-") as work:
            result = {
                "size_limit": args.limit,
                "at_limit": scenario(
                    "at-limit",
                    args.large,
                    args.limit - HEADROOM,
                    args.limit,
                    args.database_url,
                    Path(work),
                ),
                "one_mib": scenario(
                    "one-mib", args.small, small, args.limit, args.database_url, Path(work)
                ),
            }
    except BenchError as error:
        sys.exit(f"memory: error: {error}")
    except KeyboardInterrupt:
        sys.exit("memory: interrupted")
    if args.json:
        write_result(args.json, BENCH, rows_from(result), notes_from(result))
    for name in ("at_limit", "one_mib"):
        figures = result[name]
        print(
            f"{name}: {figures['sessions']} x {figures['message_bytes'] / MIB:.1f} MiB: "
            f"baseline {figures['baseline_rss_mib']} MiB, peak at intake "
            f"{figures['peak_rss_at_intake_mib']} MiB, peak after worker "
            f"{figures['peak_rss_after_worker_mib']} MiB, growth per in-flight message "
            f"{figures['growth_per_message_x_size']} x its size "
            f"(intake {figures['intake_s']} s)"
        )


if __name__ == "__main__":
    main()
