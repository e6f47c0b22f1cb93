"""``trio_uring.lowlevel``: data ops on pipes and sockets, compared with the stdlib.

Cancellation (result wins, confirmed cancels) and pinning are tested here
too; file-system ops are in ``test_lowlevel_fs.py``, argument checks in
``test_lowlevel_args.py``.
"""

from __future__ import annotations

import array
import contextlib
import errno
import gc
import os
import random
import select
import socket
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import trio
import trio.testing

from trio_uring import UringStatistics, lowlevel
from trio_uring._core.abi import OP
from trio_uring._core.manager import UringIOManager
from trio_uring._core.ops import NATIVE

from .lowlevel_helpers import assert_same_error, holds, manager, run


class Buffer(bytearray):
    """A bytearray that can be weakly referenced, to watch its lifetime."""


@contextmanager
def pipe() -> Iterator[tuple[int, int]]:
    r, w = os.pipe()
    try:
        yield r, w
    finally:
        for fd in (r, w):
            with contextlib.suppress(OSError):  # the test may have closed it itself
                os.close(fd)


@contextmanager
def socketpair(kind: int = socket.SOCK_STREAM) -> Iterator[tuple[socket.socket, socket.socket]]:
    a, b = socket.socketpair(socket.AF_UNIX, kind)
    # Trio's sockets are non-blocking; io_uring must wait on them anyway.
    a.setblocking(False)
    b.setblocking(False)
    with a, b:
        yield a, b


@contextmanager
def tcp_listener() -> Iterator[socket.socket]:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    listener.setblocking(False)
    with listener:
        yield listener


# ----------------------------------------------------------------------
# read / write / readv / writev
# ----------------------------------------------------------------------


def test_read_write_on_a_pipe() -> None:
    async def main() -> None:
        with pipe() as (r, w):
            assert await lowlevel.write(w, b"hello") == 5
            assert await lowlevel.read(r, 3) == b"hel"
            assert await lowlevel.read(r, 100) == b"lo"
            buf = bytearray(8)
            os.write(w, b"abc")
            assert await lowlevel.readinto(r, buf) == 3
            assert buf == b"abc" + bytes(5)
            # A memoryview slice is a target too: only its bytes change.
            os.write(w, b"XY")
            assert await lowlevel.readinto(r, memoryview(buf)[4:6]) == 2
            assert buf == b"abc\0XY\0\0"
            os.close(w)
            assert await lowlevel.read(r, 10) == b""  # end of file, as os.read

    run(main)


def test_read_and_write_match_os_pread_pwrite_and_the_file_position(tmp_path: Any) -> None:
    rng = random.Random(1234)
    content = rng.randbytes(10000)
    path = tmp_path / "data"
    path.write_bytes(content)

    async def main() -> None:
        fd = os.open(path, os.O_RDWR)
        try:
            for _ in range(20):
                off = rng.randrange(0, 11000)
                size = rng.randrange(0, 3000)
                assert await lowlevel.read(fd, size, off) == os.pread(fd, size, off)
            assert os.lseek(fd, 0, os.SEEK_CUR) == 0  # offsets leave the position alone
            assert await lowlevel.read(fd, 100) == content[:100]
            assert await lowlevel.read(fd, 50) == content[100:150]
            assert os.lseek(fd, 0, os.SEEK_CUR) == 150  # -1 reads at and advances it
            assert await lowlevel.write(fd, b"WXYZ", 9998) == 4
            assert os.pread(fd, 10, 9995) == content[9995:9998] + b"WXYZ"
            assert await lowlevel.write(fd, b"at-pos") == 6
            assert os.lseek(fd, 0, os.SEEK_CUR) == 156
            assert os.pread(fd, 6, 150) == b"at-pos"
        finally:
            os.close(fd)

    run(main)


