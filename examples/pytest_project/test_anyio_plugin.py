"""anyio's pytest plugin runs these in one Trio guest run (start_guest_run)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import anyio
import pytest
from anyio.abc import SocketAttribute, SocketStream
from anyio.streams.stapled import MultiListener

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    # The plain Trio backend: --trio-uring puts it on io_uring. (Selecting
    # "trio_uring" here would use io_uring whatever the plugin says.)
    return "trio"


@pytest.fixture
async def listener() -> AsyncIterator[MultiListener[SocketStream]]:
    async with await anyio.create_tcp_listener(local_host="127.0.0.1") as listener:
        yield listener


async def echo_once(stream: SocketStream) -> None:
    async with stream:
        await stream.send(await stream.receive())


async def test_tcp_round_trip(
    listener: MultiListener[SocketStream], check_backend: Callable[[], None]
) -> None:
    port = listener.listeners[0].extra(SocketAttribute.local_port)
    async with anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, echo_once)
        async with await anyio.connect_tcp("127.0.0.1", port) as client:
            await client.send(b"ping")
            assert await client.receive() == b"ping"
        check_backend()
        tg.cancel_scope.cancel()


async def test_worker_thread(check_backend: Callable[[], None]) -> None:
    assert await anyio.to_thread.run_sync(sum, [1, 2, 3]) == 6
    check_backend()
