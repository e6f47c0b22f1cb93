"""The examples run as they are (so `make demo` cannot rot)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def test_demo_runs_both_backends() -> None:
    proc = subprocess.run(
        [sys.executable, str(EXAMPLES / "demo.py"), "--seconds", "0.3", "--clients", "4"],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    lines = {line.split("  ")[0]: line.split() for line in proc.stdout.splitlines() if line}
    assert lines["I/O backend"][-2:] == ["epoll", "io_uring"]
    round_trips = lines["echo round trips"][-2:]
    assert all(int(n.replace(",", "")) > 0 for n in round_trips)
    assert "trio_uring / stock" in proc.stdout
