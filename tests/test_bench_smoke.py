"""Every benchmark still runs end to end, and the report reads what they write.

Each ``bench/*.py`` that declares ``BENCH = "name"`` runs with ``--smoke --json FILE`` (tiny
sizes; figures are never asserted, the result file's shape is), then ``bench/report.py`` turns
the files into RESULTS.md, which must hold one table row per result row. A new bench is picked up
by its marker, without editing this file.
"""

import json
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from bench.common import ours_at_most, problems, ratio_at_least, reported, row

ROOT = Path(__file__).resolve().parents[1]
BENCH_DIR = ROOT / "bench"
REPORT = BENCH_DIR / "report.py"
LIBRARIES = {"common.py", "report.py"}  # bench/ modules that are not benchmarks
MARKER = re.compile(r'^BENCH = "(?P<name>[a-z0-9_]+)"$', re.MULTILINE)
SMOKE_TIMEOUT = 240  # seconds for one bench's smoke run


def declared() -> dict[str, Path]:
    found = {}
    for script in sorted(BENCH_DIR.glob("*.py")):
        match = MARKER.search(script.read_text())
        if match:
            found[match["name"]] = script
    return found


BENCHES = declared()
RunSmoke = Callable[[str], tuple[subprocess.CompletedProcess[str], Path]]


@pytest.fixture(scope="module")
def run_smoke(tmp_path_factory: pytest.TempPathFactory) -> RunSmoke:
    """Runs a bench's smoke run once per test module; returns its process and result file."""
    out = tmp_path_factory.mktemp("bench-out")
    done: dict[str, tuple[subprocess.CompletedProcess[str], Path]] = {}

    def run(name: str) -> tuple[subprocess.CompletedProcess[str], Path]:
        if name not in done:
            result_file = out / f"{name}.json"
            process = subprocess.run(
                [sys.executable, str(BENCHES[name]), "--smoke", "--json", str(result_file)],
                capture_output=True,
                text=True,
                timeout=SMOKE_TIMEOUT,
                check=False,
                cwd=ROOT,
            )
            done[name] = (process, result_file)
        return done[name]

    return run


def test_every_bench_script_declares_its_name() -> None:
    scripts = {path.name for path in BENCH_DIR.glob("*.py")} - LIBRARIES
    assert scripts == {path.name for path in BENCHES.values()}
    assert {"ingest", "memory", "parser_abuse"} <= set(BENCHES)


@pytest.mark.timeout(SMOKE_TIMEOUT + 30)
@pytest.mark.parametrize("name", sorted(BENCHES))
def test_bench_smoke_run_writes_a_result_file(name: str, run_smoke: RunSmoke) -> None:
    process, result_file = run_smoke(name)
    assert process.returncode == 0, process.stderr[-2000:]
    result = json.loads(result_file.read_text())
    assert problems(result) == []
    assert result["bench"] == name
    assert result["rows"], "a bench must report at least one row"
    for item in result["rows"]:
        assert item["runs"] >= 1, item
        assert item["spread"], item
        if item["ratio"] is not None:
            assert item["reference"] is not None and item["reference_name"], item
    assert not list(result_file.parent.glob("*.partial"))


@pytest.mark.timeout(SMOKE_TIMEOUT + 30)
def test_ingest_compares_both_databases_with_the_references(run_smoke: RunSmoke) -> None:
    _, result_file = run_smoke("ingest")
    rows = {item["what"]: item for item in json.loads(result_file.read_text())["rows"]}
    for database in ("SQLite", "PostgreSQL"):
        for size in ("4 KiB",):
            bare = rows[f"intake {size}, {database} vs bare aiosmtpd"]
            assert bare["reference"] > 0 and bare["ratio"] > 0 and bare["unit"] == "msg/s"
            assert rows[f"intake {size}, {database}, throughput"]["unit"] == "MB/s"
            postfix = rows[f"intake {size}, {database} vs Postfix"]
            # Measured wherever scripts/ensure-bench-services could install Postfix (as root).
            if Path("/usr/sbin/smtp-source").exists() and Path("/usr/sbin/postfix").exists():
                assert postfix["reference"] > 0 and postfix["reference_name"] == "Postfix"
            else:
                assert postfix["reference"] is None and postfix["met"] is None


@pytest.mark.timeout(SMOKE_TIMEOUT * len(BENCHES) + 60)
def test_report_writes_a_table_row_per_result_row(run_smoke: RunSmoke, tmp_path: Path) -> None:
    expected: dict[str, int] = {}
    out = None
    for name in BENCHES:
        process, result_file = run_smoke(name)
        assert process.returncode == 0, f"{name}: {process.stderr[-2000:]}"
        expected[name] = len(json.loads(result_file.read_text())["rows"])
        out = result_file.parent
    assert out is not None
    results_md = tmp_path / "RESULTS.md"
    report = subprocess.run(
        [sys.executable, str(REPORT), str(out), "--output", str(results_md)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert report.returncode == 0, report.stderr
    text = results_md.read_text()
    for name, count in expected.items():
        table_rows = [line for line in text.splitlines() if line.startswith(f"| {name} |")]
        assert len(table_rows) == count, name
        assert f"### {name}" in text
    for heading in ("## Machine", "## Versions", "## Results", "## Notes"):
        assert heading in text
    assert "## Missing" not in text


def test_report_lists_a_bench_without_a_result_file(tmp_path: Path) -> None:
    results_md = tmp_path / "RESULTS.md"
    (tmp_path / "broken.json").write_text('{"bench": "broken", "rows": "none"}')
    report = subprocess.run(
        [sys.executable, str(REPORT), str(tmp_path), "--output", str(results_md)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert report.returncode == 1
    text = results_md.read_text()
    for name in BENCHES:
        assert f"- {name}: no result file" in text
    assert "`broken.json`" in text
    assert "Traceback" not in report.stderr


@pytest.mark.parametrize(
    ("script", "arguments"),
    [
        ("ingest.py", ["--sizes", "0"]),
        ("ingest.py", ["--databases", "mysql"]),
        ("ingest.py", ["--json", "/no/such/dir/ingest.json"]),
        ("report.py", ["/no/such/dir"]),
    ],
)
def test_bad_arguments_give_one_line(script: str, arguments: list[str]) -> None:
    done = subprocess.run(
        [sys.executable, str(BENCH_DIR / script), *arguments],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode != 0
    assert "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines()[-1].split(":")[0] in {
        script.removesuffix(".py"),
        script,
        "report",
    }


def test_a_row_holds_medians_paired_ratios_and_whether_the_target_is_met() -> None:
    figures = row(
        "x", "msg/s", [90.0, 100.0, 80.0], ratio_at_least(0.8), [100.0, 100.0, 200.0], "r"
    )
    assert figures["ours"] == 90.0 and figures["reference"] == 100.0
    assert figures["ratio"] == 0.9  # the median of 0.9, 1.0 and 0.4
    assert figures["met"] is True and figures["runs"] == 3
    assert figures["spread"] == "80.0-100; ratio 0.4-1.00"
    assert problems({"bench": "b", "rows": [figures], "notes": [], "versions": {}}) == []
    missed = row("y", "s", [1.5], ours_at_most(1.0, "s"))
    assert missed["met"] is False and missed["ratio"] is None and missed["reference_name"] is None
    assert row("z", "MiB", [3.0], reported())["met"] is None
    no_reference = row("w", "msg/s", [5.0], ratio_at_least(1.5), None, "Postfix")
    assert no_reference["met"] is None and no_reference["reference_name"] is None
