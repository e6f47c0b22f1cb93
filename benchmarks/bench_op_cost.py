"""What one native op costs in CPU, next to the scheduler's own floor.

Every ``trio_uring.lowlevel`` call and every socket call that has to wait
takes the op core's path: ``perform`` (checkpoint, deadline check, op
record, SQE), a park, the completion in ``process_events``, the wake-up.
This measures that path's CPU per op with 64 tasks looping at once (so a
scheduler tick and its ``io_uring_enter`` are shared by many ops, as in a
busy server), against ``trio.lowlevel.cancel_shielded_checkpoint()``: one
trip through Trio's scheduler and nothing else, the least any op can cost.

* ``checkpoint``: the floor (Trio's scheduler alone);
* ``nop``: ``lowlevel.nop()``, the op core with nothing for the kernel to do;
* ``readinto 64 B``: ``lowlevel.readinto`` of 64 bytes at offset 0 of a
  page-cached file (argument checks, buffer pinning, a real read).

Reported: microseconds of process CPU per call (best of ``--repeat`` runs,
the least disturbed by other load) and the op's cost above the floor.

Usage: python benchmarks/bench_op_cost.py [--tasks 64] [--calls 2000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections.abc import Awaitable, Callable

import trio

import trio_uring
from trio_uring import lowlevel


async def per_call_us(call: Callable[[], Awaitable[object]], tasks: int, calls: int) -> float:
    """CPU microseconds per ``call()``, with ``tasks`` tasks each calling it ``calls`` times."""

    async def worker() -> None:
        for _ in range(calls):
            await call()

    started = time.process_time()
    async with trio.open_nursery() as nursery:
        for _ in range(tasks):
            nursery.start_soon(worker)
    return (time.process_time() - started) / (tasks * calls) * 1e6


async def measure(fd: int, tasks: int, calls: int) -> dict[str, float]:
    """One run of each case."""
    buf = bytearray(64)
    cases: dict[str, Callable[[], Awaitable[object]]] = {
        "checkpoint": trio.lowlevel.cancel_shielded_checkpoint,
        "nop": lowlevel.nop,
        "readinto 64 B": lambda: lowlevel.readinto(fd, buf, 0),
    }
    return {name: await per_call_us(call, tasks, calls) for name, call in cases.items()}


def main() -> int:
    """Run, print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--tasks", type=int, default=64)
    parser.add_argument("--calls", type=int, default=2000, help="calls per task per run")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryFile() as f:
        f.write(os.urandom(4096))
        f.flush()
        runs = [
            trio_uring.run(measure, f.fileno(), args.tasks, args.calls, fallback="raise")
            for _ in range(args.repeat)
        ]
    best = {name: min(run[name] for run in runs) for name in runs[0]}
    floor = best["checkpoint"]
    print(f"{'call':16} {'us CPU/call':>12} {'above floor':>12}")
    for name, us in best.items():
        print(f"{name:16} {us:12.2f} {us - floor:12.2f}")
    print(f"best of {args.repeat} runs; {args.tasks} tasks x {args.calls} calls each")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
