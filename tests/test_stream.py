"""The lean ``SocketStream`` methods (``_stream.py``) behave as Trio's own.

Each scenario runs twice: on stock Trio with Trio's sockets (Trio's own
methods) and on trio_uring with native sockets (the lean ones); what each
observes (results, exception types, messages, causes) must be equal.
"""

from __future__ import annotations

import socket as stdsocket
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import trio
import trio.testing
from trio import _highlevel_socket

import trio_uring
from trio_uring._sockets import stream as _stream
from trio_uring._sockets.socket import NativeSocket

Scenario = Callable[[trio.SocketStream, trio.SocketStream], Awaitable[Any]]


def describe(exc: BaseException) -> tuple[Any, ...]:
    """What a caller can see of an exception."""
    return (
        type(exc).__name__,
        str(exc),
        type(exc.__cause__).__name__ if exc.__cause__ is not None else None,
        exc.__suppress_context__,
    )


async def stream_pair() -> tuple[trio.SocketStream, trio.SocketStream]:
    """A connected TCP stream pair on 127.0.0.1, from whichever socket factory is in effect."""
    listener = trio.socket.socket()
    await listener.bind(("127.0.0.1", 0))
    listener.listen()
    client = trio.socket.socket()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(client.connect, listener.getsockname())
        server, _ = await listener.accept()
    listener.close()
    return trio.SocketStream(client), trio.SocketStream(server)


def both(scenario: Scenario) -> tuple[Any, Any]:
    """Run ``scenario`` on stock Trio and on trio_uring; return both observations."""

    async def main(native: bool) -> Any:
        a, b = await stream_pair()
        assert (type(a.socket) is NativeSocket) is native
        async with a, b:
            try:
                return await scenario(a, b)
            except Exception as exc:
                return describe(exc)

    stock = trio.run(main, False)
    uring = trio_uring.run(main, True, fallback="raise")
    # The lean ones really ran (the implementation the fixture chose).
    held = vars(trio.SocketStream)["send_all"]
    assert held in [impl[1] for impl in _stream.IMPLEMENTATIONS.values()]
    return stock, uring


async def echo_bytes(a: trio.SocketStream, b: trio.SocketStream) -> Any:
    payload = bytes(range(256)) * 8192  # 2 MiB: several partial sends
    expected = payload + b"ail"
    got = bytearray()

    async def reader() -> None:
        while len(got) < len(expected):
            got.extend(await b.receive_some(4096))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(reader)
        await a.send_all(payload)
        await a.send_all(memoryview(b"tail")[1:])
    return bytes(got) == expected


async def bad_max_bytes(a: trio.SocketStream, b: trio.SocketStream) -> Any:
    return await b.receive_some(0)


async def send_after_eof(a: trio.SocketStream, b: trio.SocketStream) -> Any:
    await a.send_eof()
    assert await b.receive_some() == b""
    return await a.send_all(b"x")


async def two_senders(a: trio.SocketStream, b: trio.SocketStream) -> Any:
    a.setsockopt(stdsocket.SOL_SOCKET, stdsocket.SO_SNDBUF, 4096)
    errors: list[Any] = []

    async def send(data: bytes) -> None:
        try:
            await a.send_all(data)
        except trio.BusyResourceError as exc:
            errors.append(describe(exc))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(send, b"x" * (8 << 20))  # blocks: the buffer is tiny
        await trio.testing.wait_all_tasks_blocked()
        await send(b"y")
        nursery.cancel_scope.cancel()
    return errors


async def empty_send(a: trio.SocketStream, b: trio.SocketStream) -> Any:
    with trio.testing.assert_checkpoints():
        await a.send_all(b"")
    a.socket.close()
    return await a.send_all(b"")


async def closed_socket(a: trio.SocketStream, b: trio.SocketStream) -> Any:
    # Closed under the stream, so the socket's own call fails with EBADF.
    stdsocket.socket(fileno=a.socket.detach()).close()
    results = []
    for call in (lambda: a.send_all(b"x"), lambda: a.receive_some()):
        try:
            await call()
        except Exception as exc:
            results.append(describe(exc))
    return results


