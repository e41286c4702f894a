"""Time hostile messages (and the shared corpus) through crmmail's parse, participants and routing.

Python's ``email`` package is quadratic, or recursive without a bound, on some inputs: long runs
of dots, ``(`` or ``<`` in address headers, thousands of RFC 2047 encoded-words, MIME nesting
thousands deep. crmmail caps those before and while parsing (``crmmail/mail/limits.py``).
This benchmark builds each hostile input, runs it through the path the worker takes before it
touches the database (``parse_message``, ``participants_of``, ``routing.address.parse`` on every
To/Cc address) and prints the median time of ``--runs`` runs, the defects recorded, and any
exception. With ``--reference`` each input is also read by the stdlib the naive way
(``message_from_bytes(policy=default)`` and its From/To/Cc/Subject), in a subprocess cut at
``--reference-timeout`` seconds. Then every message of the shared corpus (``CRMMAIL_CORPUS``,
default ``../shared/corpus``; where that is missing, as in a fresh clone, the project's own
``tests/data/corpus``) is timed the same way and the slowest are listed.

    .venv/bin/python bench/parser_abuse.py [--runs 3] [--reference] [--json FILE] [--smoke]

``--smoke`` shrinks every input to a few percent and runs once: a check that the script works,
whose figures mean nothing.
"""

import argparse
import base64
import contextlib
import cProfile
import io
import os
import platform
import pstats
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.common import json_path, ours_at_most, positive, reported, write_result
from bench.common import row as result_row
from crmmail.mail.message import parse_message
from crmmail.mail.participants import participants_of
from crmmail.routing.address import parse as parse_smart_address

BENCH = "parser_abuse"
SMART_DOMAINS = ("mail.localhost",)
BUDGET_S = 2.0  # no message, hostile or from the corpus, may take longer than this
TAIL = b"\r\nFrom: Ann <ann@corp.test>\r\nSubject: s\r\n\r\nthe body\r\n"
SHARED_CORPUS = Path(
    os.environ.get("CRMMAIL_CORPUS", Path(__file__).resolve().parents[2] / "shared" / "corpus")
)
OWN_CORPUS = Path(__file__).resolve().parents[1] / "tests" / "data" / "corpus"
CORPUS = SHARED_CORPUS if "CRMMAIL_CORPUS" in os.environ or SHARED_CORPUS.is_dir() else OWN_CORPUS
REFERENCE = """
import sys
from email import message_from_bytes, policy
m = message_from_bytes(sys.stdin.buffer.read(), policy=policy.default)
for name in ("from", "to", "cc", "subject"):
    for value in m.get_all(name) or []:
        getattr(value, "addresses", None)
        str(value)
"""


def nested_multipart(levels: int, bottom: bytes) -> bytes:
    head = b"".join(
        b'Content-Type: multipart/mixed; boundary="b%d"\r\n\r\n--b%d\r\n' % (level, level)
        for level in range(levels)
    )
    return b"From: ann@corp.test\r\n" + head + b"Content-Type: text/plain\r\n\r\n" + bottom


