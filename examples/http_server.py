"""An HTTP/1.1 server with keep-alive, on h11 and Trio's streams.

    python examples/http_server.py [--port 8080] [--stock]

``GET /`` answers ``hello``; ``POST /echo`` answers the request body;
anything else is a 404. h11 does the protocol, Trio the I/O, and
``trio_uring.run`` makes every socket native.
"""

from __future__ import annotations

import argparse
from functools import partial

import h11
import trio

import trio_uring

MAX_RECV = 65536


async def send(stream: trio.SocketStream, conn: h11.Connection, event: h11.Event) -> None:
    data = conn.send(event)
    if data:
        await stream.send_all(data)


async def respond(
    stream: trio.SocketStream, conn: h11.Connection, status: int, body: bytes
) -> None:
    headers = [("content-type", "text/plain"), ("content-length", str(len(body)))]
    await send(stream, conn, h11.Response(status_code=status, headers=headers))
    await send(stream, conn, h11.Data(data=body))
    await send(stream, conn, h11.EndOfMessage())


async def next_event(stream: trio.SocketStream, conn: h11.Connection) -> h11.Event | type:
    while True:
        event = conn.next_event()
        if event is not h11.NEED_DATA:
            return event
        conn.receive_data(await stream.receive_some(MAX_RECV))


async def serve(stream: trio.SocketStream) -> None:
    conn = h11.Connection(h11.SERVER)
    async with stream:
        try:
            while True:
                event = await next_event(stream, conn)
                if not isinstance(event, h11.Request):
                    return  # the client closed the connection (or broke the protocol)
                body = b""
                while isinstance(part := await next_event(stream, conn), h11.Data):
                    body += part.data
                if event.method == b"GET" and event.target == b"/":
                    await respond(stream, conn, 200, b"hello\n")
                elif event.method == b"POST" and event.target == b"/echo":
                    await respond(stream, conn, 200, body)
                else:
                    await respond(stream, conn, 404, b"not found\n")
                if conn.our_state is h11.MUST_CLOSE:
                    return
                conn.start_next_cycle()
        except (h11.ProtocolError, trio.BrokenResourceError):
            return


async def main(host: str, port: int) -> None:
    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(partial(trio.serve_tcp, serve, port, host=host))
        bound = listeners[0].socket.getsockname()
        backend = trio.lowlevel.current_statistics().io_statistics.backend
        kind = type(listeners[0].socket).__name__
        print(f"http server on {bound[0]}:{bound[1]} ({backend}, {kind})", flush=True)


def interrupted(exc: BaseException) -> bool:
    """Whether ``exc`` is Ctrl-C, alone or inside Trio's exception groups."""
    if isinstance(exc, KeyboardInterrupt):
        return True
    nested = getattr(exc, "exceptions", None)
    return nested is not None and all(interrupted(e) for e in nested)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080, help="0 picks a free port")
    parser.add_argument("--stock", action="store_true", help="run on stock Trio")
    args = parser.parse_args()
    try:
        (trio.run if args.stock else trio_uring.run)(main, args.host, args.port)
    except BaseException as exc:
        if not interrupted(exc):
            raise
