"""TCP echo benchmark: stock Trio vs trio_uring, in one run.

For every (payload size, connection count) case and every backend, this
starts ``echo_server.py`` in a subprocess, drives it with the C load
generator ``echo_client.c`` (built with the package), and
reports round trips per second, latency percentiles, and the server's CPU
time per round trip. With ``--strace`` it additionally runs each server
under ``strace -f -c`` in a separate, shorter pass to count system calls
per round trip.

Single runs on a small machine are noisy (identical runs can differ by more
than 1.5x in round trips per second), so each case is run ``--repeat``
times per backend, interleaving the backends and alternating their order
every round, and the table reports medians, the rps range and the ratios of
the medians. ``--json`` also includes every individual run. On a machine
with two or more CPUs the server and the load generator are each bound to
one CPU (``TRIO_URING_BENCH_PIN=0`` turns that off).

Usage::

    python benchmarks/bench_echo.py [--sizes 64,4096] [--connections 50,1000]
        [--duration 5] [--warmup 1] [--repeat 3] [--backends stock,uring-poll,uring]
        [--strace] [--json]

The process exits non-zero if any run failed: a child exited badly, the
client reported connection errors, or echoed data failed verification.
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from . import worker_cwd

CLIENT_SOURCE = Path(__file__).resolve().with_name("echo_client.c")
# Built at install time, beside this module (setup.py). A tree that was not
# installed (or whose source is newer) builds a private copy per process in a
# temporary directory, removed at exit: nothing is written anywhere else.
CLIENT_BINARY = CLIENT_SOURCE.with_name("echo_client")
SERVER_MODULE = "trio_uring._tools.bench.echo_server"

HOST = "127.0.0.1"
# stock: Trio on epoll. uring-poll: trio_uring's I/O manager with Trio's own
# sockets (readiness through POLL_ADD). uring: native socket ops as well.
BACKENDS = ("stock", "uring-poll", "uring", "uring-batched")


def _cpu_plan() -> tuple[int | None, int | None]:
    """CPUs for the server and the load generator, or (None, None) to let them float.

    On a small machine the scheduler moving the server and the client onto
    one core (and off again) is most of the run-to-run noise; one core each
    gives both backends the same conditions. Set ``TRIO_URING_BENCH_PIN=0``
    to let them float.
    """
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2 or os.environ.get("TRIO_URING_BENCH_PIN", "1") == "0":
        return None, None
    return cpus[0], cpus[1]


def _pinned(cpu: int | None) -> Callable[[], None] | None:
    """A ``preexec_fn`` that binds the child to ``cpu`` (None: no binding)."""
    if cpu is None:
        return None
    return lambda: os.sched_setaffinity(0, {cpu})


SERVER_READY_TIMEOUT = 30.0
SERVER_STOP_TIMEOUT = 10.0
# Slack on top of warmup + duration for connecting and for the client's own
# shutdown, before we declare the client hung.
CLIENT_TIMEOUT_SLACK = 60.0
# The strace pass only needs enough round trips to make the per-round-trip
# syscall count stable; strace slows the server down a lot, so keep it short.
STRACE_MAX_DURATION = 2.0
STRACE_WARMUP = 0.0
# Other processes' CPU use during a measurement window, in cores, above
# which the table flags the run. Accounting skew alone gives about -0.1 to
# +0.05; a competing busy process on this 2-core machine shows as 0.2-1.0.
OTHER_LOAD_WARN_CORES = 0.2

ProgressCallback = Callable[[str], None]


class BenchError(Exception):
    """A benchmark run failed in a way that makes its numbers meaningless."""


_private_client: Path | None = None


def build_client(progress: ProgressCallback | None = None) -> Path:
    """The C load generator: the one installed with the package, else a private build."""
    global _private_client
    if CLIENT_BINARY.exists() and CLIENT_BINARY.stat().st_mtime >= CLIENT_SOURCE.stat().st_mtime:
        return CLIENT_BINARY
    if _private_client is not None and _private_client.exists():
        return _private_client
    gcc = shutil.which("gcc") or shutil.which("cc")
    if gcc is None:
        raise BenchError("no C compiler found (gcc or cc); it is needed to build echo_client.c")
    workdir = Path(tempfile.mkdtemp(prefix="trio_uring_bench_"))
    atexit.register(shutil.rmtree, workdir, ignore_errors=True)
    binary = workdir / "echo_client"
    if progress is not None:
        progress(f"compiling {CLIENT_SOURCE.name} into {workdir}")
    cmd = [gcc, "-O2", "-Wall", "-Wextra", "-o", str(binary), str(CLIENT_SOURCE)]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise BenchError(f"compiling echo_client failed:\n{proc.stderr}")
    _private_client = binary
    return binary


def process_cpu_seconds(pid: int) -> float:
    """Return user+system CPU seconds consumed so far by process ``pid`` (all threads)."""
    with open(f"/proc/{pid}/stat") as f:
        stat = f.read()
    # The command name (field 2) may contain spaces and parentheses, so
    # split after its closing parenthesis; utime and stime are fields 14
    # and 15, i.e. indexes 11 and 12 of what follows.
    fields = stat[stat.rindex(")") + 2 :].split()
    ticks = int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def machine_busy_seconds() -> float:
    """Return the non-idle CPU seconds of the whole machine since boot, summed over CPUs."""
    with open("/proc/stat") as f:
        fields = f.readline().split()
    # cpu user nice system idle iowait irq softirq steal ...; guest time is
    # already included in user, so only idle and iowait are left out.
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(v) for v in fields[1:9])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def _child_pids(pid: int) -> list[int]:
    children: list[int] = []
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except FileNotFoundError:
        return children
    for tid in tids:
        try:
            with open(f"/proc/{pid}/task/{tid}/children") as f:
                children.extend(int(c) for c in f.read().split())
        except FileNotFoundError:
            continue
    return children


def parse_strace_summary(text: str) -> tuple[int, dict[str, int]]:
    """Parse ``strace -c`` output; return (total calls, calls per syscall).

    The table's columns are right-aligned under their headers and the
    ``errors`` column is blank for syscalls that never failed, so fields are
    located by the column position of the ``calls`` header rather than by
    splitting on whitespace.
    """
    lines = text.splitlines()
    header = next((ln for ln in lines if re.search(r"\bcalls\b", ln) and "syscall" in ln), None)
    if header is None:
        raise BenchError("no strace summary table found")
    calls_end = re.search(r"\bcalls\b", header)
    assert calls_end is not None
    end = calls_end.end()
    per_syscall: dict[str, int] = {}
    total: int | None = None
    for ln in lines[lines.index(header) + 1 :]:
        parts = ln.split()
        if not parts or set(ln.strip()) <= {"-", " "}:
            continue
        # The calls value is the run of digits ending exactly at the end of
        # the header's "calls" column.
        m = re.search(r"(\d+)$", ln[:end])
        if m is None:
            continue
        name = parts[-1]
        if name == "total":
            total = int(m.group(1))
        else:
            per_syscall[name] = int(m.group(1))
    if total is None:
        raise BenchError("strace summary has no 'total' line")
    return total, per_syscall


class _Server:
    """An echo server subprocess, optionally running under strace."""

    def __init__(self, backend: str, workdir: Path, strace_output: Path | None) -> None:
        self.backend = backend
        self.ready_file = workdir / f"ready-{backend}-{time.monotonic_ns()}"
        cmd = [
            sys.executable,
            "-m",
            SERVER_MODULE,
            "--backend",
            backend,
            "--port",
            "0",
            "--ready-file",
            str(self.ready_file),
        ]
        self.strace = strace_output is not None
        if strace_output is not None:
            strace = shutil.which("strace")
            if strace is None:
                raise BenchError("strace not found")
            cmd = [strace, "-f", "-c", "-o", str(strace_output), *cmd]
        self.stderr_path = workdir / f"server-{backend}-{time.monotonic_ns()}.err"
        self._stderr = open(self.stderr_path, "w+b")  # noqa: SIM115 - closed in stop()
        # A new session keeps a Ctrl-C aimed at the driver from hitting the
        # server too; the driver stops the server itself.
        self.proc = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=self._stderr,
            start_new_session=True,
            preexec_fn=_pinned(_cpu_plan()[0]),
            cwd=worker_cwd(),
        )
        self.pid = self.proc.pid  # the Python server's pid, once known

    def wait_ready(self) -> int:
        """Block until the server reports its port; return the port."""
        deadline = time.monotonic() + SERVER_READY_TIMEOUT
        while True:
            if self.ready_file.exists():
                port = int(self.ready_file.read_text().strip())
                break
            if self.proc.poll() is not None:
                raise BenchError(
                    f"{self.backend} server exited with status {self.proc.returncode} "
                    f"before becoming ready:\n{self.stderr_text()}"
                )
            if time.monotonic() > deadline:
                raise BenchError(f"{self.backend} server did not become ready")
            time.sleep(0.02)
        if self.strace:
            # Signals must go to the traced Python process, not to strace:
            # strace would detach and the summary would miss the shutdown.
            children = _child_pids(self.proc.pid)
            if len(children) != 1:
                raise BenchError(f"expected one child of strace, found {children}")
            self.pid = children[0]
        return port

    def cpu_seconds(self) -> float:
        """Return the server's CPU time so far."""
        return process_cpu_seconds(self.pid)

    def stderr_text(self) -> str:
        """Return whatever the server wrote to stderr so far."""
        if not self._stderr.closed:
            self._stderr.flush()
        return self.stderr_path.read_text(errors="replace")

    def stop(self) -> int:
        """Stop the server (SIGINT, then SIGKILL after a timeout); return its exit status."""
        killed = False
        if self.proc.poll() is None:
            # It may have exited on its own between poll() and kill().
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGINT)
            try:
                self.proc.wait(SERVER_STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                killed = True
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self._stderr.close()
        if killed:
            raise BenchError(f"{self.backend} server ignored SIGINT and had to be killed")
        return self.proc.returncode


def _run_client(
    client: Path,
    port: int,
    connections: int,
    size: int,
    duration: float,
    warmup: float,
    on_phase: Callable[[str, int], None] | None = None,
) -> dict[str, Any]:
    cmd = [
        str(client),
        "--host", HOST,
        "--port", str(port),
        "--connections", str(connections),
        "--size", str(size),
        "--duration", str(duration),
        "--warmup", str(warmup),
        "--phase-marks",
    ]  # fmt: skip
    proc = subprocess.Popen(
        cmd,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=_pinned(_cpu_plan()[1]),
    )
    # A hung client would block the readline loop below forever, so a timer
    # kills it; the resulting failure is then reported like any other.
    timer = threading.Timer(warmup + duration + CLIENT_TIMEOUT_SLACK, proc.kill)
    timer.start()
    other_stderr: list[str] = []
    try:
        assert proc.stderr is not None
        assert proc.stdout is not None
        # Phase marks arrive on stderr at the edges of the measurement
        # window; the callback samples server CPU at exactly those moments.
        for line in proc.stderr:
            if line.startswith("PHASE "):
                if on_phase is not None:
                    on_phase(line.split()[1], proc.pid)
            else:
                other_stderr.append(line)
        stdout = proc.stdout.read()
        rc = proc.wait()
    finally:
        timer.cancel()
        # If the phase callback raised (e.g. the server vanished), do not
        # leave the client running behind us.
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for pipe in (proc.stdout, proc.stderr):
            if pipe is not None:
                pipe.close()
    diag = "".join(other_stderr).strip()
    if rc not in (0, 1):
        # 1 still prints results (with errors > 0); anything else does not.
        raise BenchError(f"echo_client exited with status {rc}: {diag}")
    try:
        result: dict[str, Any] = json.loads(stdout.strip().splitlines()[-1])
    except (ValueError, IndexError) as exc:
        raise BenchError(f"echo_client printed no JSON result: {diag}") from exc
    result["client_exit_code"] = rc
    result["client_stderr"] = diag
    return result


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
    server = _Server(backend, workdir, None)
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

        result = _run_client(client, port, connections, size, duration, warmup, on_phase)
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
    server = _Server(backend, workdir, out)
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
        client_result.update(_run_client(client, port, connections, size, duration, STRACE_WARMUP))

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
    everything else on the machine during the window, to spot disturbed runs).

    The dict itself summarises the successful runs: ``rps``, ``p50_us``,
    ``p99_us`` and ``cpu_us_per_rt`` are medians over runs, ``rps_min`` and
    ``rps_max`` the range, ``runs_ok`` how many runs succeeded. With
    ``strace=True`` it also has ``syscalls_per_rt`` from one separate,
    shorter run under strace. Non-stock backends get ``rps_ratio_vs_stock``
    (median rps over stock's median rps) and ``cpu_ratio_vs_stock`` (stock's
    median CPU per round trip over this backend's, so > 1 means cheaper than
    stock) when stock ran too.

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
    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="bench_echo.") as tmp:
        for size in sizes:
            for nconn in connections:
                case = _run_case(
                    client, backends, size, nconn, duration, warmup, repeat, strace, Path(tmp), cb
                )
                _add_ratios(case)
                results.extend(case)
    return results


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
        entry = _summarize(size, nconn, backend, runs[backend], repeat)
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
            f"{run['rps']:,.0f} rps, {_fmt(run.get('cpu_us_per_rt'), '.1f')} cpu us/rt, "
            f"other load {_fmt(run.get('other_cpu_cores'), '.2f')} cores"
            if run["ok"]
            else "FAILED"
        )
        progress(f"{label}: {outcome}")
    return run