def hostile_inputs(scale: float) -> Iterator[tuple[str, bytes]]:
    """(name, raw message) for every hostile input, sizes multiplied by ``scale``."""

    def n(count: int) -> int:
        return max(2, int(count * scale))

    word = b"=?utf-8?q?caf=C3=A9?="
    yield "Subject: 200 KB of words", b"Subject: " + b"word " * n(40_000) + TAIL
    yield "Subject: 8,000 encoded-words", b"Subject: " + b" ".join([word] * n(8_000)) + TAIL
    yield "To: 8,000 encoded-words", b"To: " + b" ".join([word] * n(8_000)) + b" <a@b.test>" + TAIL
    yield "To: 20,000 dots", b"To: " + b"." * n(20_000) + TAIL
    yield "Subject: 20,000 dots", b"Subject: " + b"." * n(20_000) + b"\r\nTo: a@b.test\r\n\r\nx"
    for char, what in ((b"(", "'('"), (b"<", "'<'"), (b'"', "'\"'"), (b":", "':'"), (b"@", "'@'")):
        yield f"To: 20,000 {what}", b"To: " + char * n(20_000) + TAIL
    for char, what in ((b"<", "'<'"), (b".", "dots"), (b"@", "'@'")):
        field = b"To: " + char * n(15_000) + b"\r\n"
        yield f"12 To fields of 15,000 {what}", field * 12 + TAIL
    addresses = b", ".join(b"User %d <u%d@x.test>" % (i, i) for i in range(n(3_000)))
    yield "To: 3,000 addresses", b"To: " + addresses + TAIL
    yield "Cc: 3,000 addresses in a group", b"Cc: team: " + addresses + b";" + TAIL
    yield (
        "Part filename of 20,000 encoded-words",
        (
            b'From: a@b.test\r\nContent-Type: multipart/mixed; boundary="b"\r\n\r\n--b\r\n'
            b'Content-Disposition: attachment; filename="'
            + b" ".join([word] * n(20_000))
            + b'"\r\n'
            b"\r\nhi\r\n--b--\r\n"
        ),
    )
    yield (
        "Part header of 200 KB",
        (
            b'From: a@b.test\r\nContent-Type: multipart/mixed; boundary="b"\r\n\r\n--b\r\nX-Big: '
            + word * n(10_000)
            + b"\r\nContent-Type: text/plain\r\n\r\nhi\r\n--b--\r\n"
        ),
    )
    yield "MIME nesting 2,000 deep", nested_multipart(n(2_000), b"bottom\r\n")
    yield "MIME nesting 150 deep, 100,000 lines", nested_multipart(n(150), b"line\r\n" * n(100_000))
    rfc822 = b"Content-Type: message/rfc822\r\n\r\n"
    yield "message/rfc822 nesting 2,000 deep", b"From: a@b.test\r\n" + rfc822 * n(2_000) + b"x"
    yield (
        "5,000 MIME parts",
        (
            b'From: a@b.test\r\nContent-Type: multipart/mixed; boundary="b"\r\n\r\n'
            + b"--b\r\nContent-Type: text/plain\r\n\r\nx\r\n" * n(5_000)
            + b"--b--\r\n"
        ),
    )
    yield "MIME nesting 20 deep, 600,000 lines", nested_multipart(n(20), b"l\r\n" * n(600_000))
    yield "3,000,000 lines", b"From: a@b.test\r\n\r\n" + b"l\r\n" * n(3_000_000)
    attachment = base64.encodebytes(bytes(range(256)) * n(70_000)).replace(b"\n", b"\r\n")
    yield (
        "18 MB base64 attachment (25 MB message)",
        (
            b'From: a@b.test\r\nContent-Type: multipart/mixed; boundary="b"\r\n\r\n--b\r\n'
            b"Content-Type: application/pdf\r\nContent-Transfer-Encoding: base64\r\n\r\n"
            + attachment
            + b"--b--\r\n"
        ),
    )
    yield (
        "delivery-status of 100,000 blocks",
        (
            b"From: a@b.test\r\nContent-Type: message/delivery-status\r\n\r\n"
            + b"Final-Recipient: rfc822; a@x.test\r\nStatus: 5.0.0\r\n\r\n" * n(100_000)
        ),
    )
    yield "100,000 header fields", b"X-A: b\r\n" * n(100_000) + TAIL
    yield "1 MB body line", b"From: a@b.test\r\n\r\n" + b"a" * n(1_000_000)


def through_the_path(raw: bytes) -> str:
    """What the worker does with ``raw`` before touching the database; says what was cut."""
    parsed = parse_message(raw)
    participants_of(parsed, set(), SMART_DOMAINS)
    for mailbox in (*parsed.to, *parsed.cc):
        parse_smart_address(mailbox.address, SMART_DOMAINS)
    limits = getattr(parsed, "limits", [])  # absent before the limits existed
    return f"{len(limits)} cut, {len(parsed.defects)} defects" + (
        f": {limits[0][:60]}" if limits else ""
    )


def timed(action: Callable[[], object], runs: int) -> tuple[float, str]:
    """Median seconds over ``runs``, and the outcome (defect count or the exception's name)."""
    times: list[float] = []
    outcome = ""
    for _ in range(runs):
        start = time.perf_counter()
        try:
            outcome = str(action())
        except RecursionError:
            outcome = "raised RecursionError"
        except Exception as error:  # noqa: BLE001  (a benchmark reports, it does not stop)
            outcome = f"raised {type(error).__name__}"
        times.append(time.perf_counter() - start)
    return statistics.median(times), outcome


