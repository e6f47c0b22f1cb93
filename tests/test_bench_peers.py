"""The echo benchmark's peers (asyncio, uvloop) and its per-backend report.

The peer servers are really started: each must echo bytes back intact and
exit 0 on SIGTERM, as Trio's echo server does. Trio's server must write
its I/O statistics at exit when asked. The report's new columns (paired
ratios against stock, SQEs per io_uring_enter, "not installed") are checked
on made-up results, so nothing here depends on timing.
"""

from __future__ import annotations

import json
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from trio_uring._tools import bench_cli
from trio_uring._tools.bench import echo
from trio_uring._tools.bench.echo_processes import ECHO_BACKENDS, PEER_SERVER_MODULE, unavailable
from trio_uring._tools.bench.echo_report import (
    add_ratios,
    format_summary,
    format_table,
    paired_ratios,
    summarize,
)
from trio_uring._tools.bench.peer_servers import (
    EXIT_NOT_INSTALLED,
    PEER_BACKENDS,
    missing_module,
)

TRIO_SERVER_MODULE = "trio_uring._tools.bench.echo_server"


@contextmanager
def server(
    module: str, backend: str, tmp_path: Path, *extra: str
) -> Iterator[tuple[subprocess.Popen[bytes], int]]:
    """Start an echo server the way the benchmark does; yield it and its port."""
    ready = tmp_path / f"ready-{backend}"
    proc = subprocess.Popen(
        [sys.executable, "-m", module, "--backend", backend, "--port", "0",
         "--ready-file", str(ready), *extra],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while not ready.exists():
            assert proc.poll() is None, proc.communicate()[1].decode(errors="replace")
            assert time.monotonic() < deadline, f"{backend} server never became ready"
            time.sleep(0.02)
        yield proc, int(ready.read_text())
    finally:
        if proc.returncode is None:  # not stopped by the test
            proc.kill()
            proc.communicate()


def stop(proc: subprocess.Popen[bytes], signum: int) -> tuple[int, str]:
    """Send ``signum``; return the exit status and stderr."""
    proc.send_signal(signum)
    try:
        _, err = proc.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        raise AssertionError(f"server ignored signal {signum}") from None
    return proc.returncode, err.decode(errors="replace")


def echo_round_trip(port: int, payload: bytes) -> bytes:
    """Send ``payload`` (from a thread) while reading the echo back; return what came back."""
    with socket.create_connection(("127.0.0.1", port), timeout=20) as sock:
        sender = threading.Thread(target=sock.sendall, args=(payload,))
        sender.start()
        received = bytearray()
        while len(received) < len(payload):
            chunk = sock.recv(65536)
            if not chunk:
                break
            received += chunk
        sender.join()
        return bytes(received)


def check_echoes(port: int) -> None:
    """Several connections, small and large payloads (a large one needs the server's
    write buffering or drain), each echoed byte for byte."""
    for i, size in enumerate((1, 64, 4096, 300_000)):
        payload = bytes((i * 7 + k) % 251 for k in range(size))
        assert echo_round_trip(port, payload) == payload, f"{size} B echo differs"
    # Connections open at once, interleaved.
    socks = [socket.create_connection(("127.0.0.1", port), timeout=20) for _ in range(5)]
    try:
        for n, sock in enumerate(socks):
            sock.sendall(b"peer %d\n" % n)
        for n, sock in enumerate(socks):
            want = b"peer %d\n" % n
            got = b""
            while len(got) < len(want):
                chunk = sock.recv(64)
                assert chunk, f"connection {n} closed after {got!r}"
                got += chunk
            assert got == want
    finally:
        for sock in socks:
            sock.close()


@pytest.mark.timeout(60)
@pytest.mark.parametrize("backend", PEER_BACKENDS)
def test_peer_server_echoes_and_exits_0_on_sigterm(backend: str, tmp_path: Path) -> None:
    # uvloop is pinned in requirements-dev.txt: here it must be installed.
    assert missing_module(backend) is None
    with server(PEER_SERVER_MODULE, backend, tmp_path) as (proc, port):
        check_echoes(port)
        # A client that resets its connection (as the load generator does at
        # the end of a run) must not take the server down.
        reset = socket.create_connection(("127.0.0.1", port), timeout=20)
        reset.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        reset.sendall(b"x" * 1000)
        reset.close()
        # An idle connection still open at shutdown must not hold the exit up.
        with socket.create_connection(("127.0.0.1", port), timeout=20):
            check_echoes(port)
            status, err = stop(proc, signal.SIGTERM)
    assert status == 0, err
    assert "Traceback" not in err, err


@pytest.mark.timeout(60)
def test_peer_server_exits_0_on_sigint(tmp_path: Path) -> None:
    with server(PEER_SERVER_MODULE, "asyncio-streams", tmp_path) as (proc, port):
        assert echo_round_trip(port, b"ping") == b"ping"
        status, err = stop(proc, signal.SIGINT)
    assert status == 0, err
    assert "Traceback" not in err, err


def test_uvloop_missing_is_reported_not_a_crash(tmp_path: Path) -> None:
    # A None entry in sys.modules makes the import fail as if not installed.
    code = (
        "import sys; sys.modules['uvloop'] = None\n"
        "from trio_uring._tools.bench.peer_servers import main\n"
        f"sys.exit(main(['--backend', 'uvloop', '--port', '0', "
        f"'--ready-file', {str(tmp_path / 'ready')!r}]))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=30, check=False
    )
    assert out.returncode == EXIT_NOT_INSTALLED
    assert "uvloop: not installed" in out.stderr
    assert "Traceback" not in out.stderr
    assert not (tmp_path / "ready").exists()


def test_bench_skips_a_peer_that_is_not_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "uvloop", None)
    assert unavailable("uvloop") is not None
    assert unavailable("asyncio-protocol") is None
    lines: list[str] = []
    results = echo.run_echo_bench([64], [2], 0.2, 0.0, ["uvloop"], lines.append, repeat=2)
    [entry] = results
    assert entry["backend"] == "uvloop"
    assert entry["skipped"] is True
    assert entry["ok"] is False
    assert entry["runs"] == []
    assert "not installed" in entry["error"]
    assert any("uvloop" in ln and "not installed" in ln for ln in lines)
    assert "uvloop" in format_table(results)
    assert "not installed (pip install uvloop" in format_table(results)
    assert "not installed (pip install uvloop" in format_summary(results)
    # bench_echo.py: a skipped backend is not a failure.
    monkeypatch.setattr(echo, "run_echo_bench", lambda *a, **k: results)
    assert echo.main(["--backends", "uvloop"]) == 0


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    ("backend", "has_ring_counters"), [("uring", True), ("uring-poll", True), ("stock", False)]
)
def test_trio_server_writes_io_statistics(
    backend: str, has_ring_counters: bool, tmp_path: Path
) -> None:
    stats_file = tmp_path / "stats.json"
    with server(TRIO_SERVER_MODULE, backend, tmp_path, "--stats-file", str(stats_file)) as (
        proc,
        port,
    ):
        for _ in range(20):
            assert echo_round_trip(port, b"x" * 100) == b"x" * 100
        assert not stats_file.exists()  # written at exit, not before
        status, err = stop(proc, signal.SIGTERM)
    assert status == 0, err
    stats = json.loads(stats_file.read_text())
    if has_ring_counters:
        assert stats["backend"] == "io_uring"
        assert stats["enter_calls"] > 0
        assert stats["sqes_submitted"] > 0
        assert stats["sqes_per_enter"] == pytest.approx(
            stats["sqes_submitted"] / stats["enter_calls"]
        )
    else:
        assert "sqes_submitted" not in stats
        assert stats["backend"] != "io_uring"


