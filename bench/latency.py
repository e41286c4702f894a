"""Measure end-to-end latency: from the client's ``250`` to the note being visible in the database.

``crmmail serve`` runs on a fresh SQLite database (WAL, ``synchronous=FULL``) with a CRM of
1,000 contacts; its worker is woken by the intake's spool event, not by polling. First the
maximum rate is measured: a burst of messages over 4 SMTP sessions, timed until the last one is
processed. Then messages of the generated CRM mix (each makes at least one note) are sent over
one session at half that rate, each at its scheduled time; a reader polls the ``note`` table
every 5 ms and records when each message's first note appears. Latency is that moment minus
the moment ``sendmail`` returned (the ``250``), both from this process's clock. Peers are on
loopback: sender authentication is skipped, no DNS.

    .venv/bin/python bench/latency.py [--messages 300] [--burst 300] [--runs 2] [--json FILE]
"""

import argparse
import os
import signal
import smtplib
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import processing
from sqlalchemy import func, select

from crmmail.storage.models import InboundMessage, Note

BENCH = "latency"
HOST = "127.0.0.1"
POLL = 0.005  # seconds between two looks at the note table
BURST_SESSIONS = 4
TIMEOUT = 300.0
STOP_TIMEOUT = 30.0

Mail = tuple[str, list[str], bytes]


def start_serve(url: str, log: Path) -> tuple[subprocess.Popen[bytes], int]:
    env = {**os.environ, "CRMMAIL_SMART_DOMAINS": processing.SMART_DOMAIN}
    command = [sys.executable, "-m", "crmmail", "--database-url", url, "serve"]
    command += ["--smtp-host", HOST, "--smtp-port", "0"]
    with log.open("wb") as errors:
        process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=errors)
    assert process.stdout is not None
    line = process.stdout.readline().decode(errors="replace")
    if "SMTP on" not in line:
        stop(process)
        raise SystemExit(f"{BENCH}: crmmail serve did not start: {line.strip()!r}")
    port = int(line.split("SMTP on ", 1)[1].split(",", 1)[0].rsplit(":", 1)[1])
    return process, port


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def send_all(port: int, mails: list[Mail]) -> None:
    with smtplib.SMTP(HOST, port, timeout=60) as client:
        for mail_from, rcpt, raw in mails:
            client.sendmail(mail_from, rcpt, raw)


def processed(db: Any) -> int:
    with db.read() as session:
        return int(
            session.scalar(select(func.count()).where(InboundMessage.processed_at.is_not(None)))
            or 0
        )


def max_rate(db: Any, port: int, mails: list[Mail]) -> float:
    """Messages per second from the first send until the last one is processed."""
    before = processed(db)
    shares = [mails[i::BURST_SESSIONS] for i in range(BURST_SESSIONS)]
    start = time.perf_counter()
    senders = [threading.Thread(target=send_all, args=(port, share)) for share in shares]
    for sender in senders:
        sender.start()
    for sender in senders:
        sender.join()
    deadline = time.monotonic() + TIMEOUT
    while processed(db) < before + len(mails):
        if time.monotonic() > deadline:
            raise SystemExit(f"{BENCH}: the burst was not processed within {TIMEOUT:.0f} s")
        time.sleep(POLL)
    return len(mails) / (time.perf_counter() - start)


class NoteWatcher:
    """Polls the note table and remembers when each Message-ID's first note appeared."""

    def __init__(self, db: Any) -> None:
        self.db = db
        self.seen: dict[str, float] = {}
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run)
        with db.read() as session:
            self.last_id = int(session.scalar(select(func.max(Note.id))) or 0)

    def _run(self) -> None:
        while not self.stop.is_set():
            with self.db.read() as session:
                rows = session.execute(
                    select(Note.id, Note.message_id).where(Note.id > self.last_id)
                ).all()
            now = time.time()
            for note_id, message_id in rows:
                self.last_id = max(self.last_id, note_id)
                if message_id:
                    self.seen.setdefault(message_id.strip("<>"), now)
            time.sleep(POLL)


