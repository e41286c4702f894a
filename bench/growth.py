"""Measure how the worker's rate holds up in a big CRM: 100,000 contacts and 1,000,000 notes.

The same mix as ``bench/processing.py`` (corpus plus generated CRM mail, loopback peer, so no
DNS) is processed by one worker on two databases: a small CRM (1,000 contacts, 2,000 notes) and
a big one (100,000 contacts, a tenth in leads, a twentieth in customers, 1,000,000 notes). The
big fixture is bulk-inserted with SQLAlchemy core ``executemany`` in batches of 20,000 and, on
SQLite, kept under ``bench/out/`` between runs (each run works on a copy). Target: the big
CRM's rate at least 0.8x the small one's.

    .venv/bin/python bench/growth.py [--messages 300] [--runs 2] [--postgresql] [--json FILE]
"""

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import processing
import psycopg

BENCH = "growth"
OUT = Path(__file__).resolve().parent / "out"
SMALL = (1_000, 2_000)
BIG = (100_000, 1_000_000)
SMOKE_BIG = (5_000, 20_000)
FIXTURE_VERSION = 1  # bump when the fixture's shape changes


def sqlite_fixture(contacts: int, notes: int, directory: Path) -> Path:
    """A SQLite database with the account and its CRM, built once and then reused."""
    path = directory / f"growth-v{FIXTURE_VERSION}-{contacts}c-{notes}n.db"
    if path.exists():
        return path
    directory.mkdir(parents=True, exist_ok=True)
    building = path.with_suffix(".building")
    for stale in directory.glob(building.name + "*"):
        stale.unlink()
    start = time.perf_counter()
    db = processing.fresh_database(f"sqlite:///{building}")
    try:
        processing.seed_crm(db, contacts, notes, progress=notes >= 100_000)
        connection = db.engine.raw_connection()  # autocommit: no BEGIN around these
        try:
            connection.execute("ANALYZE")
            connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            connection.close()
    finally:
        db.dispose()
    building.rename(path)
    print(
        f"built {path.name} in {time.perf_counter() - start:.0f} s",
        file=sys.stderr,
        flush=True,
    )
    return path


def rate(url: str, messages: list[tuple[str, list[str], bytes]]) -> float:
    """Messages per second of one worker draining the mix."""
    db = processing.Database.from_url(url)
    try:
        processing.spool(db, messages)
        finished = processing.time_worker(db, url, len(messages))
    finally:
        db.dispose()
    return len(messages) / finished[-1][0]


def sqlite_rates(
    sizes: list[tuple[int, int]], messages: list[Any], runs: int, cache: Path
) -> dict[tuple[int, int], list[float]]:
    fixtures = {size: sqlite_fixture(*size, cache) for size in sizes}
    rates: dict[tuple[int, int], list[float]] = {size: [] for size in sizes}
    with tempfile.TemporaryDirectory(prefix="crmmail-growth-") as tmp:
        for run in range(runs):
            order = sizes if run % 2 == 0 else list(reversed(sizes))
            for size in order:
                copy = Path(tmp) / f"run-{run}-{size[0]}.db"
                shutil.copyfile(fixtures[size], copy)
                rates[size].append(rate(f"sqlite:///{copy}", messages))
                copy.unlink()
    return rates


def postgresql_rates(
    sizes: list[tuple[int, int]], messages: list[Any], runs: int
) -> dict[tuple[int, int], list[float]]:
    """Each fixture is built once per cluster, then copied (``CREATE DATABASE ... TEMPLATE``)."""
    rates: dict[tuple[int, int], list[float]] = {size: [] for size in sizes}
    with processing.postgresql() as cluster:
        templates = {}
        for size in sizes:
            url = processing.new_pg_database(cluster, f"growth_template_{size[0]}")
            db = processing.fresh_database(url)
            try:
                processing.seed_crm(db, *size, progress=size[1] >= 100_000)
            finally:
                db.dispose()
            templates[size] = f"growth_template_{size[0]}"
        for run in range(runs):
            for size in sizes if run % 2 == 0 else list(reversed(sizes)):
                name = f"growth_{run}_{size[0]}"
                with psycopg.connect(
                    host=str(cluster.socket_dir),
                    user="postgres",
                    dbname="postgres",
                    autocommit=True,
                ) as connection:
                    connection.execute(f"CREATE DATABASE {name} TEMPLATE {templates[size]}")  # type: ignore[arg-type]
                rates[size].append(rate(str(cluster.url(name)), messages))
    return rates


def rows_for(
    name: str, rates: dict[tuple[int, int], list[float]], small: tuple[int, int], big: Any
) -> list[dict[str, Any]]:
    ratios = [b / s for b, s in zip(rates[big], rates[small], strict=True)]
    return [
        processing.row(
            f"processing rate with {big[0]:,} contacts and {big[1]:,} notes, {name}",
            rates[big],
            "msg/s",
            "≥ 0.8x the small CRM",
            reference=rates[small],
            reference_name=f"the same with {small[0]:,} contacts and {small[1]:,} notes",
            ratios=ratios,
            met=statistics.median(ratios) >= 0.8,
        )
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=300)
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, one run")
    parser.add_argument("--postgresql", action="store_true", help="PostgreSQL as well (slow)")
    parser.add_argument("--json", type=Path, metavar="FILE")
    parser.add_argument(
        "--cache", type=Path, help="where the SQLite fixtures live (bench/out; smoke: a temp dir)"
    )
    args = parser.parse_args()
    big = BIG
    if args.smoke:
        args.messages, args.runs, big = 60, 1, SMOKE_BIG
    processing.quiet_logs()
    messages = processing.mix(args.messages, seed=2)
    sizes = [SMALL, big]
    with tempfile.TemporaryDirectory(prefix="crmmail-growth-fixtures-") as scratch:
        cache = args.cache or (Path(scratch) if args.smoke else OUT)
        rates = sqlite_rates(sizes, messages, args.runs, cache)
    rows = rows_for("SQLite", rates, SMALL, big)
    if args.postgresql:
        rows += rows_for("PostgreSQL", postgresql_rates(sizes, messages, args.runs), SMALL, big)
    notes = [
        f"{len(messages)} messages per run (the processing mix: corpus + generated CRM mail, "
        "loopback peer, no DNS), one worker in this process; the big and small databases are "
        "measured alternately.",
        "Leads: one per 10 contacts (two thirds open); customers: one per 20 contacts; notes "
        "spread evenly over the contacts.",
    ]
    if not args.postgresql:
        notes.append("PostgreSQL not measured in this run (--postgresql).")
    processing.write_json(args.json, BENCH, rows, notes)
    processing.print_rows(rows)


if __name__ == "__main__":
    main()
