"""A broadcast chat server: every line a client sends goes to every other client.

    python examples/chat_server.py [--port 8001] [--stock]

Each client gets a bounded outbox (a memory channel) and its own sender
task, so one slow client never holds up the others: when its outbox is
full it is dropped. Plain Trio; ``trio_uring.run`` makes the sockets native.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
from functools import partial

import trio

import trio_uring

OUTBOX = 64


class Room:
    def __init__(self) -> None:
        self.outboxes: dict[int, trio.MemorySendChannel[bytes]] = {}
        self.ids = itertools.count(1)

    def broadcast(self, sender: int, line: bytes) -> None:
        for ident, outbox in list(self.outboxes.items()):
            if ident == sender:
                continue
            try:
                outbox.send_nowait(line)
            except trio.WouldBlock:
                outbox.close()  # too slow to keep up: its sender task ends
                del self.outboxes[ident]

    async def serve(self, stream: trio.SocketStream) -> None:
        ident = next(self.ids)
        send, receive = trio.open_memory_channel[bytes](OUTBOX)
        self.outboxes[ident] = send
        async with stream, trio.open_nursery() as nursery:
            nursery.start_soon(self._deliver, stream, receive)
            await stream.send_all(f"welcome, you are user{ident}\n".encode())
            pending = b""
            try:
                async for data in stream:
                    pending += data
                    *lines, pending = pending.split(b"\n")
                    for line in lines:
                        self.broadcast(ident, b"user%d: %s\n" % (ident, line))
            except trio.BrokenResourceError:
                pass
            finally:
                if self.outboxes.pop(ident, None) is not None:
                    send.close()
            nursery.cancel_scope.cancel()

    @staticmethod
    async def _deliver(stream: trio.SocketStream, outbox: trio.MemoryReceiveChannel[bytes]) -> None:
        with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
            async for line in outbox:
                await stream.send_all(line)


async def main(host: str, port: int) -> None:
    room = Room()
    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(partial(trio.serve_tcp, room.serve, port, host=host))
        bound = listeners[0].socket.getsockname()
        backend = trio.lowlevel.current_statistics().io_statistics.backend
        kind = type(listeners[0].socket).__name__
        print(f"chat server on {bound[0]}:{bound[1]} ({backend}, {kind})", flush=True)


def interrupted(exc: BaseException) -> bool:
    """Whether ``exc`` is Ctrl-C, alone or inside Trio's exception groups."""
    if isinstance(exc, KeyboardInterrupt):
        return True
    nested = getattr(exc, "exceptions", None)
    return nested is not None and all(interrupted(e) for e in nested)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001, help="0 picks a free port")
    parser.add_argument("--stock", action="store_true", help="run on stock Trio")
    args = parser.parse_args()
    try:
        (trio.run if args.stock else trio_uring.run)(main, args.host, args.port)
    except BaseException as exc:
        if not interrupted(exc):
            raise
