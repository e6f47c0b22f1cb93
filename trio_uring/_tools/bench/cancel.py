"""Mass cancellation: N tasks blocked in a receive, all cancelled at once.

Two cases:

* ``native`` (the default): on stock Trio each task waits in
  ``trio.socket``'s ``recv`` on a UDP socket (the poll path:
  ``wait_readable`` on epoll); on trio_uring each waits in a native
  ``IORING_OP_RECV`` (``trio_uring.lowlevel.recv``), whose cancellation is
  an ``IORING_OP_ASYNC_CANCEL`` answered by the kernel.
* ``socketpair``: the same program on both, each task in ``recv`` on one
  end of a ``trio.socket.socketpair()`` (a task on each end). Those are Trio's own sockets (its
  ``socketpair`` does not go through the socket factory), so on trio_uring
  they wait on the manager's poll path (``POLL_ADD``), cancelled by
  ``ASYNC_CANCEL`` or turned into a NOP while still queued.
 One cancel scope around
all of them is cancelled, and the time until every task has finished is
divided by N. Each measurement runs in a fresh subprocess so that its peak
RSS (``ru_maxrss``) is its own; backends alternate, and the table reports
medians and the ratios uring/stock (lower is better for both).

Usage::

    python benchmarks/bench_cancel.py [--tasks 10000] [--repeat 5]
        [--case native|socketpair] [--json]
"""

from __future__ import annotations

import argparse
import json
import resource
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

import trio
import trio.testing

from . import worker_cwd

BACKENDS = ("stock", "uring")
CASES = ("native", "socketpair")


async def _measure(backend: str, tasks: int, case: str = "native") -> dict[str, Any]:
    if case == "socketpair":
        return await _measure_socketpair(backend, tasks)
    socks = []
    for _ in range(tasks):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(("127.0.0.1", 0))
        socks.append(s)
    if backend == "uring":
        from trio_uring import lowlevel

        async def receive(s: socket.socket) -> None:
            await lowlevel.recv(s.fileno(), 64)

    else:
        trio_socks = [trio.socket.from_stdlib_socket(s) for s in socks]
        by_fd = {s.fileno(): t for s, t in zip(socks, trio_socks, strict=True)}

        async def receive(s: socket.socket) -> None:
            await by_fd[s.fileno()].recv(64)

    elapsed = await _cancel_all([partial(receive, s) for s in socks])
    for s in socks:
        s.close()
    return _result(backend, tasks, elapsed)


async def _measure_socketpair(backend: str, tasks: int) -> dict[str, Any]:
    # A task on each end of each pair: ``tasks`` fds for ``tasks`` tasks.
    ends = [end for _ in range((tasks + 1) // 2) for end in trio.socket.socketpair()][:tasks]
    elapsed = await _cancel_all([partial(end.recv, 64) for end in ends])
    for end in ends:
        end.close()
    return _result(backend, tasks, elapsed)


async def _cancel_all(receives: list[Callable[[], Awaitable[object]]]) -> float:
    """Start every receive, wait until all are blocked, cancel them: seconds until all ended."""
    with trio.CancelScope() as scope:
        async with trio.open_nursery() as nursery:
            for receive in receives:
                nursery.start_soon(receive)
            await trio.testing.wait_all_tasks_blocked()
            started = time.perf_counter()
            scope.cancel()
    return time.perf_counter() - started


def _result(backend: str, tasks: int, elapsed: float) -> dict[str, Any]:
    stats = trio.lowlevel.current_statistics().io_statistics
    return {
        "backend": backend,
        "io_backend": stats.backend,
        "tasks": tasks,
        "seconds": elapsed,
        "us_per_cancel": elapsed / tasks * 1e6,
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def worker(backend: str, tasks: int, case: str = "native") -> dict[str, Any]:
    """One measurement in this process (called in a fresh subprocess)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = tasks + 256
    if soft < need:
        try:
            # Raising the hard limit too needs CAP_SYS_RESOURCE (root has it).
            resource.setrlimit(resource.RLIMIT_NOFILE, (need, max(hard, need)))
        except (ValueError, OSError):
            raise SystemExit(f"need {need} fds, RLIMIT_NOFILE hard limit is {hard}") from None
    if backend == "uring":
        import trio_uring

        result: dict[str, Any] = trio_uring.run(_measure, backend, tasks, case, fallback="raise")
    else:
        result = trio.run(_measure, backend, tasks, case)
    if result["io_backend"] != {"uring": "io_uring", "stock": "epoll"}[backend]:
        raise SystemExit(f"ran on {result['io_backend']}, not {backend}")
    return result


def run_cancel_bench(
    tasks: int = 10_000, repeat: int = 5, case: str = "native"
) -> list[dict[str, Any]]:
    """Measure both backends ``repeat`` times, alternating; return one summary per backend."""
    runs: dict[str, list[dict[str, Any]]] = {b: [] for b in BACKENDS}
    for rnd in range(repeat):
        order = BACKENDS if rnd % 2 == 0 else BACKENDS[::-1]
        for backend in order:
            out = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "trio_uring._tools.bench.cancel",
                    "--worker",
                    backend,
                    "--tasks",
                    str(tasks),
                    "--case",
                    case,
                ],
                capture_output=True,
                text=True,
                check=False,
                cwd=worker_cwd(),
            )
            if out.returncode != 0:
                raise RuntimeError(f"{backend} worker failed:\n{out.stderr}")
            runs[backend].append(json.loads(out.stdout))
    summary = []
    for backend in BACKENDS:
        us = [r["us_per_cancel"] for r in runs[backend]]
        rss = [r["peak_rss_mib"] for r in runs[backend]]
        summary.append(
            {
                "backend": backend,
                "case": case,
                "tasks": tasks,
                "repeat": repeat,
                "us_per_cancel": statistics.median(us),
                "us_min": min(us),
                "us_max": max(us),
                "peak_rss_mib": statistics.median(rss),
                "runs": runs[backend],
            }
        )
    stock = summary[0]
    for entry in summary:
        entry["time_ratio"] = entry["us_per_cancel"] / stock["us_per_cancel"]
        entry["rss_ratio"] = entry["peak_rss_mib"] / stock["peak_rss_mib"]
    return summary


def format_table(summary: list[dict[str, Any]]) -> str:
    """The results as a fixed-width table."""
    lines = [
        f"{'backend':8} {'us/cancel':>10} {'min-max':>14} {'peak RSS MiB':>13} "
        f"{'time x':>7} {'RSS x':>6}",
    ]
    for e in summary:
        lines.append(
            f"{e['backend']:8} {e['us_per_cancel']:>10.1f} "
            f"{e['us_min']:>6.1f}-{e['us_max']:<7.1f} {e['peak_rss_mib']:>13.1f} "
            f"{e['time_ratio']:>6.2f}x {e['rss_ratio']:>5.2f}x"
        )
    lines.append(
        f"medians of {summary[0]['repeat']} runs of {summary[0]['tasks']:,} tasks per backend "
        f"({summary[0]['case']} case); x = uring / stock (lower is better)"
    )
    return "\n".join(lines)


def main() -> int:
    """Command-line entry: run the benchmark (or, with --worker, one measurement)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--case", choices=CASES, default="native")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--worker", choices=BACKENDS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.tasks < 1 or args.repeat < 1:
        parser.error("--tasks and --repeat must be positive")
    if args.worker:
        print(json.dumps(worker(args.worker, args.tasks, args.case)))
        return 0
    summary = run_cancel_bench(args.tasks, args.repeat, args.case)
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        print(format_table(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
