"""Native sockets: the wiring, every method on its op path, result wins, bad inputs."""

from __future__ import annotations

import array
import errno
import os
import socket as stdsocket
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import trio
import trio.testing

import trio_uring
from trio_uring import socket as usocket
from trio_uring._core.manager import UringIOManager, running_manager
from trio_uring._core.ops import NATIVE
from trio_uring._core.settings import DataPath
from trio_uring._sockets import counts as _base
from trio_uring._sockets import receiving as _receiving
from trio_uring._sockets import socket as _socket

from .conftest import open_fds


def counts() -> dict[str, int]:
    return dict(_base.COUNTS)


def manager() -> UringIOManager:
    mgr = running_manager()
    assert mgr is not None
    return mgr


# -- wiring -------------------------------------------------------------------


def test_run_sets_the_factory_and_high_level_apis_get_native_sockets() -> None:
    async def main() -> None:
        assert isinstance(trio.socket.socket(), usocket.NativeSocket)
        listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
        port = listeners[0].socket.getsockname()[1]
        assert isinstance(listeners[0].socket, usocket.NativeSocket)
        client = await trio.open_tcp_stream("127.0.0.1", port)
        server = await listeners[0].accept()
        assert isinstance(client.socket, usocket.NativeSocket)
        assert isinstance(server.socket, usocket.NativeSocket)
        await client.send_all(b"ping")
        assert await server.receive_some() == b"ping"
        for s in (client, server, *listeners):
            await s.aclose()

    trio_uring.run(main)


def test_native_sockets_false_keeps_trios_sockets() -> None:
    async def main() -> None:
        sock = trio.socket.socket()
        assert isinstance(sock, trio.socket.SocketType)
        assert not isinstance(sock, usocket.NativeSocket)
        backend: str = trio.lowlevel.current_statistics().io_statistics.backend
        assert backend == "io_uring"
        sock.close()

    trio_uring.run(main, native_sockets=False)


def test_stock_run_and_uninstall_leave_trio_alone() -> None:
    async def kind() -> type:
        sock = trio.socket.socket()
        sock.close()
        return type(sock)

    assert trio.run(kind) is not usocket.NativeSocket
    assert trio_uring.install(fallback="raise")
    try:
        assert trio.run(kind) is usocket.NativeSocket
    finally:
        trio_uring.uninstall()
    assert trio.run(kind) is not usocket.NativeSocket
    assert trio_uring.install(fallback="raise", native_sockets=False)
    try:
        assert trio.run(kind) is not usocket.NativeSocket
    finally:
        trio_uring.uninstall()


def _trio_constructors_kinds() -> list[type]:
    """The classes trio.socket's factory-bypassing constructors return in this run."""
    a, b = trio.socket.socketpair()
    raw = stdsocket.socket()
    dup = trio.socket.fromfd(raw.fileno(), stdsocket.AF_INET, stdsocket.SOCK_STREAM)
    wrapped = trio.socket.from_stdlib_socket(raw)
    kinds = [type(x) for x in (a, b, dup, wrapped)]
    for x in (a, b, dup, wrapped):
        # Trio's close() notifies the run, which may not exist here.
        os.close(x.detach())
    return kinds


def test_trios_socketpair_fromfd_and_from_stdlib_socket_are_native_on_our_runs() -> None:
    async def kinds() -> list[type]:
        return _trio_constructors_kinds()

    async def still_checks() -> None:
        with pytest.raises(TypeError, match=r"expected object of type 'socket\.socket'"):
            trio.socket.from_stdlib_socket(1)  # type: ignore[arg-type]
        # They carry data on native ops, as the factory's sockets do.
        a, b = trio.socket.socketpair()
        with a, b:
            before = counts()["ops"]
            async with trio.open_nursery() as nursery:
                nursery.start_soon(a.recv, 4)
                await trio.testing.wait_all_tasks_blocked()
                await b.send(b"ping")
            assert counts()["ops"] > before

    assert trio_uring.run(kinds) == [usocket.NativeSocket] * 4
    trio_uring.run(still_checks)
    # Trio's own everywhere else: a stock run, native_sockets=False, no run.
    stock = trio.run(kinds)
    assert usocket.NativeSocket not in stock
    assert all(issubclass(k, trio.socket.SocketType) for k in stock)
    assert usocket.NativeSocket not in trio_uring.run(kinds, native_sockets=False)
    assert usocket.NativeSocket not in _trio_constructors_kinds()


