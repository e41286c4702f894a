"""What every benchmark script shares: argument types, medians and spreads, machine facts, the
result file every bench writes with ``--json FILE``, and a durable throwaway PostgreSQL cluster.

The result file (read by bench/report.py, which writes bench/RESULTS.md)::

    {"bench": NAME,
     "rows": [{"what": str, "ours": float, "reference": float | null,
               "reference_name": str | null, "unit": str, "ratio": float | null,
               "target": str, "met": bool | null, "runs": int, "spread": str}],
     "notes": [str], "versions": {str: str}}

``ours``, ``reference`` and ``ratio`` (ours / reference) are medians over the runs; ``spread`` is
"min-max" of ours, and of the ratio where there is one. A script is picked up by ``make bench``
and by the smoke test when it declares a module-level ``BENCH = "name"`` and accepts ``--smoke``
and ``--json FILE``.
"""

import argparse
import contextlib
import glob
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script: make ``tests.*`` importable
    sys.path.insert(0, str(ROOT))

ROW_FIELDS: dict[str, tuple[type, ...]] = {
    "what": (str,),
    "ours": (float, int),
    "reference": (float, int, type(None)),
    "reference_name": (str, type(None)),
    "unit": (str,),
    "ratio": (float, int, type(None)),
    "target": (str,),
    "met": (bool, type(None)),
    "runs": (int,),
    "spread": (str,),
}
RESULT_FIELDS: dict[str, type] = {"bench": str, "rows": list, "notes": list, "versions": dict}
NOT_INSTALLED = "not installed"
COMMAND_TIMEOUT = 10.0  # seconds for a ``--version`` command


# -- arguments -------------------------------------------------------------------------------


def positive(text: str) -> int:
    """An argparse type: an integer of at least 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def json_path(text: str) -> Path:
    """An argparse type for ``--json FILE``: the file's directory must exist."""
    path = Path(text)
    if not path.parent.is_dir():
        raise argparse.ArgumentTypeError(f"no such directory: {path.parent}")
    return path


# -- figures ---------------------------------------------------------------------------------


def figure(value: float) -> str:
    """A figure with as many digits as a noisy benchmark deserves: 1,234 / 56.7 / 8.90 / 0.123."""
    size = abs(value)
    if size >= 100:
        return f"{value:,.0f}"
    if size >= 10:
        return f"{value:.1f}"
    if size >= 1:
        return f"{value:.2f}"
    return f"{value:.3g}"


def min_max(values: Sequence[float]) -> str:
    """``"min-max"`` of the runs."""
    return f"{figure(min(values))}-{figure(max(values))}"


@dataclass(frozen=True)
class Target:
    """What a row must reach: a bound on the ratio ours/reference, on ours itself, or nothing
    (a figure that is only reported)."""

    text: str
    on: str | None = None  # "ratio" or "ours"
    at_least: float | None = None
    at_most: float | None = None

    def met(self, ours: float, ratio: float | None) -> bool | None:
        value = ratio if self.on == "ratio" else ours if self.on == "ours" else None
        if value is None:
            return None
        if self.at_least is not None and value < self.at_least:
            return False
        return not (self.at_most is not None and value > self.at_most)


def ratio_at_least(bound: float) -> Target:
    return Target(f"at least {bound:g}x", "ratio", at_least=bound)


def ratio_at_most(bound: float) -> Target:
    return Target(f"at most {bound:g}x", "ratio", at_most=bound)


def ours_at_most(bound: float, unit: str) -> Target:
    text = f"at most {bound:g}{unit}" if unit == "x" else f"at most {bound:g} {unit}"
    return Target(text, "ours", at_most=bound)


def reported(text: str = "reported") -> Target:
    return Target(text)


def row(
    what: str,
    unit: str,
    ours: Sequence[float],
    target: Target,
    reference: Sequence[float] | None = None,
    reference_name: str | None = None,
) -> dict[str, Any]:
    """One result row from the per-run figures; the ratio is the median of per-run ratios when
    the runs are paired (same count), else the ratio of the medians."""
    if not ours:
        raise ValueError(f"{what}: no runs")
    ours_median = statistics.median(ours)
    reference_median = statistics.median(reference) if reference else None
    ratios: list[float] = []
    if reference and all(value > 0 for value in reference):
        if len(reference) == len(ours):
            ratios = [mine / theirs for mine, theirs in zip(ours, reference, strict=True)]
        else:
            ratios = [ours_median / statistics.median(reference)]
    ratio = statistics.median(ratios) if ratios else None
    spread = min_max(ours) + (f"; ratio {min_max(ratios)}" if ratios else "")
    return {
        "what": what,
        "ours": ours_median,
        "reference": reference_median,
        "reference_name": reference_name if reference else None,
        "unit": unit,
        "ratio": ratio,
        "target": target.text,
        "met": target.met(ours_median, ratio),
        "runs": len(ours),
        "spread": spread,
    }


# -- machine facts and versions ----------------------------------------------------------------


def machine() -> dict[str, str]:
    """CPU model, cores, RAM, kernel and Python of this machine."""
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.partition(":")[2].strip()
                break
    ram = "unknown"
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                ram = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
                break
    return {
        "cpu": cpu,
        "cores": str(os.cpu_count()),
        "ram": ram,
        "kernel": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
    }