def test_readv_writev_match_os(tmp_path: Any) -> None:
    path = tmp_path / "v"
    path.write_bytes(bytes(range(256)) * 4)

    async def main() -> None:
        fd = os.open(path, os.O_RDWR)
        try:
            ours: list[Any] = [bytearray(3), bytearray(0), bytearray(10), array.array("i", [0, 0])]
            theirs: list[Any] = [
                bytearray(3),
                bytearray(0),
                bytearray(10),
                array.array("i", [0, 0]),
            ]
            assert await lowlevel.readv(fd, ours, 100) == os.preadv(fd, theirs, 100) == 21
            assert ours == theirs
            assert await lowlevel.readv(fd, ours) == os.preadv(fd, theirs, 0)
            assert ours == theirs
            assert os.lseek(fd, 0, os.SEEK_CUR) == 21
            chunks: list[Any] = [b"ab", bytearray(b"cd"), memoryview(b"xefx")[1:3], b""]
            assert await lowlevel.writev(fd, chunks, 500) == 6
            assert os.pread(fd, 6, 500) == b"abcdef"
            assert await lowlevel.writev(fd, chunks) == 6
            assert os.pread(fd, 6, 21) == b"abcdef"
            assert await lowlevel.readv(fd, []) == 0  # as os.readv(fd, [])
        finally:
            os.close(fd)

    run(main)


def test_read_waits_even_on_a_non_blocking_pipe() -> None:
    async def main() -> None:
        with pipe() as (r, w):
            os.set_blocking(r, False)
            async with trio.open_nursery() as nursery:

                async def writer() -> None:
                    await trio.testing.wait_all_tasks_blocked()
                    os.write(w, b"late")

                nursery.start_soon(writer)
                assert await lowlevel.read(r, 10) == b"late"

    run(main)


# ----------------------------------------------------------------------
# recv / send / recvmsg / sendmsg
# ----------------------------------------------------------------------


def test_recv_send_and_flags() -> None:
    async def main() -> None:
        with socketpair() as (a, b):
            assert await lowlevel.send(a, b"hello world") == 11
            assert await lowlevel.recv(b.fileno(), 5, socket.MSG_PEEK) == b"hello"
            buf = bytearray(20)
            assert await lowlevel.recv_into(b, buf, 5) == 5
            assert buf[:6] == b"hello\0"
            assert await lowlevel.recv_into(b, memoryview(buf)[10:]) == 6
            assert buf[10:16] == b" world"
            with pytest.raises(BlockingIOError):
                await lowlevel.recv(b, 10, socket.MSG_DONTWAIT)
            a.shutdown(socket.SHUT_WR)
            assert await lowlevel.recv(b, 10) == b""

    run(main)


def test_send_to_a_closed_peer_is_broken_pipe_not_sigpipe() -> None:
    async def main() -> None:
        with socketpair() as (a, b):
            b.close()
            with pytest.raises(BrokenPipeError):
                await lowlevel.send(a, b"x")

    run(main)


def test_sendmsg_recvmsg_on_a_stream_match_the_stdlib() -> None:
    async def main() -> None:
        with socketpair() as (a, b):
            assert await lowlevel.sendmsg(a, [b"one", memoryview(b"two")]) == 6
            ours = await lowlevel.recvmsg(b, 100)
            a.sendmsg([b"one", b"two"])
            b.setblocking(True)
            assert ours == b.recvmsg(100) == (b"onetwo", [], 0, None)

    run(main)


def test_recvmsg_truncation_flags_match_the_stdlib() -> None:
    async def main() -> None:
        with socketpair(socket.SOCK_DGRAM) as (a, b):
            a.send(b"0123456789")
            ours = await lowlevel.recvmsg(b, 4)
            a.send(b"0123456789")
            theirs = b.recvmsg(4)
            assert ours == theirs
            assert ours[:3] == (b"0123", [], socket.MSG_TRUNC)

    run(main)


def test_scm_rights_round_trip_matches_the_stdlib() -> None:
    async def main() -> None:
        with socketpair() as (a, b), pipe() as (r, w):
            fds = array.array("i", [r, w])
            anc = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, fds)]
            assert await lowlevel.sendmsg(a, [b"fds"], anc) == 3
            data, ancdata, flags, address = await lowlevel.recvmsg(
                b, 10, socket.CMSG_SPACE(2 * fds.itemsize)
            )
            a.sendmsg([b"fds"], anc)
            b.setblocking(True)
            std = b.recvmsg(10, socket.CMSG_SPACE(2 * fds.itemsize))
            received: list[int] = []
            for got in (ancdata, std[1]):
                assert len(got) == 1
                level, kind, payload = got[0]
                assert (level, kind, len(payload)) == (socket.SOL_SOCKET, socket.SCM_RIGHTS, 8)
                received += array.array("i", payload)
            assert (data, flags, address) == std[0:1] + std[2:] == (b"fds", 0, None)
            try:
                # The fds we got really are the pipe: write through ours.
                os.write(received[1], b"via passed fd")
                assert os.read(r, 100) == b"via passed fd"
            finally:
                for fd in received:
                    os.close(fd)

    run(main)