async def reset_by_peer(a: trio.SocketStream, b: trio.SocketStream) -> Any:
    # SO_LINGER 0: closing sends a RST; the next receive fails ECONNRESET.
    b.setsockopt(stdsocket.SOL_SOCKET, stdsocket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    await a.send_all(b"unread")  # unread data also makes close() reset
    await trio.testing.wait_all_tasks_blocked()
    b.socket.close()
    await trio.sleep(0.05)
    return await a.receive_some()


async def checkpoints(a: trio.SocketStream, b: trio.SocketStream) -> Any:
    with trio.testing.assert_checkpoints():
        await a.send_all(b"ping")
    with trio.testing.assert_checkpoints():
        return await b.receive_some(10)


async def cancelled_before(a: trio.SocketStream, b: trio.SocketStream) -> Any:
    await a.send_all(b"keep")
    with trio.CancelScope() as scope:
        scope.cancel()
        await b.receive_some()  # cancelled at its checkpoint, consumes nothing
    assert scope.cancelled_caught
    return await b.receive_some()


async def keywords_and_buffers(a: trio.SocketStream, b: trio.SocketStream) -> Any:
    await a.send_all(data=bytearray(b"by keyword"))
    await a.send_all(memoryview(b"xxviewxx")[2:6])
    got: list[Any] = [await b.receive_some(max_bytes=10)]
    while len(b"".join(got)) < 14:
        got.append(await b.receive_some(64))
    try:
        await b.receive_some(2.5)  # type: ignore[arg-type]
    except TypeError as exc:
        got.append(describe(exc))
    return got


async def never_awaited(a: trio.SocketStream, b: trio.SocketStream) -> Any:
    # A call that is never awaited does nothing: no bytes taken, none sent.
    await a.send_all(b"stays")
    await trio.testing.wait_all_tasks_blocked()
    b.receive_some(10).close()
    a.send_all(b"never").close()
    return await b.receive_some(10)


async def as_tasks(a: trio.SocketStream, b: trio.SocketStream) -> Any:
    # start_soon checks that the call gives a coroutine.
    async with trio.open_nursery() as nursery:
        nursery.start_soon(a.send_all, b"from a task")
        nursery.start_soon(b.receive_some, 100)
    # The task took all of it: what comes next is what is sent next.
    await a.send_all(b"end")
    return await b.receive_some(100)


async def cancelled_while_waiting(a: trio.SocketStream, b: trio.SocketStream) -> Any:
    with trio.move_on_after(0.05) as scope:
        await b.receive_some(10)  # nothing sent: waits, then cancelled
    await a.send_all(b"after")
    return scope.cancelled_caught, await b.receive_some(10)


SCENARIOS = [
    keywords_and_buffers,
    never_awaited,
    as_tasks,
    cancelled_while_waiting,
    echo_bytes,
    bad_max_bytes,
    send_after_eof,
    two_senders,
    empty_send,
    closed_socket,
    reset_by_peer,
    checkpoints,
    cancelled_before,
]


@pytest.fixture(params=["python", "c"])
def lean(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Each lean implementation in turn on ``trio.SocketStream`` (stock runs keep Trio's)."""
    assert _stream.install()
    # Built by every install (setup.py): missing, it is a failure, not a skip.
    assert request.param in _stream.IMPLEMENTATIONS, "the C stream methods were not built"
    receive, send = _stream.IMPLEMENTATIONS[request.param]
    monkeypatch.setattr(trio.SocketStream, "receive_some", receive)
    monkeypatch.setattr(trio.SocketStream, "send_all", send)
    return str(request.param)


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.__name__ for s in SCENARIOS])
def test_lean_methods_behave_as_trios(scenario: Scenario, lean: str) -> None:
    stock, uring = both(scenario)
    assert stock == uring
    assert stock is not None  # each scenario observes something


def test_other_sockets_keep_trios_methods(monkeypatch: pytest.MonkeyPatch) -> None:
    """On a trio_uring run without native sockets, streams run Trio's own methods."""
    calls: list[str] = []
    trio_receive, trio_send = _stream._TRIO_RECEIVE_SOME, _stream._TRIO_SEND_ALL

    async def spy_receive(self: trio.SocketStream, max_bytes: int | None = None) -> bytes:
        calls.append("receive_some")
        return await trio_receive(self, max_bytes)

    async def spy_send(self: trio.SocketStream, data: Any) -> None:
        calls.append("send_all")
        await trio_send(self, data)

    monkeypatch.setattr(_stream, "_TRIO_RECEIVE_SOME", spy_receive)
    monkeypatch.setattr(_stream, "_TRIO_SEND_ALL", spy_send)
    assert _stream.install()

    async def main() -> None:
        a, b = await stream_pair()
        assert type(a.socket) is not NativeSocket
        async with a, b:
            await a.send_all(b"hi")
            assert await b.receive_some() == b"hi"

    trio_uring.run(main, fallback="raise", native_sockets=False)
    assert calls == ["send_all", "receive_some"]


def test_not_installed_on_a_trio_without_the_internals(monkeypatch: pytest.MonkeyPatch) -> None:
    assert _stream._mirrors_this_trio()
    monkeypatch.delattr(_highlevel_socket, "_closed_stream_errnos")
    assert not _stream._mirrors_this_trio()
    monkeypatch.setattr(_stream, "_installed", False)
    monkeypatch.setattr(trio.SocketStream, "send_all", _stream._TRIO_SEND_ALL)
    monkeypatch.setattr(trio.SocketStream, "receive_some", _stream._TRIO_RECEIVE_SOME)
    assert not _stream.install()
    assert trio.SocketStream.send_all is _stream._TRIO_SEND_ALL


async def small_buffered_pair() -> tuple[trio.SocketStream, trio.SocketStream]:
    """``stream_pair`` with 64 KiB socket buffers: a 10 MB ``send_all`` has to wait."""
    a, b = await stream_pair()
    a.setsockopt(stdsocket.SOL_SOCKET, stdsocket.SO_SNDBUF, 65536)
    b.setsockopt(stdsocket.SOL_SOCKET, stdsocket.SO_RCVBUF, 65536)
    return a, b


def test_send_all_hands_the_kernel_the_rest_in_one_op() -> None:
    """A send_all that has to wait sends the whole rest in one MSG_WAITALL op."""
    from trio_uring._sockets import counts as _base

    payload = bytes(range(251)) * 40_000  # ~10 MB, far more than the buffers hold

    async def main() -> None:
        a, b = await small_buffered_pair()
        async with a, b:
            got = bytearray()
            ops_before = _base.COUNTS["ops"]
            # Read beside the native layer, so that its counts stay the sender's.
            native = b.socket
            assert isinstance(native, NativeSocket)
            raw = native._sock
            async with trio.open_nursery() as nursery:
                nursery.start_soon(a.send_all, payload)
                while len(got) < len(payload):
                    await trio.lowlevel.wait_readable(raw)
                    got.extend(raw.recv(1 << 20))
            assert _base.COUNTS["ops"] - ops_before == 1
            assert got == payload

    trio_uring.run(main, fallback="raise")


@pytest.mark.parametrize("read_first", [0, 100_000, 3_000_000])
def test_send_all_cancelled_in_its_op_delivers_a_prefix(read_first: int) -> None:
    """Cancelled part way, the peer has a prefix of the data and send_all raised Cancelled."""
    payload = bytes(range(251)) * 40_000

    async def main() -> None:
        a, b = await small_buffered_pair()
        async with a, b:
            got = bytearray()
            cancelled = False

            async def sender(scope_box: list[trio.CancelScope]) -> None:
                nonlocal cancelled
                with trio.CancelScope() as scope:
                    scope_box.append(scope)
                    await a.send_all(payload)
                cancelled = scope.cancelled_caught

            box: list[trio.CancelScope] = []
            async with trio.open_nursery() as nursery:
                nursery.start_soon(sender, box)
                await trio.testing.wait_all_tasks_blocked()
                while len(got) < read_first:  # the reader makes the sender progress
                    got.extend(await b.receive_some(65536))
                box[0].cancel()
            assert cancelled
            await a.send_eof()
            while data := await b.receive_some(1 << 20):
                got.extend(data)
            assert 0 < len(got) < len(payload)
            assert got == payload[: len(got)]

    trio_uring.run(main, fallback="raise")
