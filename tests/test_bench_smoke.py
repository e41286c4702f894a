"""The intake benchmark still runs end to end (tiny sizes; figures are never asserted)."""

import json
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[1] / "bench" / "ingest.py"


def test_ingest_benchmark_smoke_run() -> None:
    result = subprocess.run(
        [
            sys.executable,
            str(BENCH),
            "--messages",
            "10",
            "--sessions",
            "2",
            "--runs",
            "1",
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    figures = json.loads(result.stdout)
    assert figures["messages"] == 10
    assert len(figures["crmmail_msgs_per_s"]["runs"]) == 1
    assert figures["ratio"]["median"] > 0