def filesystem(path: Path) -> str:
    """The type of the file system ``path`` is on (``ext4``, ``tmpfs``...), from /proc/mounts:
    fsync is free on tmpfs, so a durability benchmark must say where its files were."""
    best, kind = "", "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/mounts").read_text().splitlines():
            fields = line.split()
            inside = len(fields) > 2 and str(path.resolve()).startswith(fields[1])
            if inside and len(fields[1]) > len(best):
                best, kind = fields[1], fields[2]
    return kind


def _package(name: str) -> str:
    try:
        return version(name)
    except PackageNotFoundError:
        return NOT_INSTALLED


def _command_version(command: list[str]) -> str:
    """The first line a ``--version`` command prints, or "not installed"."""
    if shutil.which(command[0]) is None:
        return NOT_INSTALLED
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=COMMAND_TIMEOUT, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return NOT_INSTALLED
    output = (done.stdout or done.stderr).strip().splitlines()
    return output[0].strip() if done.returncode == 0 and output else NOT_INSTALLED


def postgres_binary(name: str) -> str | None:
    """A PostgreSQL server binary on PATH or in Debian's versioned directory."""
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return candidates[-1] if candidates else None


def versions() -> dict[str, str]:
    """Machine facts and the versions of everything a benchmark measures or compares with."""
    postgres = postgres_binary("postgres")
    return {
        **machine(),
        "crmmail": _package("crmmail"),
        "aiosmtpd": _package("aiosmtpd"),
        "SQLAlchemy": _package("SQLAlchemy"),
        "psycopg": _package("psycopg"),
        "PostgreSQL": _command_version([postgres, "--version"]) if postgres else NOT_INSTALLED,
        "Dovecot": _command_version(["/usr/sbin/dovecot", "--version"]),
        "mbsync": _command_version(["mbsync", "--version"]),
        "Postfix": _command_version(["/usr/sbin/postconf", "-d", "-h", "mail_version"]),
    }


# -- the result file ---------------------------------------------------------------------------


def problems(result: Any) -> list[str]:
    """What is wrong with a result file's contents (empty when it follows the schema)."""
    if not isinstance(result, dict):
        return ["not a JSON object"]
    found = []
    for name, kind in RESULT_FIELDS.items():
        if not isinstance(result.get(name), kind):
            found.append(f"{name!r} missing or not a {kind.__name__}")
    if found:
        return found
    for number, item in enumerate(result["rows"], 1):
        if not isinstance(item, dict):
            found.append(f"row {number}: not an object")
            continue
        if set(item) != set(ROW_FIELDS):
            found.append(f"row {number}: fields {sorted(item)} are not {sorted(ROW_FIELDS)}")
            continue
        for name, kinds in ROW_FIELDS.items():
            value = item[name]
            if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
                found.append(f"row {number}: {name}={value!r} has the wrong type")
    if not all(isinstance(note, str) for note in result["notes"]):
        found.append("a note is not a string")
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in result["versions"].items()):
        found.append("versions must map strings to strings")
    return found


def write_result(path: Path, bench: str, rows: list[dict[str, Any]], notes: list[str]) -> None:
    """Write one bench's result file (atomically: a half-written file never reaches the report)."""
    result = {"bench": bench, "rows": rows, "notes": notes, "versions": versions()}
    wrong = problems(result)
    if wrong:
        raise ValueError(f"{bench}: the result does not follow the schema: {wrong[0]}")
    partial = path.with_name(path.name + ".partial")
    partial.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    partial.replace(path)


# -- a durable PostgreSQL cluster --------------------------------------------------------------


@dataclass(frozen=True)
class PostgresCluster:
    """A running throwaway cluster reachable through its socket directory."""

    socket_dir: Path

    def url(self, database: str) -> str:
        return f"postgresql+psycopg://postgres@/{database}?host={self.socket_dir}"

    def create_database(self, name: str, template: str | None = None) -> str:
        """A new database, empty or a copy of ``template``; its SQLAlchemy URL."""
        import psycopg  # only the PostgreSQL benches need it
        from psycopg import sql

        statement = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
        if template:
            statement += sql.SQL(" TEMPLATE {}").format(sql.Identifier(template))
        try:
            with psycopg.connect(
                f"host={self.socket_dir} user=postgres dbname=postgres", autocommit=True
            ) as connection:
                connection.execute(statement)
        except psycopg.Error as error:
            raise RuntimeError(f"cannot create database {name}: {error}") from None
        return self.url(name)


@contextlib.contextmanager
def durable_postgres() -> Iterator[PostgresCluster]:
    """A throwaway cluster with PostgreSQL's default durability (fsync, synchronous_commit and
    full_page_writes on), unlike the test suite's cluster: a benchmark of durable acceptance
    must pay for the flush. The test suite's cluster code starts it (as an unprivileged user
    under root)."""
    from tests.pgcluster import throwaway_cluster

    if postgres_binary("initdb") is None or postgres_binary("pg_ctl") is None:
        raise RuntimeError("PostgreSQL's initdb/pg_ctl not found: run scripts/ensure-test-services")
    with throwaway_cluster(durable=True) as cluster:
        yield PostgresCluster(cluster.socket_dir)
