"""Write bench/RESULTS.md from the result files the benchmarks wrote with ``--json FILE``.

Reads every ``*.json`` in one directory (``make bench`` empties ``bench/out`` first, so every
row comes from the same run), checks each against the schema in bench/common.py, and writes the
machine, the versions, the date, one table with every row, then each bench's notes. A bench
script that declares ``BENCH = "name"`` but left no result file is listed as missing, and so is
a file that does not follow the schema; the exit status is 1 when anything is missing.

    .venv/bin/python bench/report.py [bench/out] [--output bench/RESULTS.md]
"""

import argparse
import ast
import json
import sys
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.common import figure, problems
from bench.common import versions as common_versions

BENCH_DIR = Path(__file__).resolve().parent
MACHINE_KEYS = ("cpu", "cores", "ram", "kernel", "python")
MISSING_HINT = "no result file: see that bench's output in the `make bench` log"


def declared_benches(directory: Path) -> dict[str, Path]:
    """``BENCH = "name"`` of every script in ``directory`` that declares one, by name."""
    found = {}
    for script in sorted(directory.glob("*.py")):
        try:
            tree = ast.parse(script.read_text(), str(script))
        except (SyntaxError, UnicodeDecodeError):
            continue
        for node in tree.body:
            if (
                isinstance(node, ast.Assign)
                and [getattr(target, "id", None) for target in node.targets] == ["BENCH"]
                and isinstance(node.value, ast.Constant)
                and isinstance(node.value.value, str)
            ):
                found[node.value.value] = script
    return found


def load(directory: Path) -> tuple[list[dict[str, Any]], list[str], list[float]]:
    """The valid results (sorted by bench), what is wrong with the others, and file times."""
    results, wrong, times = [], [], []
    for path in sorted(directory.glob("*.json")):
        try:
            result = json.loads(path.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
            wrong.append(f"`{path.name}`: unreadable ({error})")
            continue
        found = problems(result)
        if found:
            wrong.append(f"`{path.name}`: {'; '.join(found[:3])}")
            continue
        results.append(result)
        times.append(path.stat().st_mtime)
    return sorted(results, key=lambda result: result["bench"]), wrong, times


def cell(value: object) -> str:
    """A Markdown table cell."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "**no**"
    if isinstance(value, float | int):
        return figure(float(value))
    return str(value).replace("|", "\\|").replace("\n", " ")


def merged(results: Iterable[dict[str, Any]], keys: Iterable[str] | None = None) -> dict[str, str]:
    """Versions and machine facts across the result files (differences are shown side by side)."""
    values: dict[str, list[str]] = {}
    for result in results:
        for key, value in result["versions"].items():
            if keys is None or key in keys:
                seen = values.setdefault(key, [])
                if value not in seen:
                    seen.append(value)
    return {key: " / ".join(seen) for key, seen in values.items()}


def when(times: list[float]) -> str:
    if not times:
        return "no results"
    first, last = (datetime.fromtimestamp(t, UTC) for t in (min(times), max(times)))
    return (
        f"{first:%Y-%m-%d %H:%M}-{last:%H:%M} UTC"
        if first.date() == last.date()
        else (f"{first:%Y-%m-%d %H:%M} to {last:%Y-%m-%d %H:%M} UTC")
    )


def render(
    results: list[dict[str, Any]], wrong: list[str], missing: list[str], times: list[float]
) -> str:
    here = common_versions()  # for what no result file states: read on this machine now
    machine = {**here, **merged(results, MACHINE_KEYS)}
    versions = {
        key: value for key, value in {**here, **merged(results)}.items() if key not in MACHINE_KEYS
    }
    lines = [
        "# Benchmark results",
        "",
        "Written by `bench/report.py` from the result files of one `make bench` run "
        f"(measured {when(times)}; written {datetime.now(UTC):%Y-%m-%d %H:%M} UTC). "
        "Figures are medians over the runs; spread is min-max of ours, and of the ratio "
        "ours/reference where there is one. The machine is shared and noisy: compare ratios, "
        "which pair runs made side by side, rather than absolute figures.",
        "",
        "## Machine",
        "",
        f"- CPU: {machine.get('cpu', '?')}, {machine.get('cores', '?')} cores",
        f"- RAM: {machine.get('ram', '?')}",
        f"- Kernel: {machine.get('kernel', '?')}",
        f"- Python: {machine.get('python', '?')}",
        "",
        "## Versions",
        "",
        "| component | version |",
        "|---|---|",
        *(f"| {cell(name)} | {cell(value)} |" for name, value in versions.items()),
        "",
        "## Results",
        "",
        "| bench | what | ours | unit | reference | ratio | target | met? | spread | runs |",
        "|---|---|---:|---|---|---:|---|---|---|---:|",
    ]
    for result in results:
        for item in result["rows"]:
            reference = (
                f"{cell(item['reference'])} ({cell(item['reference_name'])})"
                if item["reference"] is not None
                else "—"
            )
            ratio = f"{cell(item['ratio'])}x" if item["ratio"] is not None else "—"
            lines.append(
                f"| {cell(result['bench'])} | {cell(item['what'])} | {cell(item['ours'])} "
                f"| {cell(item['unit'])} | {reference} | {ratio} | {cell(item['target'])} "
                f"| {cell(item['met'])} | {cell(item['spread'])} | {item['runs']} |"
            )
    lines += ["", "## Notes"]
    for result in results:
        lines += ["", f"### {result['bench']}", ""]
        lines += [f"- {note}" for note in result["notes"]] or ["- (none)"]
    if missing or wrong:
        lines += ["", "## Missing", ""]
        lines += [f"- {name}: {MISSING_HINT}" for name in missing]
        lines += [f"- {problem}" for problem in wrong]
    return "\n".join(lines) + "\n"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "results",
        nargs="?",
        type=Path,
        default=BENCH_DIR / "out",
        help="the result files' directory",
    )
    parser.add_argument(
        "--output", type=Path, default=BENCH_DIR / "RESULTS.md", help="the Markdown file to write"
    )
    parser.add_argument(
        "--benches", type=Path, default=BENCH_DIR, help="where the bench scripts are (BENCH = ...)"
    )
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    if not args.results.is_dir():
        sys.exit(f"report: no such directory: {args.results}")
    results, wrong, times = load(args.results)
    found = {result["bench"] for result in results}
    missing = sorted(set(declared_benches(args.benches)) - found)
    try:
        args.output.write_text(render(results, wrong, missing, times))
    except OSError as error:
        sys.exit(f"report: cannot write {args.output}: {error.strerror}")
    rows = sum(len(result["rows"]) for result in results)
    print(f"report: {rows} rows from {len(results)} bench(es) written to {args.output}")
    for name in missing:
        print(f"report: missing: {name} ({MISSING_HINT})", file=sys.stderr)
    for problem in wrong:
        print(f"report: missing: {problem}", file=sys.stderr)
    if missing or wrong:
        sys.exit(1)


if __name__ == "__main__":
    main()