@pytest.mark.parametrize("data_path", ["direct", "batched"])
def test_closing_the_stdlib_socket_behind_from_stdlib_socket_closes_the_connection(
    data_path: DataPath,
) -> None:
    # Trio's test_ssl does this: wrap one end of a stdlib socketpair, use
    # it, then close the stdlib object itself (no task waits on it). The
    # peer must see EOF then, as on stock Trio: no op of ours may keep the
    # file open in the kernel (receiving ahead would have, on the batched path).
    async def main() -> bytes:
        a, b = stdsocket.socketpair()
        b.settimeout(5)  # a failure is a timeout here, not a hang
        with a, b:
            stream = trio.SocketStream(trio.socket.from_stdlib_socket(a))
            b.send(b"hello")
            assert await stream.receive_some(5) == b"hello"
            async with trio.open_nursery() as nursery:
                nursery.start_soon(stream.receive_some, 5)
                await trio.testing.wait_all_tasks_blocked()
                b.send(b"again")
            a.close()  # the stdlib object, not the Trio socket
            return b.recv(10)

    assert trio_uring.run(main, fallback="raise", data_path=data_path) == b""


def test_closing_a_wrapped_stdlib_listener_stops_accepting() -> None:
    # The same for a listener that waited in accept (where a multishot
    # accept would keep accepting after the stdlib object closed).
    async def main() -> int:
        listener = stdsocket.socket()
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        address = listener.getsockname()
        wrapped = trio.socket.from_stdlib_socket(listener)
        async with trio.open_nursery() as nursery:

            async def accept_one() -> None:
                conn, _ = await wrapped.accept()
                conn.close()

            nursery.start_soon(accept_one)
            await trio.testing.wait_all_tasks_blocked()
            with stdsocket.create_connection(address, timeout=5):
                pass
        listener.close()
        probe = stdsocket.socket()
        with probe:
            return probe.connect_ex(address)

    assert trio_uring.run(main, fallback="raise") == errno.ECONNREFUSED


def test_a_woken_reader_no_longer_holds_the_socket_as_in_trio() -> None:
    """Trio's wait ends when the task is woken, not when it runs again.

    Two tasks each wait on one socket; both are woken in the same tick, and
    the one that runs first goes on to receive on the other's socket before
    that task has run. On epoll that is allowed (the other's readiness
    event has been processed); so it must be with the other parked on an op
    whose completion has been processed (Trio's test_SocketType_non_blocking_paths).
    """

    async def main() -> list[bytes]:
        a, b = stdsocket.socketpair()
        got: list[bytes] = []
        with a, b:
            ta, tb = trio.socket.from_stdlib_socket(a), trio.socket.from_stdlib_socket(b)

            async def first() -> None:
                got.append(await ta.recv(1))
                got.append(await tb.recv(1))  # tb's first reader may not have run yet

            async def second() -> None:
                got.append(await tb.recv(1))
                got.append(await ta.recv(1))

            async with trio.open_nursery() as nursery:
                nursery.start_soon(first)
                nursery.start_soon(second)
                await trio.testing.wait_all_tasks_blocked()
                # Both readers woken in the same tick: no schedule point between.
                a.send(b"b")
                b.send(b"a")
                await trio.testing.wait_all_tasks_blocked()
                a.send(b"b")
                b.send(b"a")
        return sorted(got)

    assert trio_uring.run(main) == trio.run(main) == [b"a", b"a", b"b", b"b"]