@pytest.mark.timeout(120)
def test_short_run_with_peers(tmp_path: Path) -> None:
    """A real (tiny) interleaved run: every peer is driven by the load generator."""
    backends = ["stock", "uring", "asyncio-protocol", "asyncio-streams", "uvloop"]
    assert set(backends) <= set(ECHO_BACKENDS)
    results = echo.run_echo_bench([64], [4], 0.3, 0.0, backends, None, repeat=2)
    assert [r["backend"] for r in results] == backends
    for r in results:
        assert r["ok"], r["error"]
        assert r["rps"] > 0
        assert r["cpu_us_per_rt"] is not None
        assert len(r["runs"]) == 2
        # Rounds alternate their order (ABBA), peers included.
        assert [run["round"] for run in r["runs"]] == [0, 1]
    by = {r["backend"]: r for r in results}
    assert by["uring"]["sqes_per_enter"] > 0
    for peer in ("stock", *PEER_BACKENDS):
        assert by[peer]["sqes_per_enter"] is None
    for peer in ("uring", *PEER_BACKENDS):
        assert len(by[peer]["rps_ratios_per_round"]) == 2
        assert by[peer]["rps_ratio_vs_stock"] > 0
    assert [run["position"] for run in by["uvloop"]["runs"]] == [4, 0]


def run(rnd: int, rps: float, cpu: float, **extra: Any) -> dict[str, Any]:
    return {"ok": True, "error": None, "round": rnd, "position": 0, "rps": rps,
            "round_trips": int(rps), "cpu_us_per_rt": cpu, "p50_us": 100.0,
            "p99_us": 900.0, "errors": 0, **extra}  # fmt: skip


