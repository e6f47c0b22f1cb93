"""Where review found trio_uring behaving unlike stock Trio: each case, now as Trio does it."""

from __future__ import annotations

import os
import select
import socket
from collections.abc import Awaitable, Callable

import pytest
import trio

import trio_uring
import trio_uring.socket
from trio_uring import UringStatistics, lowlevel


def run(fn: Callable[[], Awaitable[None]], **kwargs: object) -> None:
    trio_uring.run(fn, fallback="raise", **kwargs)  # type: ignore[arg-type]


def io_stats() -> UringStatistics:
    stats = trio.lowlevel.current_statistics().io_statistics
    assert isinstance(stats, UringStatistics)
    return stats


# -- a connect whose deadline moves later while it is in flight ---------------------


def _slow_listener() -> tuple[socket.socket, socket.socket]:
    """A listener whose accept queue is full: the next connect's SYN is dropped.

    The kernel retries it after a second, so a connect to it stays in
    flight about that long, until the queue has room.
    """
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    filler = socket.create_connection(listener.getsockname())
    return listener, filler


async def _move_deadline_later(scope: trio.CancelScope) -> None:
    await trio.sleep(0.2)
    scope.deadline = trio.current_time() + 30


@pytest.mark.parametrize("how", ["native-socket", "lowlevel"])
def test_connect_survives_its_deadline_moving_later(how: str) -> None:
    listener, filler = _slow_listener()
    address = listener.getsockname()

    async def main() -> None:
        sock = trio_uring.socket.socket()
        async with trio.open_nursery() as nursery:
            with trio.CancelScope(deadline=trio.current_time() + 0.4) as scope:
                nursery.start_soon(_move_deadline_later, scope)

                async def accept_soon() -> None:
                    # Make room in the queue after the first deadline passed.
                    await trio.sleep(0.6)
                    conn, _ = listener.accept()
                    conn.close()

                nursery.start_soon(accept_soon)
                if how == "lowlevel":
                    await lowlevel.connect(sock.fileno(), address)
                else:
                    await sock.connect(address)
            assert not scope.cancelled_caught
        assert sock.getpeername() == address
        sock.close()

    try:
        run(main)
    finally:
        filler.close()
        listener.close()


def test_connect_on_a_connected_socket_behaves_as_on_stock_trio() -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(5)

    async def twice() -> list[str]:
        outcomes = []
        sock = trio.socket.socket()
        for _ in range(2):
            try:
                await sock.connect(listener.getsockname())
                outcomes.append("ok")
            except OSError as exc:
                outcomes.append(f"{type(exc).__name__}({exc.errno})")
        sock.close()
        return outcomes

    try:
        stock = trio.run(twice)
        assert trio_uring.run(twice, fallback="raise") == stock
    finally:
        listener.close()


# -- waiting to write to a socket whose peer shut down its write side ---------------


def _full_pair_with_peer_shut() -> tuple[socket.socket, socket.socket]:
    a, b = socket.socketpair()
    a.setblocking(False)
    try:
        while True:
            a.send(b"x" * 65536)
    except BlockingIOError:
        pass
    b.shutdown(socket.SHUT_WR)  # a now sees POLLRDHUP, which stays set
    return a, b


def _cpu() -> float:
    usage = os.times()
    return usage.user + usage.system


@pytest.mark.parametrize("waiter", ["wait_writable", "lowlevel.poll", "send_all"])
def test_waiting_to_write_after_the_peer_shut_down_sleeps_instead_of_spinning(
    waiter: str,
) -> None:
    a, b = _full_pair_with_peer_shut()

    async def wait_one_second() -> tuple[int, float]:
        enters = io_stats().enter_calls
        cpu = _cpu()
        with trio.move_on_after(1.0):
            if waiter == "wait_writable":
                await trio.lowlevel.wait_writable(a)
            elif waiter == "lowlevel.poll":
                await lowlevel.poll(a.fileno(), select.POLLOUT)
            else:
                stream = trio.SocketStream(trio.socket.from_stdlib_socket(a))
                await stream.send_all(b"y" * 1_000_000)
            raise AssertionError("woke up although the socket never became writable")
        return io_stats().enter_calls - enters, _cpu() - cpu

    async def main() -> None:
        enters, cpu = await wait_one_second()
        # Stock Trio sleeps here: a handful of enters and no CPU to speak of
        # (a spinning wait made ~130,000 enters and a full second of CPU).
        assert enters < 50, enters
        assert cpu < 0.3, cpu

        # And it still wakes for real when room appears.
        async def drain_soon() -> None:
            await trio.sleep(0.1)
            b.setblocking(False)
            while True:
                try:
                    if not b.recv(1 << 20):
                        break
                except BlockingIOError:
                    break

        async with trio.open_nursery() as nursery:
            nursery.start_soon(drain_soon)
            with trio.fail_after(5):
                if waiter == "lowlevel.poll":
                    assert await lowlevel.poll(a.fileno(), select.POLLOUT) & select.POLLOUT
                else:
                    await trio.lowlevel.wait_writable(a)

    try:
        run(main)
    finally:
        a.close()
        b.close()


