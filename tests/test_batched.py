"""The batched data path (``data_path="batched"``): receiving ahead and send ops.

Each test runs stream sockets whose receives are served by one multishot
receive per socket (``_sockets/ahead.py``) and whose ``send_all`` is one
send op, and checks what a program can observe: every byte once and in
order, cancellation losing nothing, bounded queues with backpressure,
the provided buffers running out and the receive armed again.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Awaitable, Callable, Iterator

import pytest
import trio
import trio.testing

import trio_uring
import trio_uring.socket as usocket
from trio_uring import UringStatistics
from trio_uring._core import multishot as _multishot
from trio_uring._core.settings import Mode
from trio_uring._sockets import ahead as _ahead
from trio_uring._sockets.counts import COUNTS

from .conftest import tcp_stream_pair

_MODE: list[Mode] = ["interrupt"]


@pytest.fixture(autouse=True, params=["interrupt", "sqpoll"])
def ring_mode(request: pytest.FixtureRequest) -> Iterator[None]:
    """Every test here twice: on an interrupt-driven ring, and with a kernel thread submitting."""
    _MODE[0] = request.param
    yield
    _MODE[0] = "interrupt"


def run_batched(fn: Callable[[], Awaitable[None]]) -> None:
    trio_uring.run(fn, fallback="raise", data_path="batched", mode=_MODE[0])


def io_stats() -> UringStatistics:
    stats = trio.lowlevel.current_statistics().io_statistics
    assert isinstance(stats, UringStatistics)
    return stats


def _native(sock: object) -> usocket.NativeSocket:
    assert isinstance(sock, usocket.NativeSocket)
    return sock


async def stream_pair() -> tuple[trio.SocketStream, trio.SocketStream]:
    a, b = await tcp_stream_pair()
    assert isinstance(a.socket, usocket.NativeSocket)
    return a, b


def test_echo_is_exact_and_makes_no_system_call_of_its_own() -> None:
    async def main() -> None:
        a, b = await stream_pair()
        direct_before = COUNTS["direct"]
        payloads = [os.urandom(n) for n in (1, 64, 4095, 4096, 4097, 70_000, 200_000)] * 5
        async with trio.open_nursery() as nursery:

            async def echo() -> None:
                async for data in b:
                    await b.send_all(data)

            nursery.start_soon(echo)
            for payload in payloads:
                await a.send_all(payload)
                got = bytearray()
                while len(got) < len(payload):
                    got += await a.receive_some()
                assert got == payload
            nursery.cancel_scope.cancel()
        # No direct recv(2)/send(2) on the batched path: only ops.
        assert COUNTS["direct"] == direct_before
        assert _native(b.socket)._ahead is not None
        await a.aclose()
        await b.aclose()

    run_batched(main)


def test_a_cancelled_receive_loses_nothing_and_the_next_one_gets_it() -> None:
    async def main() -> None:
        a, b = await stream_pair()
        with trio.move_on_after(0.05) as scope:
            await b.receive_some(10)  # arms the multishot receive, then waits
        assert scope.cancelled_caught
        await a.send_all(b"hello world")
        await trio.testing.wait_all_tasks_blocked()
        # Cancelled again while the bytes are already queued: still nothing lost.
        with trio.CancelScope() as scope:
            scope.cancel()
            await b.receive_some(5)
        assert await b.receive_some(5) == b"hello"
        assert await b.receive_some(100) == b" world"
        await a.aclose()
        await b.aclose()

    run_batched(main)


def test_eof_and_errors_come_after_the_data_in_order() -> None:
    async def main() -> None:
        a, b = await stream_pair()
        await a.send_all(b"last words")
        await a.send_eof()
        await trio.sleep(0.05)
        assert await b.receive_some(4) == b"last"
        assert await b.receive_some(100) == b" words"
        # Found queued or not, EOF comes after a schedule point, as Trio's
        # recv passes one after its direct attempt (Trio's
        # check_half_closeable_stream checks it).
        for _ in range(2):
            with trio.testing.assert_checkpoints():
                assert await b.receive_some(100) == b""
        await a.aclose()
        # A reset behind queued data: the data first, then the error.
        c, d = await stream_pair()
        await c.send_all(b"before the reset")
        await trio.sleep(0.05)
        c.socket.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\0\0\0\0\0\0\0")
        await c.aclose()
        await trio.sleep(0.05)
        assert await d.receive_some(100) == b"before the reset"
        with trio.testing.assert_checkpoints(), pytest.raises(trio.BrokenResourceError):
            await d.receive_some(100)
        await b.aclose()
        await d.aclose()

    run_batched(main)


def test_other_receive_calls_take_the_queue_first_in_order() -> None:
    async def main() -> None:
        a, b = await stream_pair()
        await a.send_all(b"0123456789abcdef")
        await trio.sleep(0.05)
        assert await b.receive_some(2) == b"01"  # receiving ahead now
        await trio.testing.wait_all_tasks_blocked()
        sock = b.socket
        peeked = await sock.recv(3, socket.MSG_PEEK)
        assert peeked == b"234"
        buf = bytearray(4)
        assert await sock.recv_into(buf) == 4
        assert buf == b"2345"
        assert await sock.recvfrom(2) == (b"67", None)
        data, anc, flags, addr = await sock.recvmsg(100)
        assert (data, anc, flags, addr) == (b"89abcdef", [], 0, None)
        # The queue is empty now: the kernel is asked directly again.
        await a.send_all(b"kernel")
        await trio.sleep(0.05)
        assert await sock.recv(100) == b"kernel"
        await a.aclose()
        await b.aclose()

    run_batched(main)


def test_running_out_of_buffers_rearms_without_losing_or_reordering(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Two buffers for a dozen busy sockets: receives end with ENOBUFS (having
    # taken nothing) and must be armed again.
    monkeypatch.setattr(_multishot, "RECEIVE_BUFFERS", 2)
    monkeypatch.setattr(_multishot, "RECEIVE_BUFFER_SIZE", 512)

    async def main() -> None:
        pairs = [await stream_pair() for _ in range(12)]
        payload = bytes(range(256)) * 40  # 10 KiB: 20 buffers' worth each
        armed_before = COUNTS["ahead_armed"]

        async def one(a: trio.SocketStream, b: trio.SocketStream) -> None:
            got = bytearray()
            while len(got) < len(payload):
                got += await b.receive_some(65536)
            assert got == payload

        async with trio.open_nursery() as nursery:
            for a, b in pairs:
                nursery.start_soon(one, a, b)
            await trio.testing.wait_all_tasks_blocked()
            for a, _ in pairs:
                nursery.start_soon(a.send_all, payload)
        # Armed again and again: far more arms than sockets.
        assert COUNTS["ahead_armed"] - armed_before > len(pairs)
        for a, b in pairs:
            await a.aclose()
            await b.aclose()

    run_batched(main)


def test_a_flooding_peer_is_held_back_while_quiet_ones_are_served() -> None:
    async def main() -> None:
        flood_tx, flood_rx = await stream_pair()
        quiet = [await stream_pair() for _ in range(10)]
        sent = 0
        chunk = b"x" * 65536

        async def flood() -> None:
            nonlocal sent
            while True:
                await flood_tx.send_all(chunk)
                sent += len(chunk)

        async with trio.open_nursery() as nursery:
            # The flood's receiver reads once (so it receives ahead), then
            # is too busy to read again.
            nursery.start_soon(flood)
            assert await flood_rx.receive_some(10)
            await trio.sleep(0.3)
            for a, b in quiet:
                await a.send_all(b"ping")
                with trio.fail_after(2):
                    assert await b.receive_some(10) == b"ping"
            ahead = _native(flood_rx.socket)._ahead
            assert ahead is not None
            # Bounded: the queue stopped near its limit, and the rest is
            # back-pressure in the kernel's socket buffers and the sender.
            assert ahead.queued <= _ahead.LIMIT + 32 * _multishot.RECEIVE_BUFFER_SIZE
            assert ahead.paused or ahead.bulk
            held = sent
            await trio.sleep(0.2)
            assert sent == held  # the sender is blocked: nothing more went out
            nursery.cancel_scope.cancel()
        for s in (flood_tx, flood_rx):
            await s.aclose()
        for a, b in quiet:
            await a.aclose()
            await b.aclose()

    run_batched(main)


def test_a_bulk_stream_is_exact_and_leaves_receiving_ahead() -> None:
    async def main() -> None:
        a, b = await stream_pair()
        payload = os.urandom(8 << 20)
        assert await _prime(a, b)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(a.send_all, payload)
            got = bytearray()
            while len(got) < len(payload):
                got += await b.receive_some(65536)
        assert got == payload
        await a.aclose()
        await b.aclose()

    run_batched(main)


async def _prime(a: trio.SocketStream, b: trio.SocketStream) -> bool:
    await a.send_all(b"!")
    return await b.receive_some(1) == b"!"


def test_closing_with_data_queued_ends_the_receive_and_leaks_no_op() -> None:
    async def main() -> None:
        await trio.testing.wait_all_tasks_blocked()  # Trio's own waits are in place
        baseline = io_stats().ops_in_flight
        a, b = await stream_pair()
        await a.send_all(b"y" * 20000)
        assert await b.receive_some(10) == b"y" * 10
        await trio.sleep(0.05)
        ahead = _native(b.socket)._ahead
        assert ahead is not None
        assert ahead.chunks
        await b.aclose()
        await a.aclose()
        for _ in range(10):
            await trio.sleep(0.01)
        assert io_stats().ops_in_flight == baseline
        assert not ahead.chunks

    run_batched(main)


def test_a_receiver_blocked_on_the_queue_wakes_when_its_socket_closes() -> None:
    async def main() -> None:
        a, b = await stream_pair()
        async with trio.open_nursery() as nursery:

            async def close_soon() -> None:
                await trio.sleep(0.05)
                await b.aclose()

            nursery.start_soon(close_soon)
            with pytest.raises(trio.ClosedResourceError):
                await b.receive_some(10)
        await a.aclose()

    run_batched(main)