def test_native_socket_works_on_stock_trio() -> None:
    """Outside a trio_uring run a NativeSocket takes Trio's readiness path."""

    async def main() -> None:
        a, b = usocket.socketpair()
        with a, b:
            before = counts()["ops"]
            async with trio.open_nursery() as nursery:
                nursery.start_soon(lambda: a.send(b"x"))
                assert await b.recv(1) == b"x"
            listener = usocket.socket()
            await listener.bind(("127.0.0.1", 0))
            listener.listen()
            client = usocket.socket()
            async with trio.open_nursery() as nursery:
                nursery.start_soon(client.connect, listener.getsockname())
                conn, _ = await listener.accept()
            assert isinstance(conn, usocket.NativeSocket)
            for s in (conn, client, listener):
                s.close()
            assert counts()["ops"] == before

    trio.run(main)


def test_constructors() -> None:
    async def main() -> None:
        s = usocket.socket(stdsocket.AF_INET6, stdsocket.SOCK_DGRAM)
        assert (s.family, s.type) == (stdsocket.AF_INET6, stdsocket.SOCK_DGRAM)
        raw = stdsocket.socket(stdsocket.AF_UNIX, stdsocket.SOCK_STREAM)
        dup = usocket.fromfd(raw.fileno())
        assert dup.family == stdsocket.AF_UNIX
        assert dup.fileno() != raw.fileno()
        by_fd = usocket.socket(fileno=raw.detach())
        assert by_fd.family == stdsocket.AF_UNIX
        wrapped = usocket.from_stdlib_socket(stdsocket.socket())
        for x in (s, dup, by_fd, wrapped, wrapped.dup()):
            assert isinstance(x, usocket.NativeSocket)
            assert isinstance(x, trio.socket.SocketType)
            x.close()
        with pytest.raises(TypeError):
            usocket.from_stdlib_socket("not a socket")  # type: ignore[arg-type]

    trio_uring.run(main)


# -- every method on its op path (the call has to wait) ------------------------


async def blocked_then(call: Callable[[], Awaitable[Any]], unblock: Callable[[], object]) -> Any:
    """Start ``call``, make sure it waits in an op, then ``unblock``; return its result."""
    result: list[Any] = []

    async def run_call() -> None:
        result.append(await call())

    before = counts()["ops"]
    async with trio.open_nursery() as nursery:
        nursery.start_soon(run_call)
        await trio.testing.wait_all_tasks_blocked()
        assert counts()["ops"] == before + 1  # it is waiting in an io_uring op
        unblock()
    return result[0]


def test_receives_wait_as_ops() -> None:
    async def main() -> None:
        a, b = usocket.socketpair(stdsocket.AF_UNIX, stdsocket.SOCK_DGRAM)
        with a, b:
            assert await blocked_then(lambda: a.recv(10), lambda: b._sock.send(b"one")) == b"one"
            buf = bytearray(10)
            n = await blocked_then(lambda: a.recv_into(buf, 4), lambda: b._sock.send(b"twotwo"))
            assert n == 4
            assert bytes(buf[:4]) == b"twot"
            data, addr = await blocked_then(lambda: a.recvfrom(10), lambda: b._sock.send(b"3"))
            assert (data, addr) == (b"3", None)  # an unnamed peer, as the stdlib says
            arr = array.array("i", [0, 0])
            n, addr = await blocked_then(
                lambda: a.recvfrom_into(arr), lambda: b._sock.send(array.array("i", [7, 9]))
            )
            assert (n, list(arr)) == (8, [7, 9])
            # recvmsg with a file descriptor passed as ancillary data
            r, w = os.pipe()
            fds = array.array("i", [w])
            space = stdsocket.CMSG_SPACE(fds.itemsize)
            msg, anc, flags, _ = await blocked_then(
                lambda: a.recvmsg(10, space),
                lambda: b._sock.sendmsg(
                    [b"fd"], [(stdsocket.SOL_SOCKET, stdsocket.SCM_RIGHTS, fds)]
                ),
            )
            assert msg == b"fd"
            assert flags == 0
            [(level, kind, data)] = anc
            assert (level, kind) == (stdsocket.SOL_SOCKET, stdsocket.SCM_RIGHTS)
            passed = array.array("i", data)[0]
            os.write(passed, b"!")
            assert os.read(r, 1) == b"!"
            for fd in (r, w, passed):
                os.close(fd)
            parts = [bytearray(2), bytearray(3)]
            n, anc, flags, _ = await blocked_then(
                lambda: a.recvmsg_into(iter(parts)), lambda: b._sock.send(b"abcde")
            )
            assert n == 5
            assert [bytes(p) for p in parts] == [b"ab", b"cde"]
            assert anc == []

    trio_uring.run(main)


