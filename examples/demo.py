"""The same Trio program on stock Trio and on trio_uring, side by side.

The program is an ordinary Trio one: a nursery-based TCP echo server on
127.0.0.1, and client tasks that make round trips to it for a fixed time,
then a burst of cancelled waits. Nothing in it mentions io_uring; only the
function that starts the run differs (``trio.run`` or ``trio_uring.run``).

Run it with ``make demo`` or ``python examples/demo.py [--seconds S]``.
"""

from __future__ import annotations

import argparse
import os
import time
from functools import partial
from typing import Any

import trio
import trio.testing

import trio_uring

PAYLOAD = b"x" * 64


async def echo(stream: trio.SocketStream) -> None:
    """Echo until the peer closes."""
    try:
        while data := await stream.receive_some(65536):
            await stream.send_all(data)
    except trio.BrokenResourceError:
        pass


async def client(port: int, until: float, counts: list[int]) -> None:
    """Round trips of PAYLOAD until the deadline; every reply is checked."""
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    async with stream:
        while trio.current_time() < until:
            await stream.send_all(PAYLOAD)
            got = b""
            while len(got) < len(PAYLOAD):
                chunk = await stream.receive_some(len(PAYLOAD) - len(got))
                if not chunk:
                    raise RuntimeError("server closed early")
                got += chunk
            if got != PAYLOAD:
                raise RuntimeError("echo mismatch")
            counts[0] += 1


async def program(seconds: float, clients: int) -> dict[str, Any]:
    """The demo program: echo round trips, then cancelled waits."""
    counts = [0]
    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(partial(trio.serve_tcp, echo, 0, host="127.0.0.1"))
        port = listeners[0].socket.getsockname()[1]
        start = time.perf_counter()
        async with trio.open_nursery() as clients_nursery:
            until = trio.current_time() + seconds
            for _ in range(clients):
                clients_nursery.start_soon(client, port, until, counts)
        elapsed = time.perf_counter() - start

        # Cancellation: 2,000 tasks blocked reading, all cancelled at once.
        # Each waiter gets its own fd (a dup of one socket): one reader per fd.
        a, b = trio.socket.socketpair()
        fds = [os.dup(a.fileno()) for _ in range(2000)]
        try:
            cancel_start = time.perf_counter()
            async with trio.open_nursery() as waiters:
                for fd in fds:
                    waiters.start_soon(trio.lowlevel.wait_readable, fd)
                await trio.testing.wait_all_tasks_blocked()
                waiters.cancel_scope.cancel()
            cancel_elapsed = time.perf_counter() - cancel_start
        finally:
            for fd in fds:
                os.close(fd)
            a.close()
            b.close()
        stats = trio.lowlevel.current_statistics().io_statistics
        nursery.cancel_scope.cancel()
    return {
        "backend": stats.backend,
        "round_trips": counts[0],
        "seconds": elapsed,
        "rate": counts[0] / elapsed,
        "cancel_ms": cancel_elapsed * 1000,
        "enter_calls": getattr(stats, "enter_calls", None),
        "sqes": getattr(stats, "sqes_submitted", None),
    }


def main() -> None:
    """Run the program on both backends and print what each did."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--clients", type=int, default=32)
    args = parser.parse_args()

    availability = trio_uring.check_availability()
    print(f"kernel {availability.kernel}; io_uring available: {availability.available}")
    if availability.cause is not None:
        print(f"  cause: {availability.cause}")

    stock = trio.run(program, args.seconds, args.clients)
    uring = trio_uring.run(program, args.seconds, args.clients)
    print()
    print(f"{'':22}{'stock Trio':>14}{'trio_uring':>14}")
    print(f"{'I/O backend':22}{stock['backend']:>14}{uring['backend']:>14}")
    print(f"{'echo round trips':22}{stock['round_trips']:>14,}{uring['round_trips']:>14,}")
    print(f"{'round trips / s':22}{stock['rate']:>14,.0f}{uring['rate']:>14,.0f}")
    print(f"{'cancel 2,000 waits ms':22}{stock['cancel_ms']:>14.1f}{uring['cancel_ms']:>14.1f}")
    if uring["enter_calls"]:
        print(f"{'io_uring_enter calls':22}{'-':>14}{uring['enter_calls']:>14,}")
        print(f"{'SQEs submitted':22}{'-':>14}{uring['sqes']:>14,}")
    print()
    print(f"trio_uring / stock, round trips per second: {uring['rate'] / stock['rate']:.2f}x")
    print("(one short run on a shared machine; see benchmarks/ for measured figures)")


if __name__ == "__main__":
    main()