def test_truncated_ancillary_data_matches_the_stdlib() -> None:
    async def main() -> None:
        with socketpair() as (a, b), pipe() as (r, w):
            fds = array.array("i", [r, w, r])
            anc = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, fds)]
            small = socket.CMSG_LEN(4)  # room for one fd of three
            a.sendmsg([b"x"], anc)
            ours = await lowlevel.recvmsg(b, 10, small)
            a.sendmsg([b"x"], anc)
            b.setblocking(True)
            theirs = b.recvmsg(10, small)
            assert ours[2] == theirs[2]
            assert ours[2] & socket.MSG_CTRUNC
            assert [(lv, t, len(d)) for lv, t, d in ours[1]] == [
                (lv, t, len(d)) for lv, t, d in theirs[1]
            ]
            for _, _, payload in ours[1] + theirs[1]:
                for fd in array.array("i", payload):
                    os.close(fd)

    run(main)


def test_udp_sendmsg_to_an_address_and_recvmsg_from_it() -> None:
    async def main() -> None:
        rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        with rx, tx:
            rx.bind(("127.0.0.1", 0))
            tx.bind(("127.0.0.1", 0))
            assert await lowlevel.sendmsg(tx, [b"dgram"], (), 0, rx.getsockname()) == 5
            data, anc, flags, address = await lowlevel.recvmsg(rx, 100)
            assert (data, anc, flags) == (b"dgram", [], 0)
            tx.sendto(b"dgram", rx.getsockname())
            assert address == rx.recvmsg(100)[3] == tx.getsockname()

    run(main)


def test_udp6_and_unix_datagram_addresses_match_the_stdlib(tmp_path: Any) -> None:
    async def main() -> None:
        if not socket.has_ipv6:
            pytest.skip("no IPv6 in this Python")  # pragma: no cover
        rx = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
        tx = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
        with rx, tx:
            try:
                rx.bind(("::1", 0))
            except OSError:  # pragma: no cover - a host without ::1
                pytest.skip("no IPv6 loopback here")
            tx.bind(("::1", 0))
            await lowlevel.sendmsg(tx, [b"six"], (), 0, rx.getsockname()[:2])
            ours = await lowlevel.recvmsg(rx, 10)
            tx.sendto(b"six", rx.getsockname())
            assert ours == rx.recvmsg(10)
            assert ours[3] == tx.getsockname()
        rx = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        tx = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        with rx, tx:
            rx.bind(str(tmp_path / "rx"))
            tx.bind(str(tmp_path / "tx"))
            await lowlevel.sendmsg(tx, [b"u"], (), 0, tmp_path / "rx")
            ours = await lowlevel.recvmsg(rx, 10)
            tx.sendto(b"u", str(tmp_path / "rx"))
            assert ours == rx.recvmsg(10)
            assert ours[3] == str(tmp_path / "tx")
            # An abstract-namespace sender comes back as bytes, as the stdlib says.
            abstract = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            with abstract:
                abstract.bind(b"\0trio-uring-test-%d" % os.getpid())
                await lowlevel.sendmsg(abstract, [b"a"], (), 0, str(tmp_path / "rx"))
                ours = await lowlevel.recvmsg(rx, 10)
                abstract.sendto(b"a", str(tmp_path / "rx"))
                assert ours == rx.recvmsg(10)
                assert ours[3] == abstract.getsockname()

    run(main)


# ----------------------------------------------------------------------
# accept / connect / shutdown / close
# ----------------------------------------------------------------------


def test_accept_and_connect_over_tcp() -> None:
    async def main() -> None:
        with tcp_listener() as listener, socket.socket() as client:
            client.setblocking(False)
            async with trio.open_nursery() as nursery:
                nursery.start_soon(lowlevel.connect, client.fileno(), listener.getsockname())
                fd, address = await lowlevel.accept(listener)
            try:
                assert address == client.getsockname()
                # accept4(SOCK_NONBLOCK | SOCK_CLOEXEC), as the docs promise.
                assert not os.get_blocking(fd)
                assert not os.get_inheritable(fd)
                await lowlevel.send(client, b"ping")
                assert await lowlevel.recv(fd, 10) == b"ping"
                await lowlevel.shutdown(fd, socket.SHUT_WR)
                assert await lowlevel.recv(client, 10) == b""
            finally:
                await lowlevel.close(fd)
            with pytest.raises(OSError, match="Bad file descriptor") as info:
                os.fstat(fd)
            assert info.value.errno == errno.EBADF

    run(main)


