"""``python -m trio_uring bench``: runs, reports both backends, refuses bad usage."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys

import pytest


def bench(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "trio_uring", "bench", *args],
        capture_output=True, text=True, timeout=280, check=False, env=env,
    )  # fmt: skip


@pytest.mark.timeout(300)
def test_quick_streaming_json() -> None:
    out = bench("--quick", "--only", "streaming", "--json")
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["quick"] is True
    rows = data["rows"]
    # One stream of 256 MiB (1 GiB without --quick), then four streams, each
    # on trio_uring's defaults and on the batched path: throughput, and CPU
    # per GiB (lower is better, so the ratio inverts).
    one, four = "streaming 1 x 256 MiB", "streaming 4 x 64 MiB"
    batched = ", batched path"
    assert [(r["bench"], r["metric"]) for r in rows] == [
        (one, "GiB/s"), (one, "CPU s per GiB"), (one + batched, "GiB/s"),
        (one + batched, "CPU s per GiB"), (four, "GiB/s"), (four, "CPU s per GiB"),
        (four + batched, "GiB/s"), (four + batched, "CPU s per GiB"),
    ]  # fmt: skip
    for row in rows:
        assert row["stock"] > 0
        assert row["uring"] > 0
    details = data["details"]["streaming"]
    for name, (stock, uring, batched_run) in details.items():
        # Each backend really ran on its own I/O manager, the streams asked for.
        assert {r["io_backend"] for r in stock["runs"]} == {"epoll"}, name
        assert {r["io_backend"] for r in uring["runs"]} == {"io_uring"}, name
        assert (uring["backend"], batched_run["backend"]) == ("uring", "uring-batched")
        assert stock["connections"] == uring["connections"] == int(name.split()[1])
        # The advantage is the median of the per-round paired ratios.
        for ours in (uring, batched_run):
            pairs = [
                r["gib_per_s"] / s["gib_per_s"]
                for r, s in zip(ours["runs"], stock["runs"], strict=True)
            ]
            assert ours["ratio"] == pytest.approx(statistics.median(pairs))
        for row in rows:
            if row["bench"] == name and row["metric"] == "GiB/s":
                assert row["advantage"] == pytest.approx(uring["ratio"])
    assert "100%" in out.stderr  # the progress bar reached the end


@pytest.mark.timeout(300)
def test_quick_files_json() -> None:
    out = bench("--quick", "--only", "files", "--json")
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    rows = data["rows"]
    assert [r["metric"] for r in rows] == ["reads/s", "reads/s", "GB/s", "GB/s"]
    for row in rows:
        assert row["stock"] > 0
        assert row["uring"] > 0
        assert row["advantage"] == pytest.approx(row["uring"] / row["stock"])
    details = data["details"]["files"]
    assert set(details["random"]) == {"a", "b", "c", "d", "e"}
    assert details["random"]["d"]["reads"] == 20_000
    # Each row's stock figure is stock Trio's way of doing the same thing:
    # open_file for seek+read, os.pread in a worker thread for pread.
    assert rows[0]["stock"] == details["random"]["a"]["reads_per_s"]
    assert rows[1]["stock"] == details["random"]["b"]["reads_per_s"]
    assert data["scale"] == "quick"
    assert set(details["sequential"]) == {"64 KiB", "1024 KiB"}
    assert "100%" in out.stderr


@pytest.mark.timeout(300)
def test_table_output() -> None:
    out = bench("--quick", "--only", "cancel")
    assert out.returncode == 0, out.stderr
    assert "us per cancellation" in out.stdout
    assert "peak RSS MiB" in out.stdout
    assert "cancel 10,000 socketpair receives" in out.stdout
    assert "trio_uring does better" in out.stdout


def test_usage_errors() -> None:
    out = bench("--only", "nonsense")
    assert out.returncode == 2
    assert "--only" in out.stderr


def test_unavailable_exits_3() -> None:
    out = bench("--quick", env={**os.environ, "TRIO_URING_SIMULATE_FAILURE": "EPERM"})
    assert out.returncode == 3
    assert "unavailable" in out.stderr


def test_quick_and_full_exclude_each_other() -> None:
    out = bench("--quick", "--full", "--only", "cancel")
    assert out.returncode == 2
    assert "exclude each other" in out.stderr


@pytest.mark.timeout(300)
def test_quick_echo_table_lists_every_backend() -> None:
    out = bench("--quick", "--only", "echo")
    assert out.returncode == 0, out.stderr
    assert "echo ratios are medians of per-round ratios" in out.stdout
    # After the stock/trio_uring table, one line per echo backend.
    lines = out.stdout.splitlines()
    head = next(i for i, ln in enumerate(lines) if ln.startswith("echo case"))
    assert "vs stock" in lines[head]
    assert "SQEs/enter" in lines[head]
    rows = {ln.split()[4]: ln.split()[5:] for ln in lines[head + 2 : head + 5]}
    assert list(rows) == ["stock", "uring-poll", "uring"]
    assert rows["stock"][1] == "1.00x"
    for backend in ("uring-poll", "uring"):
        rps, ratio, cpu, syscalls, sqes = rows[backend]
        assert float(rps.replace(",", "")) > 0
        assert ratio.endswith("x")
        assert float(cpu) > 0
        assert syscalls == "-"  # no --strace
        assert float(sqes) > 0  # the server's ring counters reached the table
    assert rows["stock"][4] == "-"
