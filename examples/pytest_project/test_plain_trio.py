"""A synchronous test that starts Trio itself."""

from __future__ import annotations

from collections.abc import Callable

import trio


def test_trio_run(check_backend: Callable[[], None]) -> None:
    async def main() -> None:
        send, receive = trio.socket.socketpair()
        with send, receive:
            await send.send(b"x")
            assert await receive.recv(1) == b"x"
        check_backend()

    trio.run(main)