def latencies(db: Any, port: int, mails: list[Mail], rate: float) -> list[float]:
    """Send at ``rate`` messages per second; seconds from each ``250`` to its first note."""
    watcher = NoteWatcher(db)
    watcher.thread.start()
    accepted: dict[str, float] = {}
    try:
        with smtplib.SMTP(HOST, port, timeout=60) as client:
            start = time.monotonic()
            for number, (mail_from, rcpt, raw) in enumerate(mails):
                delay = start + number / rate - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                client.sendmail(mail_from, rcpt, raw)
                accepted[message_id(raw)] = time.time()
        deadline = time.monotonic() + TIMEOUT
        while not accepted.keys() <= watcher.seen.keys():
            if time.monotonic() > deadline:
                missing = len(accepted.keys() - watcher.seen.keys())
                raise SystemExit(f"{BENCH}: {missing} messages never showed a note")
            time.sleep(POLL)
    finally:
        watcher.stop.set()
        watcher.thread.join()
    return [watcher.seen[key] - at for key, at in accepted.items()]


def message_id(raw: bytes) -> str:
    for line in raw.split(b"\r\n"):
        if line.lower().startswith(b"message-id:"):
            return line.split(b":", 1)[1].strip().decode().strip("<>")
    raise ValueError("no Message-ID")


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def one_run(burst: list[Mail], paced: list[Mail], tmp: Path, run: int) -> tuple[float, list[float]]:
    url = f"sqlite:///{tmp / f'latency-{run}.db'}"
    db = processing.fresh_database(url)
    processing.seed_crm(db, processing.KNOWN_CONTACTS, 2 * processing.KNOWN_CONTACTS)
    process, port = start_serve(url, tmp / f"serve-{run}.log")
    try:
        rate = max_rate(db, port, burst)
        return rate, latencies(db, port, paced, rate / 2)
    finally:
        stop(process)
        db.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=300, help="paced messages per run")
    parser.add_argument("--burst", type=int, default=300, help="messages of the max-rate burst")
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, one run")
    parser.add_argument("--json", type=Path, metavar="FILE")
    args = parser.parse_args()
    if args.smoke:
        args.messages, args.burst, args.runs = 20, 20, 1
    processing.quiet_logs()
    rates: list[float] = []
    p50: list[float] = []
    p99: list[float] = []
    with tempfile.TemporaryDirectory(prefix="crmmail-latency-") as tmp:
        for run in range(args.runs):
            burst = processing.generated_messages(args.burst, seed=100 + 2 * run)
            paced = processing.generated_messages(args.messages, seed=101 + 2 * run)
            rate, measured = one_run(burst, paced, Path(tmp), run)
            rates.append(rate)
            p50.append(percentile(measured, 0.50))
            p99.append(percentile(measured, 0.99))
            print(
                f"run {run + 1}: max {rate:.1f} msg/s; at {rate / 2:.1f} msg/s: "
                f"p50 {p50[-1] * 1000:.0f} ms, p99 {p99[-1] * 1000:.0f} ms",
                file=sys.stderr,
            )
    rows = [
        processing.row(
            "max rate of serve (burst, 4 sessions), SQLite", rates, "msg/s", "(reported)"
        ),
        processing.row(
            "latency 250 -> note visible, p50, at half the max rate", p50, "s", "(reported)"
        ),
        processing.row(
            "latency 250 -> note visible, p99, at half the max rate",
            p99,
            "s",
            "p99 ≤ 1 s",
            met=statistics.median(p99) <= 1.0,
        ),
    ]
    notes = [
        f"{args.messages} paced messages per run of the generated CRM mix (replies, new leads, "
        "CCs with several participants, 10% with a 60 kB attachment) after a burst of "
        f"{args.burst}; `crmmail serve` on SQLite (WAL, synchronous=FULL), one worker thread "
        "woken by the spool event; loopback peer (no DNS).",
        "The note is seen by a reader polling every 5 ms: up to 5 ms of each figure is polling.",
    ]
    processing.write_json(args.json, BENCH, rows, notes)
    processing.print_rows(rows)


if __name__ == "__main__":
    main()