def _median(values: Sequence[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def _summarize(
    size: int, nconn: int, backend: str, runs: list[dict[str, Any]], repeat: int
) -> dict[str, Any]:
    """Reduce one backend's runs of a case to medians and an rps range."""
    good = [r for r in runs if r["ok"]]
    entry: dict[str, Any] = {
        "size": size,
        "connections": nconn,
        "backend": backend,
        "ok": len(good) == repeat,
        "error": None,
        "repeat": repeat,
        "runs_ok": len(good),
    }
    if not entry["ok"]:
        failed = next((r for r in runs if not r["ok"]), None)
        if failed is None:
            entry["error"] = f"only {len(runs)} of {repeat} runs were made"
        else:
            entry["error"] = (
                f"run {failed['round'] + 1}/{repeat} failed "
                f"({len(good)}/{repeat} ok): {failed['error']}"
            )
    if good:
        rps = [float(r["rps"]) for r in good]
        entry["rps"] = statistics.median(rps)
        entry["rps_min"] = min(rps)
        entry["rps_max"] = max(rps)
        entry["p50_us"] = _median([r.get("p50_us") for r in good])
        entry["p99_us"] = _median([r.get("p99_us") for r in good])
        entry["cpu_us_per_rt"] = _median([r.get("cpu_us_per_rt") for r in good])
        entry["round_trips_total"] = sum(int(r["round_trips"]) for r in good)
    entry["errors"] = sum(int(r.get("errors") or 0) for r in runs)
    entry["runs"] = runs
    return entry


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


def _add_ratios(case: list[dict[str, Any]]) -> None:
    """Set rps and CPU-per-round-trip ratios against stock on the non-stock entries."""
    stock = next((r for r in case if r["backend"] == "stock"), None)
    if stock is None:
        return
    for entry in case:
        if entry is stock:
            continue
        if stock.get("rps") and entry.get("rps"):
            entry["rps_ratio_vs_stock"] = entry["rps"] / stock["rps"]
        # Inverted relative to rps (stock over this backend) so that > 1
        # means "better than stock" in both ratio columns.
        if stock.get("cpu_us_per_rt") and entry.get("cpu_us_per_rt"):
            entry["cpu_ratio_vs_stock"] = stock["cpu_us_per_rt"] / entry["cpu_us_per_rt"]


def _fmt(value: Any, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def _fmt_ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}x"


def format_table(results: Sequence[dict[str, Any]]) -> str:
    """Render results as a fixed-width text table of per-backend medians."""
    header = (
        f"{'case':<16} {'backend':<7} {'rps':>9} {'rps min-max':>17} {'p50 us':>7} "
        f"{'p99 us':>7} {'cpu us/rt':>9} {'sys/rt':>6} {'rps x':>6} {'cpu x':>6}"
    )
    lines = [header, "-" * len(header)]
    for r in results:
        case = f"{r['size']}B x {r['connections']}c"
        if not r["ok"]:
            # First line says what failed; the last usually names the
            # exception (e.g. from a server traceback). Full text goes to stderr.
            msg = [ln.strip() for ln in str(r["error"] or "failed").splitlines() if ln.strip()]
            summary = msg[0] if len(msg) == 1 else f"{msg[0]} {msg[-1]}"
            lines.append(f"{case:<16} {r['backend']:<7} FAILED: {summary}")
            continue
        span = f"{_fmt(r.get('rps_min'), ',.0f')}-{_fmt(r.get('rps_max'), ',.0f')}"
        lines.append(
            f"{case:<16} {r['backend']:<7} {_fmt(r.get('rps'), ',.0f'):>9} {span:>17} "
            f"{_fmt(r.get('p50_us'), '.0f'):>7} {_fmt(r.get('p99_us'), '.0f'):>7} "
            f"{_fmt(r.get('cpu_us_per_rt'), '.1f'):>9} {_fmt(r.get('syscalls_per_rt'), '.2f'):>6} "
            f"{_fmt_ratio(r.get('rps_ratio_vs_stock')):>6} "
            f"{_fmt_ratio(r.get('cpu_ratio_vs_stock')):>6}"
        )
    repeats = sorted({r["repeat"] for r in results})
    lines.append("")
    lines.append(f"medians of {'/'.join(map(str, repeats))} interleaved runs per backend")
    lines.append("rps x = rps / stock rps; cpu x = stock cpu us/rt / cpu us/rt (> 1: cheaper)")
    disturbed = [
        (r, run)
        for r in results
        for run in r["runs"]
        if run["ok"] and (run.get("other_cpu_cores") or 0) > OTHER_LOAD_WARN_CORES
    ]
    if disturbed:
        lines.append("")
        lines.append("runs disturbed by other load on the machine (still included above):")
        for r, run in disturbed:
            lines.append(
                f"  {r['size']}B x {r['connections']}c {r['backend']} round {run['round'] + 1}: "
                f"{run['rps']:,.0f} rps with {run['other_cpu_cores']:.2f} cores used by others"
            )
    tops = [r for r in results if r["ok"] and r.get("syscalls_top_per_rt")]
    if tops:
        lines.append("")
        lines.append("top server syscalls per round trip (one strace pass, start-up subtracted):")
        for r in tops:
            detail = ", ".join(f"{k} {v:.2f}" for k, v in r["syscalls_top_per_rt"].items())
            lines.append(f"  {r['size']}B x {r['connections']}c {r['backend']}: {detail}")
    return "\n".join(lines)


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
    bad = [v for v in values if v not in BACKENDS]
    if not values or bad:
        raise argparse.ArgumentTypeError(
            f"backends must be among {','.join(BACKENDS)}, got: {text}"
        )
    return values


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; return the process exit status."""
    parser = argparse.ArgumentParser(description="TCP echo benchmark: stock Trio vs trio_uring.")
    parser.add_argument("--sizes", type=_int_list, default=[64, 4096], help="payload bytes")
    parser.add_argument("--connections", type=_int_list, default=[50, 1000])
    parser.add_argument("--duration", type=float, default=5.0, help="measured seconds per run")
    parser.add_argument("--warmup", type=float, default=1.0, help="unmeasured seconds first")
    parser.add_argument(
        "--repeat", type=int, default=3, help="interleaved runs per backend and case"
    )
    parser.add_argument("--backends", type=_backend_list, default=list(BACKENDS))
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
    failed = [r for r in results if not r["ok"]]
    for r in failed:
        print(
            f"bench_echo: FAILED {r['size']}B x {r['connections']}c {r['backend']}: {r['error']}",
            file=sys.stderr,
        )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
