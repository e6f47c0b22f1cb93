"""The cancellation stress suite, on io_uring and on stock Trio as the control.

Every test runs ``trio_uring._tools.stress.run_stress`` (the engine behind
``python -m trio_uring stress``) with a fixed seed, so a failure reproduces
with the same seed. The engine asserts the invariants itself and reports
each broken one in ``violations``; these tests also check that the stress
really happened (operations were cancelled, kernel timeouts fired). A result
winning over a cancel is rare in this workload (the kernel usually cancels
first); that path is forced deterministically in ``test_op_core.py`` and
``test_lowlevel.py`` instead.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from trio_uring._tools.stress import BACKENDS, TRANSPORTS, StressConfig, run_stress

pytestmark = pytest.mark.timeout(300)


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("backend", BACKENDS)
def test_exactly_once_under_random_cancellation(backend: str, transport: str) -> None:
    config = StressConfig(seed=1234, rounds=3, channels=6, payload=48 * 1024,
                          transports=(transport,))  # fmt: skip
    report = run_stress(backend, config)  # type: ignore[arg-type]
    assert report.violations == []
    assert report.bytes_verified == config.rounds * config.channels * config.payload
    assert report.fds_leaked == 0
    assert report.ops_left_in_flight == 0
    # It was a stress run: plenty of operations were cancelled.
    assert report.cancels >= 50, report
    assert report.ops > report.cancels


def test_kernel_timeouts_fire_during_stress() -> None:
    config = StressConfig(seed=3, rounds=2, channels=16, payload=64 * 1024,
                          cancel_probability=0.8, transports=("socket", "pipe"))  # fmt: skip
    report = run_stress("uring", config)
    assert report.violations == []
    assert report.timeouts_fired > 0, report


@pytest.mark.parametrize("backend", BACKENDS)
def test_rss_flat_over_rounds(backend: str) -> None:
    config = StressConfig(seed=99, rounds=8, channels=8, payload=64 * 1024)
    report = run_stress(backend, config)  # type: ignore[arg-type]
    assert report.violations == []
    rss = report.rss_after_round
    assert len(rss) == 8
    # The engine's own check (16 MiB) plus a direct, tighter look.
    assert rss[-1] - rss[1] < 8 * 2**20, rss


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 2**32 - 1),
    max_chunk=st.sampled_from([1, 7, 512, 4096, 70000]),
    cancel_probability=st.floats(0, 1),
    transport=st.sampled_from(TRANSPORTS),
)
def test_exactly_once_for_any_seed(
    seed: int, max_chunk: int, cancel_probability: float, transport: str
) -> None:
    config = StressConfig(seed=seed, rounds=1, channels=2, payload=8192, max_chunk=max_chunk,
                          cancel_probability=cancel_probability,
                          transports=(transport,))  # fmt: skip
    report = run_stress("uring", config)
    assert report.violations == []
    assert report.bytes_verified == 2 * 8192


def test_invalid_configs_are_refused() -> None:
    with pytest.raises(ValueError, match="channels"):
        StressConfig(channels=0)
    with pytest.raises(ValueError, match="transports"):
        StressConfig(transports=("carrier-pigeon",))
    with pytest.raises(ValueError, match="cancel_probability"):
        StressConfig(cancel_probability=1.5)
    with pytest.raises(ValueError, match="backend"):
        run_stress("epoll", StressConfig())  # type: ignore[arg-type]


def test_cli_reports_and_exits_zero() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "trio_uring", "stress", "--rounds", "2", "--scale", "0.25",
         "--json"],
        capture_output=True, text=True, timeout=240, check=False,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    reports = json.loads(out.stdout)
    assert [r["backend"] for r in reports] == ["stock", "uring"]
    for r in reports:
        assert r["ok"] is True
        assert r["rounds"] == 2
        assert r["bytes_verified"] > 0
    # The progress bar went to stderr, one line per round off a terminal.
    assert out.stderr.count("[") >= 4


def test_cli_table_and_usage_errors() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "trio_uring", "stress", "--backend", "uring", "--rounds", "1",
         "--scale", "0.25"],
        capture_output=True, text=True, timeout=240, check=False,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    for label in ("ops", "cancels", "results that won", "linked timeouts fired",
                  "bytes verified", "fds leaked", "ops left in flight", "peak RSS"):  # fmt: skip
        assert label in out.stdout
    bad = subprocess.run(
        [sys.executable, "-m", "trio_uring", "stress", "--scale", "-1"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert bad.returncode == 2
    assert "--scale" in bad.stderr


def test_cli_unavailable_exits_3() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "trio_uring", "stress", "--backend", "uring", "--rounds", "1"],
        capture_output=True, text=True, timeout=60, check=False,
        env={**os.environ, "TRIO_URING_SIMULATE_FAILURE": "EPERM"},
    )  # fmt: skip
    assert out.returncode == 3, (out.stdout, out.stderr)
    assert "unavailable" in out.stderr
