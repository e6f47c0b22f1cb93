"""TCP echo benchmark: stock Trio vs trio_uring, and peers, in one run.

For every (payload size, connection count) case and every backend, this
starts the backend's echo server in a subprocess (``echo_server.py`` for
Trio's backends, ``peer_servers.py`` for asyncio and uvloop), drives it with
the C load generator ``echo_client.c`` (built with the package), and
reports round trips per second, latency percentiles, and the server's CPU
time per round trip; for the backends on trio_uring also SQEs per
``io_uring_enter`` (over the server's whole run). With ``--strace`` it
additionally runs each server under ``strace -f -c`` in a separate, shorter
pass to count system calls per round trip. A peer whose module is not
installed (uvloop) is reported as not installed and not run.

Single runs on a small machine are noisy (identical runs can differ by more
than 1.5x in round trips per second), so each case is run ``--repeat``
times per backend, interleaving the backends and alternating their order
every round, and the table reports medians, the rps range and the ratios
to stock Trio: each round's ratio to the stock run of the same round, then
the median of those. ``--json`` also includes every individual run. On a machine
with two or more CPUs the server and the load generator are each bound to
one CPU (``TRIO_URING_BENCH_PIN=0`` turns that off).

Usage::

    python benchmarks/bench_echo.py [--sizes 64,4096] [--connections 50,1000]
        [--duration 5] [--warmup 1] [--repeat 3]
        [--backends stock,uring-poll,uring,asyncio-protocol,uvloop]
        [--strace] [--json]

The process exits non-zero if any run failed: a child exited badly, the
client reported connection errors, or echoed data failed verification. A
backend that is not installed is not a failure.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from .echo_processes import (
    ECHO_BACKENDS,
    STRACE_MAX_DURATION,
    STRACE_WARMUP,
    BenchError,
    EchoServer,
    ProgressCallback,
    build_client,
    machine_busy_seconds,
    parse_strace_summary,
    process_cpu_seconds,
    run_client,
    unavailable,
)
from .echo_report import add_ratios, fmt, format_table, summarize


def _throughput_run(
    client: Path,
    backend: str,
    size: int,
    connections: int,
    duration: float,
    warmup: float,
    workdir: Path,
) -> dict[str, Any]:
    started_at = time.time()
    server = EchoServer(backend, workdir, None)
    try:
        port = server.wait_ready()
        # phase -> (server CPU, client CPU, whole-machine busy CPU) seconds
        cpu: dict[str, tuple[float, float, float]] = {}

        def on_phase(phase: str, client_pid: int) -> None:
            cpu[phase] = (
                server.cpu_seconds(),
                process_cpu_seconds(client_pid),
                machine_busy_seconds(),
            )

        result = run_client(client, port, connections, size, duration, warmup, on_phase)
        if server.proc.poll() is not None:
            raise BenchError(f"{backend} server died during the run:\n{server.stderr_text()}")
    finally:
        exit_code = server.stop()
    result["server_exit_code"] = exit_code
    if exit_code != 0:
        raise BenchError(
            f"{backend} server exited with status {exit_code}:\n{server.stderr_text()}"
        )
    result["started_at"] = started_at
    stats = server.io_statistics()
    if stats is not None and stats.get("enter_calls"):
        # Over the server's whole run: start-up and warmup are included,
        # a few dozen SQEs against thousands under load.
        result["sqes_submitted"] = stats["sqes_submitted"]
        result["enter_calls"] = stats["enter_calls"]
        result["sqes_per_enter"] = stats["sqes_submitted"] / stats["enter_calls"]
    if "measure_start" in cpu and "measure_end" in cpu:
        # CPU over the measurement window only, so interpreter start-up,
        # connection setup and warmup are not charged to the round trips.
        server_cpu, client_cpu, busy = (
            end - start for start, end in zip(cpu["measure_start"], cpu["measure_end"], strict=True)
        )
        result["server_cpu_s"] = server_cpu
        result["client_cpu_s"] = client_cpu
        rts = result["round_trips"]
        result["cpu_us_per_rt"] = server_cpu * 1e6 / rts if rts else None
        # CPU the rest of the machine used meanwhile (in cores, so 1.0 is a
        # whole core). On a 2-core box any other load competes directly with
        # the server or the client, so this flags runs that were disturbed;
        # a few hundredths is kernel noise and clock-tick rounding.
        seconds = result.get("seconds") or 0
        result["other_cpu_cores"] = (busy - server_cpu - client_cpu) / seconds if seconds else None
    return result


def _strace_pass(
    backend: str, workdir: Path, drive: Callable[[int], None] | None
) -> tuple[int, dict[str, int]]:
    """Run one server under strace, with ``drive(port)`` loading it (or idle if None).

    Returns the total syscall count and the count per syscall name.
    """
    out = workdir / f"strace-{backend}-{time.monotonic_ns()}.txt"
    server = EchoServer(backend, workdir, out)
    try:
        port = server.wait_ready()
        if drive is not None:
            drive(port)
    finally:
        exit_code = server.stop()
    if exit_code != 0:
        raise BenchError(
            f"{backend} server under strace exited with status {exit_code}:\n{server.stderr_text()}"
        )
    return parse_strace_summary(out.read_text())


def _strace_run(
    client: Path, backend: str, size: int, connections: int, duration: float, workdir: Path
) -> dict[str, Any]:
    # Server start-up (interpreter imports: thousands of syscalls) and
    # shutdown are not part of the echo workload, so an idle start/stop is
    # measured first and subtracted.
    baseline, baseline_by_name = _strace_pass(backend, workdir, None)
    client_result: dict[str, Any] = {}

    def drive(port: int) -> None:
        # No warmup: every round trip the server performed is counted, to
        # match syscalls counted over the server's whole life.
        client_result.update(run_client(client, port, connections, size, duration, STRACE_WARMUP))

    loaded, loaded_by_name = _strace_pass(backend, workdir, drive)
    rts = int(client_result["round_trips"])
    net = {
        name: calls - baseline_by_name.get(name, 0)
        for name, calls in loaded_by_name.items()
        if calls > baseline_by_name.get(name, 0)
    }
    top = sorted(net.items(), key=lambda kv: -kv[1])[:6]
    return {
        "strace_round_trips": rts,
        "strace_errors": client_result["errors"],
        "syscalls_total": loaded,
        "syscalls_baseline": baseline,
        "syscalls_per_rt": (loaded - baseline) / rts if rts else None,
        "syscalls_top_per_rt": {name: calls / rts for name, calls in top} if rts else {},
    }


def run_echo_bench(
    sizes: Sequence[int],
    connections: Sequence[int],
    duration: float,
    warmup: float,
    backends: Sequence[str],
    progress_callback: ProgressCallback | None = None,
    *,
    strace: bool = False,
    repeat: int = 3,
) -> list[dict[str, Any]]:
    """Run the echo benchmark matrix and return one result dict per (case, backend).

    Each case is measured ``repeat`` times per backend, with the backends
    interleaved (stock, uring, then uring, stock, ...) so that slow drift in
    machine speed hits both alike. Each dict has ``size``, ``connections``,
    ``backend``, ``ok``, ``error`` (a message, or None), ``repeat`` and
    ``runs``: every individual run, each with ``round``, ``position`` (its
    place in that round's order), ``ok``, ``error`` and, on success, the
    client's figures (``rps``, ``round_trips``, ``seconds``, ``p50_us``,
    ``p99_us``, ``errors``) plus ``started_at`` (Unix time), ``server_cpu_s``,
    ``client_cpu_s``, ``cpu_us_per_rt`` and ``other_cpu_cores`` (CPU used by
    everything else on the machine during the window, to spot disturbed runs);
    runs on trio_uring also have ``sqes_submitted``, ``enter_calls`` and
    ``sqes_per_enter``, the I/O manager's counters over the server's life.

    The dict itself summarises the successful runs: ``rps``, ``p50_us``,
    ``p99_us``, ``cpu_us_per_rt`` and ``sqes_per_enter`` are medians over
    runs, ``rps_min`` and ``rps_max`` the range, ``runs_ok`` how many runs
    succeeded. With ``strace=True`` it also has ``syscalls_per_rt`` from one
    separate, shorter run under strace. Non-stock backends get, when stock
    ran too, ``rps_ratio_vs_stock`` (the median over rounds of this
    backend's rps over stock's rps in the same round: the machine's drift
    hits both runs of a pair alike), ``cpu_ratio_vs_stock`` (the same, of
    stock's CPU per round trip over this backend's, so > 1 means cheaper
    than stock), ``rps_ratios_per_round`` (the paired ratios) and
    ``rps_ratio_of_medians``.

    A backend that cannot run here (uvloop not installed) is not run: its
    dict has ``ok=False``, ``skipped=True`` and ``error`` saying why, and
    no runs. Callers that count failures leave those out.

    A failed run does not stop the others (so one broken backend still lets
    the rest be measured), but it marks its (case, backend) dict ``ok=False``
    and that backend's remaining rounds for the case are skipped; callers
    must check ``ok`` on every result. ``progress_callback``, if given,
    receives a short human-readable line before each step and after each run.
    """
    if repeat < 1:
        raise ValueError(f"repeat must be >= 1, got {repeat}")
    cb = progress_callback
    client = build_client(cb)
    missing = {b: why for b in backends if (why := unavailable(b)) is not None}
    runnable = [b for b in backends if b not in missing]
    for backend, why in missing.items():
        if cb is not None:
            cb(f"backend={backend}: {why}")
    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="bench_echo.") as tmp:
        for size in sizes:
            for nconn in connections:
                measured = _run_case(
                    client, runnable, size, nconn, duration, warmup, repeat, strace, Path(tmp), cb
                )
                add_ratios(measured)
                by_backend = {entry["backend"]: entry for entry in measured}
                for backend in backends:
                    if backend in missing:
                        by_backend[backend] = _skipped(
                            size, nconn, backend, repeat, missing[backend]
                        )
                results.extend(by_backend[backend] for backend in backends)
    return results


def _skipped(size: int, nconn: int, backend: str, repeat: int, why: str) -> dict[str, Any]:
    """The result of a backend that cannot run here."""
    return {
        "size": size,
        "connections": nconn,
        "backend": backend,
        "ok": False,
        "skipped": True,
        "error": why,
        "repeat": repeat,
        "runs_ok": 0,
        "errors": 0,
        "runs": [],
    }


def _run_case(
    client: Path,
    backends: Sequence[str],
    size: int,
    nconn: int,
    duration: float,
    warmup: float,
    repeat: int,
    strace: bool,
    workdir: Path,
    progress: ProgressCallback | None,
) -> list[dict[str, Any]]:
    """Run every round of one (size, connections) case; return one summary per backend."""
    runs: dict[str, list[dict[str, Any]]] = {backend: [] for backend in backends}
    for rnd in range(repeat):
        # Reversing the order every other round (ABBA...) cancels a linear
        # drift in machine speed, and stops either backend always running
        # right after the other's server has warmed the caches or left
        # sockets in TIME_WAIT.
        order = list(backends) if rnd % 2 == 0 else list(reversed(backends))
        for position, backend in enumerate(order):
            previous = runs[backend]
            if previous and not previous[-1]["ok"]:
                # The summary is failed already; a backend that cannot start
                # (or whose client hangs until the timeout) would only burn
                # time in every further round.
                continue
            label = f"size={size} connections={nconn} backend={backend} round {rnd + 1}/{repeat}"
            run = _run_once(
                client, backend, size, nconn, duration, warmup, workdir, label, progress
            )
            run["round"] = rnd
            run["position"] = position
            previous.append(run)
    entries = []
    for backend in backends:
        entry = summarize(size, nconn, backend, runs[backend], repeat)
        if strace and entry["ok"]:
            _add_strace(entry, client, backend, size, nconn, duration, workdir, progress)
        entries.append(entry)
    return entries


def _run_once(
    client: Path,
    backend: str,
    size: int,
    nconn: int,
    duration: float,
    warmup: float,
    workdir: Path,
    label: str,
    progress: ProgressCallback | None,
) -> dict[str, Any]:
    """Do one throughput run, turning any failure into ``ok=False``."""
    run: dict[str, Any] = {"ok": True, "error": None}
    if progress is not None:
        progress(f"{label}: {warmup:g}s warmup + {duration:g}s")
    try:
        run.update(_throughput_run(client, backend, size, nconn, duration, warmup, workdir))
    except (BenchError, OSError) as exc:
        run["ok"] = False
        run["error"] = str(exc)
    else:
        problems = []
        if run.get("errors"):
            problems.append("client reported connection errors")
        if not run.get("round_trips"):
            problems.append("no round trips completed")
        if problems:
            run["ok"] = False
            detail = run.get("client_stderr")
            run["error"] = "; ".join(problems) + (f": {detail}" if detail else "")
    if progress is not None:
        # Per-run figures on stderr make drift or a single outlier visible
        # while the benchmark is still running.
        outcome = (
            f"{run['rps']:,.0f} rps, {fmt(run.get('cpu_us_per_rt'), '.1f')} cpu us/rt, "
            f"other load {fmt(run.get('other_cpu_cores'), '.2f')} cores"
            if run["ok"]
            else "FAILED"
        )
        progress(f"{label}: {outcome}")
    return run


def _add_strace(
    entry: dict[str, Any],
    client: Path,
    backend: str,
    size: int,
    nconn: int,
    duration: float,
    workdir: Path,
    progress: ProgressCallback | None,
) -> None:
    """Add the (single) strace pass's syscall counts to ``entry``, or mark it failed."""
    # Syscalls per round trip is a count, not a timing, so it hardly varies
    # between runs; one pass per backend is enough and keeps strace's heavy
    # slowdown out of the repeated throughput rounds.
    strace_duration = min(duration, STRACE_MAX_DURATION)
    if progress is not None:
        progress(
            f"size={size} connections={nconn} backend={backend}: strace pass ({strace_duration:g}s)"
        )
    try:
        entry.update(_strace_run(client, backend, size, nconn, strace_duration, workdir))
    except (BenchError, OSError) as exc:
        entry["ok"] = False
        entry["error"] = f"strace pass: {exc}"
        return
    if entry.get("strace_errors"):
        entry["ok"] = False
        entry["error"] = "strace pass: client reported connection errors"


