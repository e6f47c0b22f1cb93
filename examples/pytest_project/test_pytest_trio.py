"""pytest-trio runs these with trio.run, one run per test."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import pytest
import trio


async def echo_once(stream: trio.SocketStream) -> None:
    async with stream:
        await stream.send_all(await stream.receive_some())


@pytest.mark.trio
async def test_tcp_round_trip(check_backend: Callable[[], None]) -> None:
    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(partial(trio.serve_tcp, host="127.0.0.1"), echo_once, 0)
        port = listeners[0].socket.getsockname()[1]
        async with await trio.open_tcp_stream("127.0.0.1", port) as client:
            await client.send_all(b"ping")
            assert await client.receive_some() == b"ping"
        check_backend()
        nursery.cancel_scope.cancel()


@pytest.mark.trio
async def test_timeout(check_backend: Callable[[], None]) -> None:
    with trio.move_on_after(0.05) as scope:
        await trio.sleep_forever()
    assert scope.cancelled_caught
    check_backend()