def test_udp_addresses_on_the_op_path() -> None:
    async def main() -> None:
        for family, host in ((stdsocket.AF_INET, "127.0.0.1"), (stdsocket.AF_INET6, "::1")):
            a = usocket.socket(family, stdsocket.SOCK_DGRAM)
            b = usocket.socket(family, stdsocket.SOCK_DGRAM)
            with a, b:
                await a.bind((host, 0))
                await b.bind((host, 0))
                data, addr = await blocked_then(
                    lambda a=a: a.recvfrom(100),  # type: ignore[misc]
                    lambda a=a, b=b: b._sock.sendto(b"hi", a.getsockname()),  # type: ignore[misc]
                )
                assert data == b"hi"
                assert addr == b.getsockname()
                # sendto / sendmsg with an address: direct (room in the buffer)
                assert await b.sendto(b"to", a.getsockname()) == 2
                assert await b.sendmsg([b"m", b"sg"], [], 0, a.getsockname()) == 3
                assert await a.recv(10) == b"to"
                assert await a.recv(10) == b"msg"

    trio_uring.run(main)


def fill_send_buffer(sock: usocket.NativeSocket) -> int:
    """Shrink ``sock``'s send buffer and fill it with b"x" by direct sends; bytes sent."""
    sock.setsockopt(stdsocket.SOL_SOCKET, stdsocket.SO_SNDBUF, 4096)
    sent = 0
    while True:
        try:
            sent += sock._sock.send(b"x" * 4096)
        except BlockingIOError:
            return sent


def test_sends_wait_as_ops_and_deliver_everything() -> None:
    async def main() -> None:
        a, b = usocket.socketpair()
        with a, b:
            sent = fill_send_buffer(a)
            got = bytearray()

            def drain() -> None:
                while len(got) < sent:
                    got.extend(b._sock.recv(65536))

            n = await blocked_then(lambda: a.send(b"y" * 100), drain)
            assert n == 100
            while len(got) < sent + 100:
                got.extend(await b.recv(65536))
            assert got == b"x" * sent + b"y" * 100

    trio_uring.run(main)


def test_op_path_pins_the_callers_buffers_in_place() -> None:
    """A send or receive that waits in an op uses the caller's memory, no copy.

    While the op is in flight the buffer is exported (a bytearray cannot be
    resized under the kernel); once the call returns the export is gone.
    """

    async def main() -> None:
        a, b = usocket.socketpair()
        with a, b:
            sent = fill_send_buffer(a)
            payload = bytearray(b"y" * 1000)
            seen_pinned: list[bool] = []
            got = bytearray()

            def drain() -> None:
                try:
                    payload.append(0)
                except BufferError:
                    seen_pinned.append(True)
                while len(got) < sent:
                    got.extend(b._sock.recv(65536))

            n = await blocked_then(lambda: a.sendmsg([payload]), drain)
            assert seen_pinned == [True]
            payload.append(0)  # released: resizable again
            n += await blocked_then(lambda: a.send(payload[n:1000]), drain) if n < 1000 else 0
            while len(got) < sent + n:
                got.extend(await b.recv(65536))
            assert got == b"x" * sent + b"y" * n

            # Receiving: the kernel writes into the caller's buffer itself.
            buf = bytearray(8)
            seen_pinned.clear()

            def feed() -> None:
                try:
                    buf.append(0)
                except BufferError:
                    seen_pinned.append(True)
                a._sock.send(b"12345678")

            assert await blocked_then(lambda: b.recv_into(buf), feed) == 8
            assert seen_pinned == [True]
            assert buf == b"12345678"
            buf.append(0)

    trio_uring.run(main)


