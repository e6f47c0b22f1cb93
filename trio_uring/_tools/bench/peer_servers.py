"""Peer TCP echo servers for the echo benchmark: asyncio and uvloop.

The echo benchmark compares Trio's backends with each other; these servers
put the same workload on the event loops people compare Trio with, under
the same load generator in the same run:

- ``asyncio-protocol``: an ``asyncio.Protocol`` whose ``data_received``
  writes the bytes straight back (``transport.write``), on asyncio's
  default event loop;
- ``asyncio-streams``: ``asyncio.start_server``, each connection a task
  looping on ``StreamReader.read(65536)`` and ``StreamWriter.write`` +
  ``drain``;
- ``uvloop``: the protocol server of ``asyncio-protocol`` on uvloop's loop.

The command-line contract is ``echo_server.py``'s::

    python -m trio_uring._tools.bench.peer_servers \
        --backend {asyncio-protocol,asyncio-streams,uvloop} --port P [--ready-file PATH]

Once listening, the bound port is written to ``--ready-file`` (or printed
as ``READY <port>`` on stdout). ``--port 0`` picks a free port. SIGINT and
SIGTERM stop the server cleanly with exit status 0. Where uvloop is not
installed, ``--backend uvloop`` says so on stderr and exits with
``EXIT_NOT_INSTALLED``, without a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import signal
import sys
from collections.abc import Callable, Coroutine
from typing import Any, cast

from .ready import report_ready

HOST = "127.0.0.1"
RECEIVE_SIZE = 65536
PEER_BACKENDS = ("asyncio-protocol", "asyncio-streams", "uvloop")
# The uvloop that requirements-dev.txt pins (for the hint in the message).
UVLOOP_PIN = "uvloop==0.23.0"
EXIT_NOT_INSTALLED = 3
# How long the streams server waits for its connection handlers at shutdown.
SHUTDOWN_TIMEOUT = 5.0


def missing_module(backend: str) -> str | None:
    """The module ``backend`` needs that this interpreter cannot import, or None."""
    if backend == "uvloop" and importlib.util.find_spec("uvloop") is None:
        return "uvloop"
    return None


def not_installed_message(backend: str) -> str:
    """What the benchmark says about ``backend`` where its module is missing."""
    return f"not installed (pip install {UVLOOP_PIN} to measure {backend})"


class EchoProtocol(asyncio.Protocol):
    """Writes every chunk back as it arrives; the transport buffers what cannot go yet."""

    def __init__(self, open_transports: set[asyncio.Transport]) -> None:
        self._open = open_transports
        self._transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A stream transport (uvloop's is not a subclass of asyncio.Transport,
        # so no isinstance check: it would refuse every uvloop connection).
        self._transport = cast(asyncio.Transport, transport)
        self._open.add(self._transport)

    def data_received(self, data: bytes) -> None:
        assert self._transport is not None
        self._transport.write(data)

    def connection_lost(self, exc: Exception | None) -> None:
        # A reset when the load generator closes mid-round-trip is normal
        # for a benchmark; the loop has closed the socket already.
        if self._transport is not None:
            self._open.discard(self._transport)


class StreamEcho:
    """``asyncio.start_server``'s connection callback, keeping track of live connections."""

    def __init__(self) -> None:
        self.handlers: set[asyncio.Task[Any]] = set()
        self.transports: set[asyncio.Transport] = set()

    async def __call__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        transport = cast(asyncio.Transport, writer.transport)
        self.handlers.add(task)
        self.transports.add(transport)
        try:
            while data := await reader.read(RECEIVE_SIZE):
                writer.write(data)
                await writer.drain()
        except ConnectionError:
            # Reset or broken pipe when the load generator closes its sockets
            # at the end of its measurement window: not a server failure.
            pass
        finally:
            self.transports.discard(transport)
            self.handlers.discard(task)
            writer.close()


async def serve(backend: str, port: int, ready_file: str | None) -> None:
    """Serve echo on ``HOST:port`` with ``backend``'s server until SIGINT or SIGTERM."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    # Registered before listening so a signal sent right after the ready
    # report is never lost or turned into KeyboardInterrupt.
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    open_transports: set[asyncio.Transport] = set()
    streams = StreamEcho()
    if backend == "asyncio-streams":
        server = await asyncio.start_server(streams, HOST, port)
    else:
        server = await loop.create_server(lambda: EchoProtocol(open_transports), HOST, port)
    bound_port = server.sockets[0].getsockname()[1]
    report_ready(bound_port, ready_file)
    await stop.wait()
    server.close()
    # Close what is still connected ourselves. Leaving the streams handlers
    # to the runner's cancellation at exit makes Python 3.11's
    # start_server log a CancelledError traceback for each of them; an
    # aborted transport instead ends the handler's read with EOF.
    for transport in [*open_transports, *streams.transports]:
        transport.abort()
    if streams.handlers:
        await asyncio.wait(streams.handlers, timeout=SHUTDOWN_TIMEOUT)


def _runner(backend: str) -> Callable[[Coroutine[Any, Any, None]], None]:
    if backend == "uvloop":
        import uvloop

        return uvloop.run
    return asyncio.run


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, run the chosen peer server, return the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--backend", choices=PEER_BACKENDS, required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--ready-file", default=None)
    args = parser.parse_args(argv)
    if missing_module(args.backend) is not None:
        print(
            f"peer_servers: {args.backend}: {not_installed_message(args.backend)}", file=sys.stderr
        )
        return EXIT_NOT_INSTALLED
    _runner(args.backend)(serve(args.backend, args.port, args.ready_file))
    return 0


if __name__ == "__main__":
    sys.exit(main())
