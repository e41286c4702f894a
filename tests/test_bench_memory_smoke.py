"""The memory benchmark still runs end to end (tiny sizes; figures are never asserted)."""

import json
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[1] / "bench" / "memory.py"


def test_memory_benchmark_smoke_run() -> None:
    result = subprocess.run(
        [sys.executable, str(BENCH), "--smoke", "--json"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    figures = json.loads(result.stdout)
    for scenario in ("at_limit", "one_mib"):
        assert figures[scenario]["sessions"] == 2
        assert figures[scenario]["peak_rss_at_intake_mib"] >= figures[scenario]["baseline_rss_mib"]
