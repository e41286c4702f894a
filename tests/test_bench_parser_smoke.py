"""The parser abuse benchmark still runs end to end (tiny inputs; figures are never asserted)."""

import json
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[1] / "bench" / "parser_abuse.py"


def test_parser_abuse_benchmark_smoke_run() -> None:
    result = subprocess.run(
        [sys.executable, str(BENCH), "--smoke", "--json"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    figures = json.loads(result.stdout)
    assert figures["smoke"] is True
    assert len(figures["hostile"]) >= 20
    for row in figures["hostile"]:
        assert not row["outcome"].startswith("raised"), row
    assert figures["corpus_messages"] > 0
