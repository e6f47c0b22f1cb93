"""A nursery-based TCP echo server: Trio's own API, run on trio_uring.

    python examples/echo_server.py [--port 8000] [--stock]

Not a line of it is io_uring-specific: ``trio_uring.run`` sets Trio's
socket factory, so ``serve_tcp``'s listeners and the streams they accept
are native sockets. ``--stock`` runs the same program on stock Trio.
"""

from __future__ import annotations

import argparse
from functools import partial

import trio

import trio_uring


async def echo(stream: trio.SocketStream) -> None:
    async with stream:
        try:
            async for data in stream:
                await stream.send_all(data)
        except trio.BrokenResourceError:
            pass  # the client went away mid-write


async def main(host: str, port: int) -> None:
    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(partial(trio.serve_tcp, echo, port, host=host))
        bound = listeners[0].socket.getsockname()
        backend = trio.lowlevel.current_statistics().io_statistics.backend
        kind = type(listeners[0].socket).__name__
        print(f"echo server on {bound[0]}:{bound[1]} ({backend}, {kind})", flush=True)


def interrupted(exc: BaseException) -> bool:
    """Whether ``exc`` is Ctrl-C, alone or inside Trio's exception groups."""
    if isinstance(exc, KeyboardInterrupt):
        return True
    nested = getattr(exc, "exceptions", None)
    return nested is not None and all(interrupted(e) for e in nested)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000, help="0 picks a free port")
    parser.add_argument("--stock", action="store_true", help="run on stock Trio")
    args = parser.parse_args()
    try:
        if args.stock:
            trio.run(main, args.host, args.port)
        else:
            trio_uring.run(main, args.host, args.port)
    except BaseException as exc:
        if not interrupted(exc):
            raise