def test_bulk_receivers_wait_for_readiness_and_small_ones_go_back_to_ops() -> None:
    """A waiting recv that brought bulk data makes the next one poll, then recv(2).

    ``recv`` on the op path copies once more (C buffer to bytes): worth it
    for small receives, not for bulk ones (see ``BULK_RECEIVE_BYTES``).
    """
    big = _receiving.BULK_RECEIVE_BYTES + 1

    async def waiting_recv(sock: Any, peer: Any, payload: bytes) -> tuple[bytes, int, int]:
        """``sock.recv`` that has to wait; how many polls and native ops it waited in."""
        seen: list[tuple[int, int]] = []

        def unblock() -> None:
            mgr = manager()
            fd = sock.fileno()
            native = sum(1 for op in mgr._ops.values() if op.kind == NATIVE and op.fd == fd)
            seen.append((int(fd in mgr._readers), native))
            peer._sock.sendall(payload)

        data = await blocked_then(lambda: sock.recv(1 << 20), unblock)
        return (data, *seen[0])

    async def main() -> None:
        a, b = usocket.socketpair()
        with a, b:
            b.setsockopt(stdsocket.SOL_SOCKET, stdsocket.SO_RCVBUF, 1 << 20)
            a.setsockopt(stdsocket.SOL_SOCKET, stdsocket.SO_SNDBUF, 1 << 20)
            assert not b._bulk_receiver
            data, polls, native = await waiting_recv(b, a, b"x" * big)
            assert (len(data), polls, native) == (big, 0, 1)  # an IORING_OP_RECV
            assert b._bulk_receiver
            data, polls, native = await waiting_recv(b, a, b"y" * 10)
            assert (data, polls, native) == (b"y" * 10, 1, 0)  # a poll, then recv(2)
            assert not b._bulk_receiver
            data, polls, native = await waiting_recv(b, a, b"z" * 10)
            assert (data, polls, native) == (b"z" * 10, 0, 1)

    trio_uring.run(main)


def test_accept_as_an_op_and_connect_as_trio_does() -> None:
    async def main() -> None:
        listener = usocket.socket()
        await listener.bind(("127.0.0.1", 0))
        listener.listen()
        client = usocket.socket()
        before = counts()
        async with trio.open_nursery() as nursery:
            accepted: list[Any] = []

            async def accept() -> None:
                accepted.append(await listener.accept())

            nursery.start_soon(accept)
            await trio.testing.wait_all_tasks_blocked()
            await client.connect(listener.getsockname())
        conn, addr = accepted[0]
        assert isinstance(conn, usocket.NativeSocket)
        assert addr == client.getsockname()
        after = counts()
        # The accept waited as an op; connect is Trio's own (a wait for writability).
        assert after["ops"] == before["ops"] + 1
        assert after["multishot_armed"] == before["multishot_armed"] + 1
        await client.send(b"hello")
        assert await conn.recv(10) == b"hello"
        for s in (conn, client, listener):
            s.close()

    trio_uring.run(main)