def test_closing_an_fd_wakes_a_poll_waiting_out_unwanted_bits() -> None:
    a, b = _full_pair_with_peer_shut()

    async def main() -> None:
        async def close_soon() -> None:
            await trio.sleep(0.2)
            await lowlevel.close(a.fileno())

        async with trio.open_nursery() as nursery:
            nursery.start_soon(close_soon)
            with trio.fail_after(5), pytest.raises(trio.ClosedResourceError):
                await lowlevel.poll(a.fileno(), select.POLLOUT)

    try:
        run(main)
    finally:
        a.detach()
        b.close()


# -- huge but finite deadlines --------------------------------------------------------


@pytest.mark.parametrize("far", [1e19, 1e300])
def test_a_huge_finite_deadline_just_waits(far: float) -> None:
    async def main() -> None:
        a, b = trio_uring.socket.socketpair()
        with trio.CancelScope(deadline=trio.current_time() + far):

            async def send_soon() -> None:
                await trio.sleep(0.05)
                await b.send(b"hello")

            async with trio.open_nursery() as nursery:
                nursery.start_soon(send_soon)
                assert await a.recv(10) == b"hello"
                await lowlevel.nop()
        a.close()
        b.close()

    run(main)


# -- a ring of one entry ----------------------------------------------------------------


def test_a_one_entry_ring_runs_native_ops_under_deadlines() -> None:
    async def main() -> None:
        assert io_stats().ring_entries == 1
        a, b = trio_uring.socket.socketpair()
        with trio.move_on_after(0.1) as scope:
            await a.recv(10)
        assert scope.cancelled_caught
        with trio.fail_after(5):
            await b.send(b"x")
            assert await a.recv(10) == b"x"
            await lowlevel.nop()
        a.close()
        b.close()

    run(main, entries=1)


# -- buffers given back once a cancelled op's completion has arrived ------------------


def _resizable(buffer: bytearray) -> bool:
    try:
        buffer.extend(b"!")
    except BufferError:
        return False
    del buffer[-1:]
    return True


@pytest.mark.parametrize("call", ["recv_into", "recvfrom_into", "recvmsg_into"])
def test_a_cancelled_socket_receive_leaves_the_buffer_free(call: str) -> None:
    async def main() -> None:
        a, b = trio_uring.socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
        buf = bytearray(100)
        kept: list[BaseException] = []
        with trio.move_on_after(0.1):
            try:
                if call == "recv_into":
                    await a.recv_into(buf)
                elif call == "recvfrom_into":
                    await a.recvfrom_into(buf)
                else:
                    await a.recvmsg_into([buf])
            except trio.Cancelled as exc:
                kept.append(exc)  # the traceback, and its frames, stay alive
                raise
        assert kept
        assert kept[0].__traceback__ is not None
        assert _resizable(buf)
        a.close()
        b.close()

    run(main)


@pytest.mark.parametrize("call", ["readinto", "write"])
def test_a_cancelled_file_op_leaves_the_buffer_free(call: str) -> None:
    async def main() -> None:
        r, w = os.pipe()
        if call == "write":
            os.set_blocking(w, False)
            try:
                while True:
                    os.write(w, b"x" * 65536)
            except BlockingIOError:
                pass
        if call == "readinto":
            f = await trio_uring.open_file(r, "rb", buffering=0)
        else:
            f = await trio_uring.open_file(w, "wb", buffering=0)
        buf = bytearray(100)
        kept: list[BaseException] = []
        with trio.move_on_after(0.1):
            try:
                if call == "readinto":
                    await f.readinto(buf)
                else:
                    await f.write(buf)
            except trio.Cancelled as exc:
                kept.append(exc)
                raise
        assert kept
        assert kept[0].__traceback__ is not None
        assert _resizable(buf)
        await f.aclose()
        os.close(w if call == "readinto" else r)

    run(main)