def test_accept_on_unix_socket_reports_the_peer_as_the_stdlib(tmp_path: Any) -> None:
    async def main() -> None:
        path = str(tmp_path / "sock")
        with socket.socket(socket.AF_UNIX) as listener:
            listener.bind(path)
            listener.listen()
            with socket.socket(socket.AF_UNIX) as c1, socket.socket(socket.AF_UNIX) as c2:
                await lowlevel.connect(c1, path)
                fd, ours = await lowlevel.accept(listener)
                os.close(fd)
                c2.connect(path)
                conn, theirs = listener.accept()
                conn.close()
                assert ours == theirs == ""  # an unbound client has an empty name

    run(main)


def test_connect_errors_match_the_stdlib() -> None:
    async def main() -> None:
        with tcp_listener() as listener:
            closed_port = listener.getsockname()
        with socket.socket() as ours, socket.socket() as theirs:
            ours.setblocking(False)
            await assert_same_error(
                lambda: lowlevel.connect(ours, closed_port), lambda: theirs.connect(closed_port)
            )
        with pipe() as (r, _):
            with pytest.raises(OSError, match="Socket operation on non-socket") as info:
                await lowlevel.connect(r, ("127.0.0.1", 1))
            assert info.value.errno == errno.ENOTSOCK
        s = socket.socket()
        fd = s.detach()
        os.close(fd)
        with pytest.raises(OSError, match="Bad file descriptor") as info:
            await lowlevel.connect(fd, ("127.0.0.1", 1))
        assert info.value.errno == errno.EBADF

    run(main)