def test_single_shot_accept(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_socket, "_multishot_accept", False)

    async def main() -> None:
        listener = usocket.socket(stdsocket.AF_INET6)
        await listener.bind(("::1", 0))
        listener.listen()
        client = usocket.socket(stdsocket.AF_INET6)
        before = counts()["multishot_armed"]
        result = await blocked_then(
            listener.accept, lambda: client._sock.connect_ex(listener.getsockname())
        )
        conn, addr = result
        assert addr == client.getsockname()
        assert counts()["multishot_armed"] == before
        for s in (conn, client, listener):
            s.close()

    trio_uring.run(main)


# -- result wins -------------------------------------------------------------


@pytest.fixture
def lose_native_cancels(monkeypatch: pytest.MonkeyPatch) -> None:
    """The kernel finished the op before the cancel reached it, for sure.

    The race itself can't be steered from here, so the cancel request for
    a native op is recorded but never sent: exactly what the kernel's
    -ENOENT answer to a late cancel means.
    """
    original = UringIOManager._queue_cancel

    def lose(self: UringIOManager, target: int) -> None:
        op = self._ops.get(target)
        if op is None or op.kind != NATIVE:
            original(self, target)

    monkeypatch.setattr(UringIOManager, "_queue_cancel", lose)


async def cancelled_but_completes(
    call: Callable[[], Awaitable[Any]], complete: Callable[[], object]
) -> list[Any]:
    got: list[Any] = []
    landed: list[bool] = []

    async def waiter(task_status: trio.TaskStatus[trio.CancelScope]) -> None:
        with trio.CancelScope() as scope:
            task_status.started(scope)
            got.append(await call())
            await trio.lowlevel.checkpoint()  # the cancel lands here
            got.append("not reached")
        landed.append(scope.cancelled_caught)

    async with trio.open_nursery() as nursery:
        scope = await nursery.start(waiter)
        await trio.testing.wait_all_tasks_blocked()
        scope.cancel()
        await trio.testing.wait_all_tasks_blocked()
        assert got == []  # parked until the kernel answers
        complete()
    assert landed == [True]
    return got


def test_recv_result_wins_over_cancel(lose_native_cancels: None) -> None:
    async def main() -> None:
        a, b = usocket.socketpair()
        with a, b:
            got = await cancelled_but_completes(lambda: a.recv(100), lambda: b._sock.send(b"bytes"))
            assert got == [b"bytes"]
            assert manager().statistics().cancels_lost_to_result == 1

    trio_uring.run(main)


def test_single_shot_accept_result_wins(
    lose_native_cancels: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_socket, "_multishot_accept", False)

    async def main() -> None:
        listener = usocket.socket()
        await listener.bind(("127.0.0.1", 0))
        listener.listen()
        client = stdsocket.socket()
        got = await cancelled_but_completes(
            listener.accept, lambda: client.connect(listener.getsockname())
        )
        [(conn, addr)] = got
        assert isinstance(conn, usocket.NativeSocket)
        assert addr == client.getsockname()
        for s in (conn, client, listener):
            s.close()

    trio_uring.run(main)


def test_multishot_accept_cancelled_keeps_the_connection_for_the_next_accept() -> None:
    async def main() -> None:
        listener = usocket.socket()
        await listener.bind(("127.0.0.1", 0))
        listener.listen()
        with trio.move_on_after(0.05) as scope:
            await listener.accept()
        assert scope.cancelled_caught
        client = stdsocket.socket()
        client.connect(listener.getsockname())
        await trio.sleep(0.05)  # the multishot accept takes it meanwhile
        assert listener.is_readable()
        conn, addr = await listener.accept()
        assert addr == client.getsockname()
        for s in (conn, client, listener):
            s.close()

    trio_uring.run(main)


