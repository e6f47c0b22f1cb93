"""Memory safety under cancellation, checked by the debug allocator.

Each scenario of ``memsafety_child.py`` runs in a fresh interpreter under
``PYTHONMALLOC=debug`` and ``-X dev``: freed blocks are filled with a
pattern and every block's guard bytes are checked when it is freed, so a
kernel write into memory we no longer own breaks a canary or aborts the
child. See that file for what each scenario does.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

CHILD = Path(__file__).with_name("memsafety_child.py")

SCENARIOS = [
    "cancelled_receives_then_data",
    "receive_stays_inside_its_slice",
    "run_ends_with_thousands_in_flight",
    "keyboard_interrupt_with_ops_in_flight",
    "pinned_views_in_garbage_cycles",
]


@pytest.mark.timeout(120)
@pytest.mark.parametrize("scenario", SCENARIOS)
def test_scenario_under_debug_malloc(scenario: str) -> None:
    env = {**os.environ, "PYTHONMALLOC": "debug", "PYTHONFAULTHANDLER": "1"}
    out = subprocess.run(
        [sys.executable, "-X", "dev", str(CHILD), scenario],
        capture_output=True, text=True, timeout=110, env=env, check=False,
    )  # fmt: skip
    assert out.returncode == 0, f"exit {out.returncode}\n{out.stdout}\n{out.stderr}"
    assert out.stdout.strip().splitlines()[-1] == "ok"
    # -X dev turns ResourceWarnings (unclosed sockets, files) into output.
    assert "ResourceWarning" not in out.stderr, out.stderr


def test_every_scenario_is_run() -> None:
    from tests import memsafety_child

    assert sorted(memsafety_child.SCENARIOS) == sorted(SCENARIOS)
