"""Bulk streaming: large transfers through ``trio.SocketStream`` on 127.0.0.1.

A Trio program opens ``--connections`` TCP connections to its own
``serve_tcp`` server; each client pushes ``--mib`` MiB with ``send_all`` in
1 MiB chunks while the server side counts what ``receive_some`` returns.
Throughput is total bytes over wall time, from the first byte sent to the
last byte counted. Each measurement runs in a fresh subprocess; a round
runs every backend once, in an order that rotates from round to round, and
the ratio reported for a backend is the median over the rounds of its rate
over stock Trio's in the same round (paired, so a round that the host's
other tenants slowed down slows both sides of its pairs). The process's
user and system CPU time (client and server together) per GiB is reported
beside it: on a shared machine the host moves wall-clock rates far more
than CPU time per byte.

Backends: ``stock`` (Trio on epoll), ``uring`` (trio_uring's defaults),
``uring-batched`` (``data_path="batched"``) and ``uring-sqpoll`` (the
batched path on an SQPOLL ring, ``mode="sqpoll"``).

Usage::

    python benchmarks/bench_streaming.py [--connections 4] [--mib 256] [--repeat 3]
        [--backends stock,uring,uring-batched] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from functools import partial
from typing import Any

import trio

from . import worker_cwd

BACKENDS = ("stock", "uring", "uring-batched", "uring-sqpoll")
DEFAULT_BACKENDS = ("stock", "uring", "uring-batched")
CHUNK = 1 << 20
RECEIVE_SIZE = 256 * 1024


async def _measure(connections: int, mib: int) -> dict[str, Any]:
    total = connections * mib * CHUNK
    received = [0]
    done = trio.Event()

    async def sink(stream: trio.SocketStream) -> None:
        while data := await stream.receive_some(RECEIVE_SIZE):
            received[0] += len(data)
            if received[0] >= total:
                done.set()

    async def source(port: int, payload: bytes) -> None:
        async with await trio.open_tcp_stream("127.0.0.1", port) as stream:
            for _ in range(mib):
                await stream.send_all(payload)
            await done.wait()

    payload = b"\x5a" * CHUNK
    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(partial(trio.serve_tcp, sink, 0, host="127.0.0.1"))
        port = listeners[0].socket.getsockname()[1]
        started = time.perf_counter()
        cpu_started = time.process_time()
        async with trio.open_nursery() as clients:
            for _ in range(connections):
                clients.start_soon(source, port, payload)
        elapsed = time.perf_counter() - started
        cpu = time.process_time() - cpu_started
        nursery.cancel_scope.cancel()
    if received[0] != total:
        raise RuntimeError(f"received {received[0]} bytes, expected {total}")
    return {
        "io_backend": trio.lowlevel.current_statistics().io_statistics.backend,
        "bytes": total,
        "seconds": elapsed,
        "gib_per_s": total / elapsed / 2**30,
        "cpu_s_per_gib": cpu / (total / 2**30),
    }


def worker(backend: str, connections: int, mib: int) -> dict[str, Any]:
    """One measurement in this process (called in a fresh subprocess)."""
    started = os.times()
    if backend == "stock":
        result: dict[str, Any] = trio.run(_measure, connections, mib)
    else:
        import trio_uring

        result = trio_uring.run(
            _measure, connections, mib, fallback="raise",
            data_path="direct" if backend == "uring" else "batched",
            mode="sqpoll" if backend == "uring-sqpoll" else "interrupt",
        )  # fmt: skip
    ended = os.times()
    if result["io_backend"] != ("epoll" if backend == "stock" else "io_uring"):
        raise SystemExit(f"ran on {result['io_backend']}, not {backend}")
    gib = result["bytes"] / 2**30
    # The whole run's, set-up included (a few ms): os.times has no finer clock.
    result["user_s_per_gib"] = (ended.user - started.user) / gib
    result["system_s_per_gib"] = (ended.system - started.system) / gib
    result["backend"] = backend
    return result


def run_streaming_bench(
    connections: int = 4,
    mib: int = 256,
    repeat: int = 3,
    backends: tuple[str, ...] = DEFAULT_BACKENDS,
) -> list[dict[str, Any]]:
    """``repeat`` rounds of every backend (stock first in the summary); one summary per backend."""
    if "stock" not in backends:
        raise ValueError("the ratios are against stock Trio: backends must include 'stock'")
    bad = [b for b in backends if b not in BACKENDS]
    if bad:
        raise ValueError(f"unknown backend(s) {bad}; choose among {BACKENDS}")
    order = ("stock", *[b for b in backends if b != "stock"])
    runs: dict[str, list[dict[str, Any]]] = {b: [] for b in order}
    for rnd in range(repeat):
        shift = rnd % len(order)
        for backend in order[shift:] + order[:shift]:
            cmd = [sys.executable, "-m", "trio_uring._tools.bench.streaming", "--worker", backend,
                   "--connections", str(connections), "--mib", str(mib)]  # fmt: skip
            out = subprocess.run(cmd, capture_output=True, text=True, check=False, cwd=worker_cwd())
            if out.returncode != 0:
                raise RuntimeError(f"{backend} worker failed:\n{out.stderr}")
            runs[backend].append(json.loads(out.stdout))
    summary = []
    for backend in order:
        mine = runs[backend]
        paired = list(zip(mine, runs["stock"], strict=True))
        rates = [r["gib_per_s"] for r in mine]
        summary.append({
            "backend": backend, "connections": connections, "mib": mib, "repeat": repeat,
            "gib_per_s": statistics.median(rates), "min": min(rates), "max": max(rates),
            "cpu_s_per_gib": statistics.median(r["cpu_s_per_gib"] for r in mine),
            "user_s_per_gib": statistics.median(r["user_s_per_gib"] for r in mine),
            "system_s_per_gib": statistics.median(r["system_s_per_gib"] for r in mine),
            # Paired with stock's run of the same round; > 1 is better for both.
            "ratio": statistics.median(r["gib_per_s"] / s["gib_per_s"] for r, s in paired),
            "cpu_ratio": statistics.median(
                s["cpu_s_per_gib"] / r["cpu_s_per_gib"] for r, s in paired
            ),
            "runs": mine,
        })  # fmt: skip
    return summary


def format_table(summary: list[dict[str, Any]]) -> str:
    """The results as a fixed-width table."""
    lines = [
        f"{'backend':13} {'GiB/s':>6} {'min-max':>11} {'x':>6} {'cpu s/GiB':>9} "
        f"{'user':>6} {'system':>6} {'cpu x':>6}"
    ]
    for e in summary:
        lines.append(
            f"{e['backend']:13} {e['gib_per_s']:>6.2f} {e['min']:>5.2f}-{e['max']:<5.2f} "
            f"{e['ratio']:>5.2f}x {e['cpu_s_per_gib']:>9.3f} {e['user_s_per_gib']:>6.3f} "
            f"{e['system_s_per_gib']:>6.3f} {e['cpu_ratio']:>5.2f}x"
        )
    first = summary[0]
    lines.append(
        f"{first['repeat']} rounds; {first['connections']} connections x {first['mib']} MiB; "
        "GiB/s and CPU: medians; x: median of the paired per-round ratios to stock "
        "(higher is better); cpu x: the same for CPU per GiB, stock / backend"
    )
    return "\n".join(lines)


def main() -> int:
    """Command-line entry: run the benchmark (or, with --worker, one measurement)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--mib", type=int, default=256, help="MiB sent per connection")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--backends", default=",".join(DEFAULT_BACKENDS),
        help=f"comma-separated, among {','.join(BACKENDS)}; stock is always run",
    )  # fmt: skip
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--worker", choices=BACKENDS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if min(args.connections, args.mib, args.repeat) < 1:
        parser.error("--connections, --mib and --repeat must be positive")
    if args.worker:
        print(json.dumps(worker(args.worker, args.connections, args.mib)))
        return 0
    chosen = tuple(b for b in args.backends.split(",") if b)
    bad = [b for b in chosen if b not in BACKENDS]
    if bad:
        parser.error(f"unknown backend(s) {','.join(bad)}; choose among {','.join(BACKENDS)}")
    backends = ("stock", *[b for b in chosen if b != "stock"])
    summary = run_streaming_bench(args.connections, args.mib, args.repeat, backends)
    print(json.dumps(summary, indent=2) if args.json else format_table(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