def test_listener_closed_first_closes_its_backlog() -> None:
    async def main() -> None:
        listener = usocket.socket()
        await listener.bind(("127.0.0.1", 0))
        listener.listen()
        with trio.move_on_after(0.01):
            await listener.accept()  # arms the multishot accept
        before = open_fds()
        clients = [stdsocket.socket() for _ in range(5)]
        for c in clients:
            c.connect(listener.getsockname())
        await trio.sleep(0.05)
        assert open_fds() == before + 10  # 5 clients + 5 accepted by the kernel for us
        listener.close()
        assert open_fds() == before + 5 - 1  # the backlog and the listener closed
        for c in clients:
            c.settimeout(5)
            assert c.recv(1) == b""  # the server side is gone: EOF, not a hang
            c.close()

    trio_uring.run(main)


def test_run_ending_with_an_armed_multishot_accept_leaks_nothing() -> None:
    """Connections accepted ahead of time stay the listener's after the run, then close with it."""
    holder: list[Any] = []
    clients = [stdsocket.socket() for _ in range(3)]
    before = open_fds()

    async def main() -> None:
        listener = usocket.socket()
        await listener.bind(("127.0.0.1", 0))
        listener.listen()
        with trio.move_on_after(0.01):
            await listener.accept()
        for c in clients:
            c.connect(listener.getsockname())
        await trio.sleep(0.05)
        holder.append(listener)

    trio_uring.run(main)
    listener = holder.pop()
    assert open_fds() == before + 1 + 3  # the listener and its backlog
    with listener:
        pass
    assert open_fds() == before
    for c in clients:
        assert c.recv(1) == b""
        c.close()


def test_close_wakes_a_waiting_accept_and_recv() -> None:
    async def main() -> None:
        listener = usocket.socket()
        await listener.bind(("127.0.0.1", 0))
        listener.listen()
        a, b = usocket.socketpair()

        async def expect_closed(call: Callable[[], Awaitable[Any]]) -> None:
            with pytest.raises(trio.ClosedResourceError):
                await call()

        async with trio.open_nursery() as nursery:
            nursery.start_soon(expect_closed, listener.accept)
            nursery.start_soon(expect_closed, lambda: a.recv(1))
            await trio.testing.wait_all_tasks_blocked()
            listener.close()
            a.close()
        b.close()

    trio_uring.run(main)


def test_cancelled_connect_closes_the_socket() -> None:
    async def main() -> None:
        sock = usocket.socket()
        with trio.CancelScope() as scope:
            scope.cancel()
            await sock.connect(("127.0.0.1", 9))
        assert scope.cancelled_caught
        assert sock.fileno() == -1

    trio_uring.run(main)


# -- the same exceptions as Trio's socket ------------------------------------

BAD_CALLS: list[tuple[str, Callable[[Any, Any], Awaitable[Any]]]] = [
    ("recv str", lambda s, _: s.recv("haha")),
    ("recv negative", lambda s, _: s.recv(-1)),
    ("recv_into bytes", lambda s, _: s.recv_into(b"immutable")),
    ("recv_into too long", lambda s, _: s.recv_into(bytearray(2), 5)),
    ("recvfrom_into too long", lambda s, _: s.recvfrom_into(bytearray(2), 5)),
    ("recvmsg negative", lambda s, _: s.recvmsg(-1)),
    ("recvmsg_into not iterable", lambda s, _: s.recvmsg_into(5)),
    ("recvmsg_into bytes", lambda s, _: s.recvmsg_into([b"x"])),
    ("send int", lambda s, _: s.send(5)),
    ("send str", lambda s, _: s.send("text")),
    ("sendmsg not iterable", lambda s, _: s.sendmsg(5)),
    ("sendmsg bad ancdata", lambda s, _: s.sendmsg([b"x"], [(1, 2)])),
    ("sendto no address", lambda s, _: s.sendto(b"x")),
    ("sendto bad address", lambda s, _: s.sendto(b"x", "nope")),
    ("sendto bad port", lambda s, _: s.sendto(b"x", ("127.0.0.1", 70000))),
    ("connect str", lambda s, _: s.connect("localhost")),
    ("connect refused", lambda s, _: s.connect(("127.0.0.1", 2))),
    ("accept not listening", lambda s, _: s.accept()),
    ("recv on unconnected", lambda s, _: s.recv(1)),
    ("send on unconnected", lambda s, _: s.send(b"x")),
    ("recv bad flags", lambda _, c: c.recv(1, "flags")),
]