def test_connect_resolves_names_with_trios_resolver() -> None:
    class Resolver(trio.abc.HostnameResolver):
        async def getaddrinfo(self, host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
            assert host in ("uring.test", b"uring.test")
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", 0))]

        async def getnameinfo(self, *args: Any) -> Any:
            raise NotImplementedError

    async def main() -> None:
        trio.socket.set_custom_hostname_resolver(Resolver())
        with tcp_listener() as listener, socket.socket() as client:
            port = listener.getsockname()[1]
            await lowlevel.connect(client, ("uring.test", port))
            assert client.getpeername() == ("127.0.0.1", port)

    run(main)


def test_accept_on_a_socket_that_is_not_listening_matches_the_stdlib() -> None:
    async def main() -> None:
        with socket.socket() as s:
            await assert_same_error(lambda: lowlevel.accept(s), s.accept)

    run(main)


def test_close_wakes_waiters_and_closes_even_when_cancelled() -> None:
    async def main() -> None:
        with socketpair() as (a, _):
            fd = os.dup(a.fileno())
            errors: list[BaseException] = []

            async def waiter() -> None:
                try:
                    await lowlevel.recv(fd, 10)
                except trio.ClosedResourceError as exc:
                    errors.append(exc)

            async with trio.open_nursery() as nursery:
                nursery.start_soon(waiter)
                await trio.testing.wait_all_tasks_blocked()
                await lowlevel.close(fd)
            assert len(errors) == 1
            fd2 = os.dup(a.fileno())
            with trio.CancelScope() as scope:
                scope.cancel()
                await lowlevel.close(fd2)
            assert scope.cancelled_caught
            with pytest.raises(OSError, match="Bad file descriptor") as info:
                os.fstat(fd2)  # closed all the same
            assert info.value.errno == errno.EBADF
            await assert_same_error(lambda: lowlevel.close(fd2), lambda: os.close(fd2))

    run(main)


# ----------------------------------------------------------------------
# poll / nop / cancel_fd / statistics
# ----------------------------------------------------------------------


def test_poll_reports_revents_like_poll2() -> None:
    async def main() -> None:
        with pipe() as (r, w):
            assert await lowlevel.poll(w, select.POLLOUT) == select.POLLOUT
            os.write(w, b"x")
            assert await lowlevel.poll(r, select.POLLIN | select.POLLPRI) == select.POLLIN
            os.close(w)
            # HUP comes unasked, as poll(2) reports it.
            assert await lowlevel.poll(r, select.POLLIN) == select.POLLIN | select.POLLHUP
        with socketpair() as (a, b):
            b.shutdown(socket.SHUT_WR)
            # The kernel also says RDHUP here; it was not asked for, so it is
            # masked off, as poll(2) would.
            assert await lowlevel.poll(a, select.POLLOUT) == select.POLLOUT

    run(main)


def test_nop_and_statistics() -> None:
    async def main() -> None:
        before = lowlevel.statistics()
        assert isinstance(before, UringStatistics)
        assert before.backend == "io_uring"
        await lowlevel.nop()
        after = lowlevel.statistics()
        assert after.sqes_submitted > before.sqes_submitted
        io_stats: Any = trio.lowlevel.current_statistics().io_statistics
        assert io_stats.sqes_submitted == after.sqes_submitted

    run(main)


def test_cancel_fd_cancels_every_op_on_the_fd_with_ecanceled() -> None:
    async def main() -> None:
        with pipe() as (r, w), pipe() as (other, _):
            assert await lowlevel.cancel_fd(r) == 0  # nothing in flight
            errors: list[int | None] = []

            async def reader(fd: int) -> None:
                try:
                    await lowlevel.read(fd, 10)
                except OSError as exc:
                    errors.append(exc.errno)

            async with trio.open_nursery() as nursery:
                nursery.start_soon(reader, r)
                nursery.start_soon(reader, r)
                nursery.start_soon(reader, other)
                await trio.testing.wait_all_tasks_blocked()
                assert await lowlevel.cancel_fd(r) == 2
                await trio.testing.wait_all_tasks_blocked()
                assert errors == [errno.ECANCELED, errno.ECANCELED]
                nursery.cancel_scope.cancel()  # the reader on `other` was untouched
            # The fd is still open and nothing was consumed.
            os.write(w, b"still")
            assert await lowlevel.read(r, 10) == b"still"

    run(main)


# ----------------------------------------------------------------------
# cancellation: result wins, confirmed cancels, pins
# ----------------------------------------------------------------------


def cancel_when_cqe_arrives(monkeypatch: pytest.MonkeyPatch, opcode: int) -> list[Any]:
    """Cancel a scope after the op's CQE is posted but before its task runs.

    The returned list takes the scope to cancel. Deterministic: the abort
    finds the op already in the kernel (a cancel request is queued, too
    late), then the same process_events call delivers the real result.
    """
    scopes: list[Any] = []
    original = UringIOManager.process_events

    def hook(self: UringIOManager, events: Any) -> None:
        for ud in events[0] if events else ():
            op = self._ops.get(ud)
            if op is not None and op.kind == NATIVE and op.opcode == opcode and scopes:
                scopes.pop().cancel()
        original(self, events)

    monkeypatch.setattr(UringIOManager, "process_events", hook)
    return scopes


def test_accept_result_wins_over_a_cancel(monkeypatch: pytest.MonkeyPatch) -> None:
    scopes = cancel_when_cqe_arrives(monkeypatch, OP["ACCEPT"])

    async def main() -> None:
        with tcp_listener() as listener, socket.socket() as client:
            got: list[tuple[int, Any]] = []
            landed: list[bool] = []

            async def acceptor() -> None:
                with trio.CancelScope() as scope:
                    scopes.append(scope)
                    got.append(await lowlevel.accept(listener))
                    await trio.lowlevel.checkpoint()  # the Cancelled lands here
                landed.append(scope.cancelled_caught)

            async with trio.open_nursery() as nursery:
                nursery.start_soon(acceptor)
                await trio.testing.wait_all_tasks_blocked()
                client.connect(listener.getsockname())
            assert landed == [True]
            assert len(got) == 1
            fd, address = got[0]
            try:
                assert address == client.getsockname()
                client.send(b"not lost")
                assert await lowlevel.recv(fd, 20) == b"not lost"
            finally:
                os.close(fd)
            stats = manager().statistics()
            assert (stats.cancels_requested, stats.cancels_lost_to_result) == (1, 1)

    run(main)


def test_recv_result_wins_over_a_cancel(monkeypatch: pytest.MonkeyPatch) -> None:
    scopes = cancel_when_cqe_arrives(monkeypatch, OP["RECV"])

    async def main() -> None:
        with socketpair() as (a, b):
            got: list[bytes] = []

            async def receiver() -> None:
                with trio.CancelScope() as scope:
                    scopes.append(scope)
                    got.append(await lowlevel.recv(b, 100))
                    await trio.lowlevel.checkpoint()
                assert scope.cancelled_caught

            async with trio.open_nursery() as nursery:
                nursery.start_soon(receiver)
                await trio.testing.wait_all_tasks_blocked()
                a.send(b"racing bytes")
            assert got == [b"racing bytes"]
            assert manager().statistics().cancels_lost_to_result == 1

    run(main)


def test_a_confirmed_cancel_consumes_nothing() -> None:
    async def main() -> None:
        with socketpair() as (a, b):
            with trio.move_on_after(0.05) as scope:
                await lowlevel.recv(b, 100)
            assert scope.cancelled_caught
            with trio.CancelScope() as scope:
                scope.cancel()
                await lowlevel.recv(b, 100)  # cancelled before it was submitted
            assert scope.cancelled_caught
            a.send(b"intact")
            assert await lowlevel.recv(b, 100) == b"intact"

    run(main)


def _ops_on(fd: int) -> list[Any]:
    return list(manager().native_ops_on(fd))


@pytest.mark.parametrize("kind", ["readinto", "recv_into", "readv", "recvmsg", "sendmsg"])
def test_the_op_record_pins_the_buffers_until_the_cqe(kind: str) -> None:
    """While an op is in the kernel its record holds the caller's buffer; after, nothing does."""
    watched: list[weakref.ref[Buffer]] = []

    async def main() -> None:
        with socketpair() as (_, b):
            buf = Buffer(64)
            watched.append(weakref.ref(buf))
            fd = b.fileno()
            if kind == "sendmsg":
                # Fill the socket so the sendmsg must wait in the kernel.
                with contextlib.suppress(BlockingIOError):
                    while True:
                        b.send(b"x" * 65536)

            async def op_under_test(target: Buffer) -> None:
                if kind == "readinto":
                    await lowlevel.readinto(fd, target)
                elif kind == "recv_into":
                    await lowlevel.recv_into(fd, target)
                elif kind == "readv":
                    await lowlevel.readv(fd, [bytearray(1), target])
                elif kind == "recvmsg":
                    await lowlevel.recvmsg(fd, 64, 64)
                else:
                    await lowlevel.sendmsg(fd, [target], [], 0)

            async with trio.open_nursery() as nursery:
                nursery.start_soon(op_under_test, buf)
                await trio.testing.wait_all_tasks_blocked()
                (op,) = _ops_on(fd)
                if kind == "recvmsg":
                    # No user buffer: the msghdr and everything it points to.
                    msg, data, iov, name, control = op.pins
                    assert msg.msg_iov == iov
                    assert iov.iov_base == data
                    assert msg.msg_name == name
                    assert msg.msg_control == control
                else:
                    assert holds(op.pins, buf)
                    # A pinned bytearray cannot move: resizing it is refused.
                    with pytest.raises(BufferError):
                        buf.extend(b"more")
                nursery.cancel_scope.cancel()
            assert _ops_on(fd) == []
            del buf

    run(main)
    gc.collect()
    assert watched[0]() is None


def test_many_ops_on_many_pipes_all_complete_in_order() -> None:
    """A seeded mix of concurrent reads and writes: every byte arrives, in order."""
    rng = random.Random(99)
    messages = [[rng.randbytes(rng.randrange(1, 200)) for _ in range(20)] for _ in range(10)]

    async def main() -> None:
        pipes = [os.pipe() for _ in messages]
        received: dict[int, bytes] = {}
        try:

            async def writer(w: int, chunks: list[bytes]) -> None:
                for chunk in chunks:
                    view = memoryview(chunk)
                    while view:
                        view = view[await lowlevel.write(w, view) :]

            async def reader(i: int, r: int, total: int) -> None:
                data = b""
                while len(data) < total:
                    data += await lowlevel.read(r, rng.randrange(1, 300))
                received[i] = data

            async with trio.open_nursery() as nursery:
                for i, ((r, w), chunks) in enumerate(zip(pipes, messages, strict=True)):
                    nursery.start_soon(writer, w, chunks)
                    nursery.start_soon(reader, i, r, sum(map(len, chunks)))
        finally:
            for r, w in pipes:
                os.close(r)
                os.close(w)
        assert received == {i: b"".join(chunks) for i, chunks in enumerate(messages)}

    run(main)