def reference(raw: bytes, timeout: float) -> str:
    """Seconds the stdlib's default policy takes on ``raw`` (its own process), or why not."""
    start = time.perf_counter()
    try:
        done = subprocess.run(
            [sys.executable, "-c", REFERENCE],
            input=raw,
            capture_output=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return f"> {timeout:g} s"
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        last = done.stderr.decode(errors="replace").strip().splitlines()[-1:] or ["?"]
        return f"{elapsed:.2f} s, raised {last[0].split(':')[0]}"
    return f"{elapsed:.2f} s"


def profile(raw: bytes, top: int) -> str:
    profiler = cProfile.Profile()
    profiler.enable()
    with contextlib.suppress(RecursionError):
        through_the_path(raw)
    profiler.disable()
    stream = io.StringIO()
    pstats.Stats(profiler, stream=stream).sort_stats("cumulative").print_stats(top)
    return stream.getvalue()


def run(args: argparse.Namespace) -> dict[str, Any]:
    scale = 0.02 if args.smoke else 1.0
    runs = 1 if args.smoke else args.runs
    hostile = []
    for name, raw in hostile_inputs(scale):
        if args.only and args.only.lower() not in name.lower():
            continue
        seconds, outcome = timed(lambda raw=raw: through_the_path(raw), runs)
        row: dict[str, Any] = {"input": name, "bytes": len(raw), "seconds": seconds}
        row["outcome"] = outcome
        if args.reference:
            row["stdlib_default_policy"] = reference(raw, args.reference_timeout)
        if args.profile:
            print(f"== {name}\n{profile(raw, args.profile)}", file=sys.stderr)
        hostile.append(row)
    corpus = []
    for path in sorted(CORPUS.rglob("*.eml"))[: 3 if args.smoke else None]:
        raw = path.read_bytes()
        seconds, outcome = timed(lambda raw=raw: through_the_path(raw), runs)
        corpus.append({"message": path.name, "bytes": len(raw), "seconds": seconds})
        corpus[-1]["outcome"] = outcome
    corpus.sort(key=lambda row: -row["seconds"])
    return {
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs,"
        f" Python {platform.python_version()}",
        "runs": runs,
        "smoke": args.smoke,
        "hostile": hostile,
        "corpus_messages": len(corpus),
        "corpus_slowest": corpus[:5],
        "corpus_total_seconds": sum(row["seconds"] for row in corpus),
    }


def print_table(figures: dict[str, Any]) -> None:
    print(f"# parser abuse: {figures['machine']}, median of {figures['runs']} run(s)")
    for row in figures["hostile"]:
        ref = f"  stdlib: {row['stdlib_default_policy']}" if "stdlib_default_policy" in row else ""
        print(
            f"{row['input']:42s} {row['bytes']:>9,d} B {row['seconds'] * 1000:9.1f} ms"
            f"  {row['outcome']}{ref}"
        )
    print(
        f"# corpus: {figures['corpus_messages']} messages,"
        f" {figures['corpus_total_seconds'] * 1000:.1f} ms in all; slowest:"
    )
    for row in figures["corpus_slowest"]:
        print(f"{row['message']:42s} {row['bytes']:>9,d} B {row['seconds'] * 1000:9.1f} ms")


def rows_from(figures: dict[str, Any]) -> list[dict[str, Any]]:
    """The result file's rows: the slowest hostile input and corpus message against the time
    budget, and how many inputs raised instead of being cut or recorded as defects."""
    runs = figures["runs"]
    slowest = max(figures["hostile"], key=lambda item: item["seconds"])
    raised = [item for item in figures["hostile"] if item["outcome"].startswith("raised")]
    rows = [
        result_row(
            f"parser: slowest of {len(figures['hostile'])} hostile inputs ({slowest['input']})",
            "s",
            [slowest["seconds"]],
            ours_at_most(BUDGET_S, "s"),
        ),
        result_row(
            "parser: hostile inputs that raised", "inputs", [len(raised)], ours_at_most(0, "inputs")
        ),
    ]
    if figures["corpus_slowest"]:
        worst = figures["corpus_slowest"][0]
        rows.append(
            result_row(
                f"parser: slowest of {figures['corpus_messages']} corpus messages",
                "s",
                [worst["seconds"]],
                ours_at_most(BUDGET_S, "s"),
            )
        )
        rows.append(
            result_row("parser: whole corpus", "s", [figures["corpus_total_seconds"]], reported())
        )
    for item in rows:
        item["runs"] = runs  # each figure is a median over this many runs
    return rows


def notes_from(figures: dict[str, Any]) -> list[str]:
    """Per hostile input: its size, crmmail's time and outcome, and the stdlib's if measured."""
    notes = [
        f"{figures['machine']}; every figure is the median of {figures['runs']} run(s) of "
        "parse_message + participants_of + the smart-address parser on every To/Cc address"
    ]
    for item in figures["hostile"]:
        stdlib = item.get("stdlib_default_policy")
        notes.append(
            f"{item['input']} ({item['bytes']:,} B): {item['seconds'] * 1000:.1f} ms, "
            f"{item['outcome']}" + (f"; stdlib default policy: {stdlib}" if stdlib else "")
        )
    return notes


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=positive, default=3, help="runs per input (median reported)")
    parser.add_argument("--reference", action="store_true", help="also time the stdlib")
    parser.add_argument("--reference-timeout", type=float, default=10.0, metavar="SECONDS")
    parser.add_argument("--only", metavar="TEXT", help="only the inputs whose name has TEXT")
    parser.add_argument("--profile", type=int, default=0, metavar="N", help="cProfile top N")
    parser.add_argument("--smoke", action="store_true", help="tiny inputs, one run")
    parser.add_argument("--json", type=json_path, metavar="FILE", help="write the result file")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    sys.setrecursionlimit(1_000)  # the interpreter's default, whatever a caller set
    figures = run(args)
    print_table(figures)
    if args.json:
        write_result(args.json, BENCH, rows_from(figures), notes_from(figures))


if __name__ == "__main__":
    main()
