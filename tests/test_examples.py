"""The examples run as they are (so `make demo` cannot rot)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

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


@pytest.mark.parametrize(
    ("args", "manager"),
    [([], "io_uring"), (["--backend", "trio"], "epoll"), (["--install"], "io_uring")],
)
def test_anyio_program_selects_the_backend(args: list[str], manager: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRIO_URING")}
    proc = subprocess.run(
        [sys.executable, str(EXAMPLES / "anyio_program.py"), "--clients", "3", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
        env=env,
    )
    report = {line[:16].strip(): line[16:] for line in proc.stdout.splitlines()}
    assert report["sniffio says"] == "trio"
    assert report["I/O manager"] == manager
    assert report["round trips"] == "300"
