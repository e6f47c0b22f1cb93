"""The echo benchmark's processes: the C load generator and the Python echo servers.

Builds (or finds) ``echo_client``, starts the echo server of one backend (a
Trio one from ``echo_server.py``, or a peer from ``peer_servers.py``) in
a subprocess (under ``strace -f -c`` when asked), drives it with the load
generator for one run and returns what the client printed, with both
processes' CPU time around the measurement window. ``echo.py`` decides what
to run and in which order; ``echo_report.py`` turns the runs into a table.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from . import worker_cwd
from .peer_servers import PEER_BACKENDS, missing_module, not_installed_message

CLIENT_SOURCE = Path(__file__).resolve().with_name("echo_client.c")
# Built at install time, beside this module (setup.py). A tree that was not
# installed (or whose source is newer) builds a private copy per process in a
# temporary directory, removed at exit: nothing is written anywhere else.
CLIENT_BINARY = CLIENT_SOURCE.with_name("echo_client")
SERVER_MODULE = "trio_uring._tools.bench.echo_server"
PEER_SERVER_MODULE = "trio_uring._tools.bench.peer_servers"

HOST = "127.0.0.1"
# stock: Trio on epoll. uring-poll: trio_uring's I/O manager with Trio's own
# sockets (readiness through POLL_ADD). uring: native socket ops as well.
# uring-sqpoll: the batched path with a kernel thread polling the SQ.
BACKENDS = ("stock", "uring-poll", "uring", "uring-batched", "uring-sqpoll")
# Trio's backends run on trio_uring's I/O manager except stock; those report
# SQEs per io_uring_enter.
URING_BACKENDS = ("uring-poll", "uring", "uring-batched", "uring-sqpoll")
# Everything the echo benchmark can run: Trio's backends, then the peers
# (asyncio's two ways of serving and uvloop; see peer_servers.py).
ECHO_BACKENDS = (*BACKENDS, *PEER_BACKENDS)


def unavailable(backend: str) -> str | None:
    """Why ``backend`` cannot run in this interpreter (e.g. uvloop not installed), or None."""
    if missing_module(backend) is not None:
        return not_installed_message(backend)
    return None


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


class EchoServer:
    """An echo server subprocess, optionally running under strace."""

    def __init__(self, backend: str, workdir: Path, strace_output: Path | None) -> None:
        self.backend = backend
        stamp = time.monotonic_ns()
        self.ready_file = workdir / f"ready-{backend}-{stamp}"
        module = PEER_SERVER_MODULE if backend in PEER_BACKENDS else SERVER_MODULE
        cmd = [
            sys.executable,
            "-m",
            module,
            "--backend",
            backend,
            "--port",
            "0",
            "--ready-file",
            str(self.ready_file),
        ]
        # Trio's servers write their I/O manager's counters at exit (on
        # trio_uring: SQEs submitted, io_uring_enter calls); the peers have none.
        self.stats_file: Path | None = None
        if backend in URING_BACKENDS:
            self.stats_file = workdir / f"stats-{backend}-{stamp}.json"
            cmd += ["--stats-file", str(self.stats_file)]
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

    def io_statistics(self) -> dict[str, Any] | None:
        """The counters the server wrote at exit (call after ``stop``), or None.

        None for a server that writes none (stock Trio, the peers), or whose
        file is missing or unreadable: the counters are an extra, not a
        reason to fail a run whose round trips were measured.
        """
        if self.stats_file is None:
            return None
        try:
            stats = json.loads(self.stats_file.read_text())
        except (OSError, ValueError):
            return None
        return stats if isinstance(stats, dict) else None

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


def run_client(
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