def _int_list(text: str) -> list[int]:
    try:
        values = [int(x) for x in text.split(",") if x.strip()]
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers: {text}") from exc
    if not values or any(v <= 0 for v in values):
        raise argparse.ArgumentTypeError(f"expected positive integers: {text}")
    return values


def _backend_list(text: str) -> list[str]:
    values = [x.strip() for x in text.split(",") if x.strip()]
    bad = [v for v in values if v not in ECHO_BACKENDS]
    if not values or bad:
        raise argparse.ArgumentTypeError(
            f"backends must be among {','.join(ECHO_BACKENDS)}, got: {text}"
        )
    return values


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; return the process exit status."""
    parser = argparse.ArgumentParser(
        description="TCP echo benchmark: stock Trio vs trio_uring, and peers."
    )
    parser.add_argument("--sizes", type=_int_list, default=[64, 4096], help="payload bytes")
    parser.add_argument("--connections", type=_int_list, default=[50, 1000])
    parser.add_argument("--duration", type=float, default=5.0, help="measured seconds per run")
    parser.add_argument("--warmup", type=float, default=1.0, help="unmeasured seconds first")
    parser.add_argument(
        "--repeat", type=int, default=3, help="interleaved runs per backend and case"
    )
    parser.add_argument(
        "--backends",
        type=_backend_list,
        default=list(ECHO_BACKENDS),
        help=f"comma-separated, among {','.join(ECHO_BACKENDS)} (default: all)",
    )
    parser.add_argument(
        "--strace", action="store_true", help="also count server syscalls per round trip"
    )
    parser.add_argument("--json", action="store_true", help="print results as JSON")
    args = parser.parse_args(argv)
    if args.duration <= 0 or args.warmup < 0 or args.repeat < 1:
        parser.error("--duration must be > 0, --warmup >= 0 and --repeat >= 1")

    def progress(msg: str) -> None:
        print(f"# {msg}", file=sys.stderr, flush=True)

    try:
        results = run_echo_bench(
            args.sizes,
            args.connections,
            args.duration,
            args.warmup,
            args.backends,
            progress,
            strace=args.strace,
            repeat=args.repeat,
        )
    except BenchError as exc:
        print(f"bench_echo: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        print(format_table(results))
    failed = [r for r in results if not r["ok"] and not r.get("skipped")]
    for r in failed:
        print(
            f"bench_echo: FAILED {r['size']}B x {r['connections']}c {r['backend']}: {r['error']}",
            file=sys.stderr,
        )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
