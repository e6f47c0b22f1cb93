"""Direct non-blocking system call vs io_uring op, for the cases NativeSocket chooses between.

Three cases on an AF_UNIX stream socketpair, each measured as calls per
second in one trio_uring run, side by side, with the ratio:

* ``recv, data already there``: the direct ``recv(2)`` NativeSocket tries
  first, vs always submitting an ``IORING_OP_RECV``.
* ``send, fits the buffer``: the direct ``send(2)`` vs always an
  ``IORING_OP_SEND``.
* ``recv, has to wait`` (ping-pong between two tasks): NativeSocket (a
  failed direct try, then an op) vs the op alone vs Trio's readiness path
  (``native_sockets=False``: a ``POLL_ADD``, then ``recv(2)``).

Usage: python benchmarks/bench_socket_ops.py [--seconds 1] [--repeat 3]
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import time
from collections.abc import Awaitable, Callable

import trio

import trio_uring
from trio_uring import socket as usocket
from trio_uring._core.manager import UringIOManager, running_manager
from trio_uring._sockets import ops

Call = Callable[[], Awaitable[object]]


def mgr() -> UringIOManager:
    m = running_manager()
    assert m is not None
    return m


async def rate(call: Call, seconds: float, prepare: Callable[[], object] | None = None) -> float:
    count = 0
    end = time.perf_counter() + seconds
    started = time.perf_counter()
    while time.perf_counter() < end:
        for _ in range(100):
            if prepare is not None:
                prepare()
            await call()
        count += 100
    return count / (time.perf_counter() - started)


async def ready_cases(seconds: float) -> dict[str, float]:
    a, b = usocket.socketpair()
    out: dict[str, float] = {}
    m = mgr()
    fill = lambda: b._sock.send(b"x" * 64)  # noqa: E731
    out["recv ready: direct"] = await rate(lambda: a.recv(64), seconds, fill)
    out["recv ready: op"] = await rate(lambda: ops.recv(m, a.fileno(), 64, 0), seconds, fill)

    def drain() -> None:
        # Keep the send buffer empty, so every send fits.
        with contextlib.suppress(BlockingIOError):
            b._sock.recv(65536)

    out["send fits: direct"] = await rate(lambda: a.send(b"y" * 64), seconds, drain)
    out["send fits: op"] = await rate(lambda: ops.send(m, a.fileno(), b"y" * 64, 0), seconds, drain)
    a.close()
    b.close()
    return out


async def ping_pong(seconds: float, mode: str) -> float:
    a, b = trio.socket.socketpair() if mode == "poll" else usocket.socketpair()
    m = running_manager()
    count = 0
    done = False

    async def echo() -> None:
        while not done:
            data = await b.recv(64)
            if not data:
                return
            await b.send(data)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(echo)
        end = time.perf_counter() + seconds
        started = time.perf_counter()
        while time.perf_counter() < end:
            await a.send(b"p")
            if mode == "op":
                assert m is not None
                await ops.recv(m, a.fileno(), 64, 0)
            else:
                await a.recv(64)
            count += 1
        elapsed = time.perf_counter() - started
        done = True
        a.close()
    b.close()
    return count / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=1.0)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    samples: dict[str, list[float]] = {}
    for _ in range(args.repeat):
        for name, value in trio_uring.run(ready_cases, args.seconds).items():
            samples.setdefault(name, []).append(value)
        for mode in ("native", "op"):
            value = trio_uring.run(ping_pong, args.seconds, mode)
            samples.setdefault(f"recv waits: {mode}", []).append(value)
        value = trio_uring.run(ping_pong, args.seconds, "poll", native_sockets=False)
        samples.setdefault("recv waits: poll", []).append(value)
    med = {name: statistics.median(v) for name, v in samples.items()}
    print(f"{'case':<26}{'calls/s (median)':>18}")
    for name, value in med.items():
        print(f"{name:<26}{value:>18,.0f}")
    print()
    print(f"recv ready : direct / op = {med['recv ready: direct'] / med['recv ready: op']:.2f}")
    print(f"send fits  : direct / op = {med['send fits: direct'] / med['send fits: op']:.2f}")
    print(f"recv waits : native / op = {med['recv waits: native'] / med['recv waits: op']:.2f}")
    print(f"recv waits : native / poll = {med['recv waits: native'] / med['recv waits: poll']:.2f}")


if __name__ == "__main__":
    main()
