"""Plain Trio TCP echo server, runnable on stock Trio or on trio_uring.

The server code is identical for both backends; only the function that
starts the Trio run loop differs, so any difference the benchmark measures
comes from the I/O manager underneath.

Usage::

    python -m trio_uring._tools.bench.echo_server --backend {stock,uring,uring-poll} \
        --port P [--ready-file PATH] [--stats-file PATH]

Once listening, the bound port is written to ``--ready-file`` (or printed as
``READY <port>`` on stdout). ``--port 0`` picks a free port. SIGINT and
SIGTERM stop the server cleanly with exit status 0; with ``--stats-file``
the I/O manager's statistics (on trio_uring: SQEs submitted and
``io_uring_enter`` calls) are written there as JSON first.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from collections.abc import Awaitable, Callable
from functools import partial

import trio

from trio_uring._core.settings import DataPath, Mode
from trio_uring._tools.bench.ready import report_ready

HOST = "127.0.0.1"
RECEIVE_SIZE = 65536


async def echo_handler(stream: trio.SocketStream) -> None:
    """Echo everything received on ``stream`` until the peer closes it."""
    try:
        while True:
            data = await stream.receive_some(RECEIVE_SIZE)
            if not data:
                break
            await stream.send_all(data)
    except trio.BrokenResourceError:
        # The load generator closes its sockets mid-round-trip when its
        # measurement window ends, which resets the connection. That is
        # normal for a benchmark and must not take the server down.
        pass


def write_io_statistics(stats_file: str) -> None:
    """Write the I/O manager's counters so far into ``stats_file``, as one JSON object.

    On trio_uring that is ``UringStatistics`` (``sqes_submitted``,
    ``enter_calls``, ...); stock Trio's epoll statistics have none of
    those, and the object then has only ``backend``. Numeric and string
    attributes are copied, whatever the manager calls them, so that a
    counter added later needs no change here.
    """
    io_stats = trio.lowlevel.current_statistics().io_statistics
    out: dict[str, object] = {}
    for name in dir(io_stats):
        if name.startswith("_"):
            continue
        value = getattr(io_stats, name)
        if isinstance(value, (int, float, str)) and not isinstance(value, bool):
            out[name] = value
    # Write then rename: the driver never reads half a file.
    tmp = f"{stats_file}.tmp"
    with open(tmp, "w") as f:
        json.dump(out, f)
    os.replace(tmp, stats_file)


async def serve(port: int, ready_file: str | None, stats_file: str | None = None) -> None:
    """Serve echo on ``HOST:port`` until SIGINT or SIGTERM arrives.

    With ``stats_file``, the I/O manager's statistics are written there on
    the way out (still inside the run, after the last connection closed).
    """
    # Registered before listening so a signal sent right after the ready
    # report is never lost or handled by Python's default KeyboardInterrupt.
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with trio.open_nursery() as nursery:
            listeners = await nursery.start(partial(trio.serve_tcp, echo_handler, port, host=HOST))
            bound_port = listeners[0].socket.getsockname()[1]
            report_ready(bound_port, ready_file)
            async for _ in signals:
                nursery.cancel_scope.cancel()
                break
    if stats_file is not None:
        write_io_statistics(stats_file)


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, run the server on the chosen backend, return exit status."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--backend",
        choices=["stock", "uring", "uring-poll", "uring-batched", "uring-sqpoll"],
        required=True,
    )
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--ready-file", default=None)
    parser.add_argument(
        "--stats-file", default=None, help="write the I/O statistics here (JSON) at exit"
    )
    args = parser.parse_args(argv)

    async_main: Callable[[], Awaitable[None]] = partial(
        serve, args.port, args.ready_file, args.stats_file
    )
    if args.backend == "stock":
        trio.run(async_main)
    else:
        # Imported here so the stock backend works without trio_uring
        # installed. fallback="raise" makes sure we really measure io_uring
        # rather than silently benchmarking the epoll fallback twice.
        import trio_uring

        # "uring-poll": the I/O manager alone (readiness through POLL_ADD,
        # Trio's own sockets); "uring": native socket ops as well.
        # "uring-batched": the batched data path (Settings.data_path).
        # "uring-sqpoll": the batched path on a ring whose SQ a kernel
        # thread polls (Settings.mode), which is what SQPOLL is for.
        native = args.backend != "uring-poll"
        path: DataPath = "direct" if args.backend in ("uring", "uring-poll") else "batched"
        mode: Mode = "sqpoll" if args.backend == "uring-sqpoll" else "interrupt"
        trio_uring.run(
            async_main, fallback="raise", native_sockets=native, data_path=path, mode=mode
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
