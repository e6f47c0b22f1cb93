"""An anyio program on io_uring: a TCP echo server and its clients.

    python examples/anyio_program.py                    # anyio.run(..., backend="trio_uring")
    python examples/anyio_program.py --backend trio     # stock Trio (epoll)
    python examples/anyio_program.py --install          # trio_uring.install(), backend="trio"

Importing trio_uring makes "trio_uring" an anyio backend name: anyio's Trio
backend, with Trio on io_uring. Inside, everything is Trio: sniffio says
"trio", and every anyio API behaves as on backend="trio".
"""

from __future__ import annotations

import argparse

import anyio
import sniffio
import trio
from anyio.abc import SocketAttribute, SocketStream

import trio_uring


async def echo(stream: SocketStream) -> None:
    async with stream:
        async for chunk in stream:
            await stream.send(chunk)


async def main(clients: int, round_trips: int) -> dict[str, str]:
    done = 0

    async with (
        await anyio.create_tcp_listener(local_host="127.0.0.1") as listener,
        anyio.create_task_group() as server,
    ):
        server.start_soon(listener.serve, echo)
        port = listener.listeners[0].extra(SocketAttribute.local_port)

        async def client() -> None:
            nonlocal done
            async with await anyio.connect_tcp("127.0.0.1", port) as stream:
                for i in range(round_trips):
                    message = f"message {i}".encode()
                    await stream.send(message)
                    assert await stream.receive() == message
                    done += 1

        async with anyio.create_task_group() as tg:
            for _ in range(clients):
                tg.start_soon(client)
        server.cancel_scope.cancel()

    library = sniffio.current_async_library()
    manager = (
        str(trio.lowlevel.current_statistics().io_statistics.backend)
        if library == "trio"
        else library
    )
    return {"sniffio says": library, "I/O manager": manager, "round trips": str(done)}


def cli() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", choices=["trio_uring", "trio", "asyncio"], default=None)
    parser.add_argument(
        "--install", action="store_true", help="trio_uring.install() and backend 'trio'"
    )
    parser.add_argument("--clients", type=int, default=10)
    parser.add_argument("--round-trips", type=int, default=100)
    args = parser.parse_args()
    if args.install and args.backend not in (None, "trio"):
        parser.error("--install switches backend 'trio'; leave --backend out")
    backend = args.backend or ("trio" if args.install else "trio_uring")
    if args.install:
        trio_uring.install()  # every later Trio run in this process is on io_uring
    result = anyio.run(main, args.clients, args.round_trips, backend=backend)
    print(f"{'anyio backend':<16}{backend}{' (after install())' if args.install else ''}")
    for name, value in result.items():
        print(f"{name:<16}{value}")


if __name__ == "__main__":
    cli()