def _describe(exc: BaseException) -> tuple[type, tuple[Any, ...]]:
    return type(exc), exc.args


async def _outcomes() -> list[tuple[type, tuple[Any, ...]]]:
    results = []
    listener = trio.socket.socket()
    await listener.bind(("127.0.0.1", 0))
    listener.listen()
    for _, call in BAD_CALLS:
        fresh = trio.socket.socket()
        connected = trio.socket.socket()
        await connected.connect(listener.getsockname())
        with fresh, connected:
            try:
                with trio.fail_after(5):
                    await call(fresh, connected)
            except Exception as exc:
                results.append(_describe(exc))
            else:
                results.append((type(None), ()))
    listener.close()
    return results


def test_bad_inputs_raise_what_trios_socket_raises() -> None:
    stock = trio.run(_outcomes)
    native = trio_uring.run(_outcomes)
    assert all(kind is not type(None) for kind, _ in stock)  # every call is bad
    for (name, _), a, b in zip(BAD_CALLS, stock, native, strict=True):
        assert a == b, name


def test_two_tasks_receiving_is_a_busy_error_as_in_trio() -> None:
    async def main() -> None:
        a, b = usocket.socketpair()
        with a, b:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(a.recv, 1)
                await trio.testing.wait_all_tasks_blocked()
                with pytest.raises(trio.BusyResourceError):
                    await a.recv(1)
                nursery.cancel_scope.cancel()

    trio_uring.run(main)
    trio.run(main)


def test_a_reader_waiting_for_readiness_inside_an_op_still_holds_the_socket() -> None:
    """``MSG_DONTWAIT`` makes the op answer EAGAIN and wait for readiness instead.

    That task still waits to read the socket, so a second reader gets
    ``BusyResourceError``, as on stock Trio.
    """

    async def main() -> None:
        a, b = trio.socket.socketpair()
        with a, b, trio.fail_after(5):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(a.recv, 1, stdsocket.MSG_DONTWAIT)
                await trio.testing.wait_all_tasks_blocked()
                # Two bytes: a second reader that wrongly got in still ends.
                nursery.start_soon(b.send, b"xy")
                with pytest.raises(trio.BusyResourceError):
                    await a.recv(1)

    trio_uring.run(main)
    trio.run(main)


def test_msg_dontwait_still_waits_like_trio() -> None:
    """The kernel answers -EAGAIN to MSG_DONTWAIT; the call still waits, as Trio's does."""

    async def main() -> None:
        a, b = usocket.socketpair()
        with a, b:
            got = await blocked_then(
                lambda: a.recv(5, stdsocket.MSG_DONTWAIT), lambda: b._sock.send(b"late")
            )
            assert got == b"late"

    trio_uring.run(main)


def test_errors_on_the_op_path_are_the_stdlibs() -> None:
    async def main() -> None:
        a, b = usocket.socketpair()
        with a:
            b._sock.setsockopt(stdsocket.SOL_SOCKET, stdsocket.SO_LINGER, b"\x01\0\0\0\0\0\0\0")

            async def reset() -> None:
                await trio.testing.wait_all_tasks_blocked()
                b.close()

            async with trio.open_nursery() as nursery:
                nursery.start_soon(reset)
                # An AF_UNIX peer closing is EOF, not a reset.
                assert await a.recv(1) == b""
            with pytest.raises(BrokenPipeError) as info:
                await a.send(b"x")
            assert info.value.errno == errno.EPIPE

    trio_uring.run(main)
