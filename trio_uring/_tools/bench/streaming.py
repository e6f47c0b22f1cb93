"""Bulk streaming: large transfers through ``trio.SocketStream`` on 127.0.0.1.

A Trio program opens ``--connections`` TCP connections to its own
``serve_tcp`` server; each client pushes ``--mib`` MiB with ``send_all`` in
1 MiB chunks while the server side counts what ``receive_some`` returns.
Throughput is total bytes over wall time, from the first byte sent to the
last byte counted. Each measurement runs in a fresh subprocess (one per
backend per round, alternating); the summary reports medians and the ratio
uring/stock (higher is better). The process's CPU time (user + system,
client and server together) per GiB is reported beside it: on a shared
machine the host's other tenants move wall-clock rates far more than CPU
time per byte.

Usage::

    python benchmarks/bench_streaming.py [--connections 4] [--mib 256] [--repeat 3] [--json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from functools import partial
from typing import Any

import trio

from . import worker_cwd

BACKENDS = ("stock", "uring")
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
    if backend == "uring":
        import trio_uring

        result: dict[str, Any] = trio_uring.run(_measure, connections, mib, fallback="raise")
    else:
        result = trio.run(_measure, connections, mib)
    if result["io_backend"] != {"uring": "io_uring", "stock": "epoll"}[backend]:
        raise SystemExit(f"ran on {result['io_backend']}, not {backend}")
    result["backend"] = backend
    return result


def run_streaming_bench(
    connections: int = 4, mib: int = 256, repeat: int = 3
) -> list[dict[str, Any]]:
    """Both backends ``repeat`` times, alternating; one summary per backend."""
    runs: dict[str, list[dict[str, Any]]] = {b: [] for b in BACKENDS}
    for rnd in range(repeat):
        for backend in BACKENDS if rnd % 2 == 0 else BACKENDS[::-1]:
            cmd = [sys.executable, "-m", "trio_uring._tools.bench.streaming", "--worker", backend,
                   "--connections", str(connections), "--mib", str(mib)]  # fmt: skip
            out = subprocess.run(cmd, capture_output=True, text=True, check=False, cwd=worker_cwd())
            if out.returncode != 0:
                raise RuntimeError(f"{backend} worker failed:\n{out.stderr}")
            runs[backend].append(json.loads(out.stdout))
    summary = []
    for backend in BACKENDS:
        rates = [r["gib_per_s"] for r in runs[backend]]
        cpu = [r["cpu_s_per_gib"] for r in runs[backend]]
        summary.append({
            "backend": backend, "connections": connections, "mib": mib, "repeat": repeat,
            "gib_per_s": statistics.median(rates), "min": min(rates), "max": max(rates),
            "cpu_s_per_gib": statistics.median(cpu), "runs": runs[backend],
        })  # fmt: skip
    for entry in summary:
        entry["ratio"] = entry["gib_per_s"] / summary[0]["gib_per_s"]
        # > 1: trio_uring spends less CPU per byte.
        entry["cpu_ratio"] = summary[0]["cpu_s_per_gib"] / entry["cpu_s_per_gib"]
    return summary


def format_table(summary: list[dict[str, Any]]) -> str:
    """The results as a fixed-width table."""
    lines = [f"{'backend':8} {'GiB/s':>7} {'min-max':>13} {'x':>6} {'cpu s/GiB':>10} {'cpu x':>6}"]
    for e in summary:
        lines.append(
            f"{e['backend']:8} {e['gib_per_s']:>7.2f} {e['min']:>6.2f}-{e['max']:<6.2f} "
            f"{e['ratio']:>5.2f}x {e['cpu_s_per_gib']:>10.3f} {e['cpu_ratio']:>5.2f}x"
        )
    first = summary[0]
    lines.append(
        f"medians of {first['repeat']} runs; {first['connections']} connections x "
        f"{first['mib']} MiB; x = uring / stock (higher is better); cpu s/GiB: process "
        "CPU (user + system) per GiB; cpu x = stock / uring (higher is better)"
    )
    return "\n".join(lines)


def main() -> int:
    """Command-line entry: run the benchmark (or, with --worker, one measurement)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--mib", type=int, default=256, help="MiB sent per connection")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--worker", choices=BACKENDS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if min(args.connections, args.mib, args.repeat) < 1:
        parser.error("--connections, --mib and --repeat must be positive")
    if args.worker:
        print(json.dumps(worker(args.worker, args.connections, args.mib)))
        return 0
    summary = run_streaming_bench(args.connections, args.mib, args.repeat)
    print(json.dumps(summary, indent=2) if args.json else format_table(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
