"""The mailbox import benchmark still runs end to end against real Dovecot and mbsync (tiny
sizes; timings are never asserted, counts and bytes are)."""

import json
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[1] / "bench" / "mailbox_import.py"


def test_mailbox_import_benchmark_smoke_run() -> None:
    result = subprocess.run(
        [sys.executable, str(BENCH), "--messages", "20", "--runs", "1", "--json"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    figures = json.loads(result.stdout)
    assert figures["messages"] == 20
    for tool in ("crmmail", "mbsync"):
        measured = figures["tools"][tool]
        assert measured["messages"] == 20, tool
        assert measured["payload_bytes"]["runs"] == [figures["mailbox_bytes"]], tool
        assert measured["wire_down_bytes"]["median"] > figures["mailbox_bytes"], tool
        assert len(measured["seconds"]["runs"]) == 1, tool