def made_up_case() -> list[dict[str, Any]]:
    stock = summarize(64, 50, "stock", [run(0, 100.0, 20.0), run(1, 200.0, 10.0),
                                        run(2, 100.0, 20.0)], 3)  # fmt: skip
    uring = summarize(64, 50, "uring", [
        run(0, 150.0, 10.0, sqes_per_enter=8.0), run(1, 220.0, 8.0, sqes_per_enter=9.0),
        run(2, 90.0, 25.0, sqes_per_enter=11.0)], 3)  # fmt: skip
    uvloop = summarize(64, 50, "uvloop", [run(0, 300.0, 5.0), run(1, 500.0, 4.0),
                                          run(2, 260.0, 5.0)], 3)  # fmt: skip
    uvloop["syscalls_per_rt"] = 2.04
    case = [stock, uring, uvloop]
    add_ratios(case)
    return case


def test_paired_ratios_are_per_round_then_median() -> None:
    stock, uring, uvloop = made_up_case()
    # Round by round 150/100, 220/200, 90/100: median 1.1, where the ratio
    # of the medians (150/100) would say 1.5.
    assert uring["rps_ratios_per_round"] == pytest.approx([1.5, 1.1, 0.9])
    assert uring["rps_ratio_vs_stock"] == pytest.approx(1.1)
    assert uring["rps_ratio_of_medians"] == pytest.approx(1.5)
    # CPU: stock's over ours, per round: 2.0, 1.25, 0.8.
    assert uring["cpu_ratio_vs_stock"] == pytest.approx(1.25)
    assert uvloop["rps_ratio_vs_stock"] == pytest.approx(2.6)
    assert uring["sqes_per_enter"] == pytest.approx(9.0)
    assert "rps_ratio_vs_stock" not in stock
    # A failed or missing round drops out of the pairs.
    uring["runs"][1]["ok"] = False
    assert paired_ratios(uring["runs"], stock["runs"], "rps") == pytest.approx([1.5, 0.9])


def test_echo_table_has_the_new_columns() -> None:
    table = format_table(made_up_case())
    header, _, stock, uring, uvloop = table.splitlines()[:5]
    assert "sqe/enter" in header
    assert "rps x" in header
    assert stock.split()[:4] == ["64B", "x", "50c", "stock"]
    assert "9.00" in uring.split()  # SQEs per enter
    assert "1.10x" in uring.split()  # the paired ratio, not 1.50x
    assert "1.25x" in uring.split()
    assert "2.04" in uvloop.split()  # syscalls per round trip
    assert "2.60x" in uvloop.split()
    assert "median over rounds" in table


def test_bench_summary_lists_every_backend() -> None:
    summary = format_summary(made_up_case())
    lines = summary.splitlines()
    assert lines[0].split() == ["echo", "case", "backend", "round", "trips/s", "vs", "stock",
                                "cpu", "us/rt", "syscalls/rt", "SQEs/enter"]  # fmt: skip
    rows = {ln.split()[4]: ln.split()[5:] for ln in lines[2:5]}
    assert rows["stock"] == ["100", "1.00x", "20.0", "-", "-"]
    assert rows["uring"] == ["150", "1.10x", "10.0", "-", "9.00"]
    assert rows["uvloop"] == ["300", "2.60x", "5.0", "2.04", "-"]


def test_bench_cli_echo_section(monkeypatch: pytest.MonkeyPatch) -> None:
    """``trio-uring bench``'s echo rows use the paired ratios; peers do not fail it."""
    case = made_up_case()
    poll = {**case[1], "backend": "uring-poll"}
    skipped = {
        "size": 64, "connections": 50, "backend": "asyncio-protocol", "ok": False,
        "skipped": True, "error": "not installed (test)", "repeat": 3, "runs": [],
    }  # fmt: skip
    results = [case[0], poll, case[1], skipped, case[2]]
    seen: dict[str, Any] = {}

    def fake(*args: Any, **kwargs: Any) -> list[dict[str, Any]]:
        seen["backends"] = args[4]
        seen["strace"] = kwargs.get("strace")
        return results

    monkeypatch.setattr(echo, "run_echo_bench", fake)
    rows, details = bench_cli._echo(bench_cli.DEFAULT, lambda _: None)
    assert "asyncio-protocol" in seen["backends"]
    assert "uvloop" in seen["backends"]
    assert seen["strace"] is False
    assert details is results
    native = [r for r in rows if r.bench.endswith("native sockets")]
    assert [r.metric for r in native] == ["round trips/s", "server CPU us/round trip"]
    assert native[0].advantage == pytest.approx(1.1)  # paired, not 150/100
    assert native[1].advantage == pytest.approx(1.25)
    assert "medians of per-round ratios" in bench_cli.format_table(rows)
    full_backends = bench_cli.ECHO_BACKENDS[bench_cli.FULL]
    assert set(PEER_BACKENDS) <= set(full_backends)
