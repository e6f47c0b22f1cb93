"""``trio_uring.lowlevel`` refuses bad arguments before the kernel sees them.

Wherever the stdlib has the same check, type and message are compared with
it; elsewhere the rule from the docs is asserted. Also: the refusal on a run
that is not on io_uring, and the probe gate.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import trio

from trio_uring import lowlevel
from trio_uring._core import structs as _lowlevel_structs
from trio_uring._core.abi import OP
from trio_uring._core.manager import UringIOManager

from .lowlevel_helpers import assert_same_error, manager, run


@contextmanager
def sockets() -> Iterator[tuple[socket.socket, socket.socket]]:
    a, b = socket.socketpair()
    with a, b:
        yield a, b


def nothing_submitted(check: Callable[[], Awaitable[None]]) -> None:
    """Run ``check`` and assert it queued no SQE: the kernel saw nothing."""

    async def main() -> None:
        before = manager().statistics().sqes_submitted
        await check()
        assert manager().statistics().sqes_submitted == before

    run(main)


def test_read_only_and_non_contiguous_targets_are_type_errors() -> None:
    async def check() -> None:
        with sockets() as (a, _):
            r = a.fileno()
            bads: list[Any] = [b"", b"abc", memoryview(b"abc"), memoryview(bytearray(10))[::2]]
            for bad in [*bads, "str", 5]:
                message = f"must be read-write bytes-like object, not {type(bad).__name__}"
                with pytest.raises(TypeError, match=message):
                    await lowlevel.recv_into(r, bad)
                with pytest.raises(TypeError, match=message):
                    await lowlevel.readinto(r, bad)
                with pytest.raises(TypeError, match=message):
                    await lowlevel.readv(r, [bytearray(1), bad])
            # The stdlib's own refusal, for comparison.
            with pytest.raises(TypeError, match="read-write bytes-like object, not bytes"):
                a.recv_into(b"")

    nothing_submitted(check)


def test_lengths_never_exceed_the_buffer_and_sizes_are_not_negative() -> None:
    async def check() -> None:
        with sockets() as (a, _):
            buf = bytearray(4)
            await assert_same_error(
                lambda: lowlevel.recv_into(a, buf, 5), lambda: a.recv_into(buf, 5)
            )
            await assert_same_error(
                lambda: lowlevel.recv_into(a, buf, -1), lambda: a.recv_into(buf, -1)
            )
            await assert_same_error(lambda: lowlevel.recv(a, -1), lambda: a.recv(-1))
            await assert_same_error(lambda: lowlevel.recvmsg(a, -1), lambda: a.recvmsg(-1))
            await assert_same_error(lambda: lowlevel.recvmsg(a, 1, -1), lambda: a.recvmsg(1, -1))
            with pytest.raises(ValueError, match="negative value for 'size' not allowed"):
                await lowlevel.read(a, -1)
            # A view's length counts in bytes, whatever its item size.
            import array

            ints = array.array("i", [0, 0])
            with pytest.raises(ValueError, match="buffer too small"):
                await lowlevel.recv_into(a, ints, 9)

    nothing_submitted(check)


def test_wrong_types_and_bad_fds_fail_as_the_stdlib() -> None:
    async def check() -> None:
        r, w = os.pipe()
        try:
            await assert_same_error(lambda: lowlevel.read(r, 1.5), lambda: os.read(r, 1.5))  # type: ignore[arg-type]
            await assert_same_error(lambda: lowlevel.write(w, "str"), lambda: os.write(w, "str"))  # type: ignore[arg-type]
            noncontig = memoryview(bytearray(10))[::2]
            await assert_same_error(
                lambda: lowlevel.write(w, noncontig), lambda: os.write(w, noncontig)
            )
            await assert_same_error(
                lambda: lowlevel.writev(w, [b"a", noncontig]),
                lambda: os.writev(w, [b"a", noncontig]),
            )
            await assert_same_error(lambda: lowlevel.fsync(-1), lambda: os.fsync(-1))
            await assert_same_error(lambda: lowlevel.fsync("3"), lambda: os.fsync("3"))  # type: ignore[arg-type]
            await assert_same_error(lambda: lowlevel.read(2**40, 1), lambda: os.read(2**40, 1))
            await assert_same_error(lambda: lowlevel.read(r, 1, -5), lambda: os.pread(r, 1, -5))
            await assert_same_error(
                lambda: lowlevel.read(r, 1, 2**64), lambda: os.pread(r, 1, 2**64)
            )
            with pytest.raises(TypeError, match="sequence of buffers"):
                await lowlevel.writev(w, b"abc")  # type: ignore[arg-type]
        finally:
            os.close(r)
            os.close(w)

    nothing_submitted(check)


def test_closed_and_wrong_fds_give_the_stdlib_errno() -> None:
    async def main() -> None:
        r, w = os.pipe()
        os.close(r)
        os.close(w)
        await assert_same_error(lambda: lowlevel.read(r, 1), lambda: os.read(r, 1))
        await assert_same_error(lambda: lowlevel.write(w, b"x"), lambda: os.write(w, b"x"))
        await assert_same_error(lambda: lowlevel.fsync(r), lambda: os.fsync(r))
        await assert_same_error(lambda: lowlevel.close(r), lambda: os.close(r))
        r, w = os.pipe()
        try:
            # A pipe is not a socket: what socket.socket(fileno=) says of it.
            for op in (
                lambda: lowlevel.recv(r, 1),
                lambda: lowlevel.send(w, b"x"),
                lambda: lowlevel.accept(r),
                lambda: lowlevel.shutdown(r, socket.SHUT_RD),
            ):
                await assert_same_error(op, lambda: socket.socket(fileno=r))
            # Objects with fileno() are accepted; a closed socket says -1.
            await assert_same_error(lambda: lowlevel.read(w, 1), lambda: os.read(w, 1))
            s = socket.socket()
            s.close()
            with pytest.raises(ValueError, match="negative integer"):
                await lowlevel.recv(s, 1)
        finally:
            os.close(r)
            os.close(w)

    run(main)


def test_addresses_are_checked_as_socket_connect_does(tmp_path: Any) -> None:
    async def check() -> None:
        for family, bad in (
            (socket.AF_INET, ("127.0.0.1", 70000)),
            (socket.AF_INET, "127.0.0.1"),
            (socket.AF_INET, ("127.0.0.1",)),
            (socket.AF_INET6, ("::1", 1, 2**21)),
            (socket.AF_UNIX, "x" * 200),
            (socket.AF_UNIX, b"\0" + b"x" * 200),
        ):
            with socket.socket(family) as ours, socket.socket(family) as theirs:
                await assert_same_error(
                    lambda o=ours, b=bad: lowlevel.connect(o, b),  # type: ignore[misc]
                    lambda t=theirs, b=bad: t.connect(b),  # type: ignore[misc]
                )
        with sockets() as (a, _):
            for anc in ([(1, 2)], [1]):
                await assert_same_error(
                    lambda x=anc: lowlevel.sendmsg(a, [b"x"], x),  # type: ignore[misc]
                    lambda x=anc: a.sendmsg([b"x"], x),  # type: ignore[misc]
                )

    nothing_submitted(check)


def test_paths_are_checked_as_os_does() -> None:
    async def check() -> None:
        await assert_same_error(
            lambda: lowlevel.openat("a\0b", os.O_RDONLY), lambda: os.open("a\0b", os.O_RDONLY)
        )
        await assert_same_error(lambda: lowlevel.statx("a\0b"), lambda: os.stat("a\0b"))
        await assert_same_error(
            lambda: lowlevel.renameat("a", "b\0"), lambda: os.rename("a", "b\0")
        )
        # Bytes paths: the stdlib's words, naming our function and argument.
        with pytest.raises(ValueError, match=r"^renameat: embedded null character in dst$"):
            await lowlevel.renameat("a", b"b\0")
        with pytest.raises(ValueError, match=r"^openat: embedded null character in path$"):
            await lowlevel.openat(b"a\0", os.O_RDONLY)
        for bad in (bytearray(b"x"), 1.5, None):
            with pytest.raises(TypeError, match=r"path should be string, bytes or os\.PathLike"):
                await lowlevel.openat(bad, os.O_RDONLY)  # type: ignore[arg-type]
            with pytest.raises(TypeError, match=r"path should be string, bytes or os\.PathLike"):
                await lowlevel.unlinkat(bad)  # type: ignore[arg-type]

    nothing_submitted(check)


def test_refused_on_a_run_that_is_not_on_io_uring() -> None:
    async def main() -> None:
        r, w = os.pipe()
        try:
            with pytest.raises(RuntimeError, match=r"needs a Trio run on io_uring.*'epoll'"):
                await lowlevel.read(r, 1)
            with pytest.raises(RuntimeError, match="needs a Trio run on io_uring"):
                lowlevel.statistics()
        finally:
            os.close(r)
            os.close(w)

    trio.run(main)  # stock Trio, epoll


def test_ops_are_gated_on_the_probe(monkeypatch: pytest.MonkeyPatch) -> None:
    real = UringIOManager.supports
    monkeypatch.setattr(
        UringIOManager, "supports", lambda self, opcode: opcode != OP["RECV"] and real(self, opcode)
    )

    async def check() -> None:
        with sockets() as (a, b):
            with pytest.raises(NotImplementedError, match=r"IORING_OP_RECV \(Linux 5\.6\+\)"):
                await lowlevel.recv(a, 1)
            b.send(b"ok")
            assert await lowlevel.read(a, 2) == b"ok"  # other ops still run

    run(check)


def test_every_kernel_minimum_names_a_probed_opcode() -> None:
    async def main() -> None:
        supported = {op for op in range(64) if manager().supports(op)}
        assert set(lowlevel.KERNEL_MINIMUM) <= supported

    run(main)


def test_python_constants_match_the_c_headers() -> None:
    lib = _lowlevel_structs.lib
    assert _lowlevel_structs.AT_FDCWD == lib.AT_FDCWD
    assert _lowlevel_structs.AT_SYMLINK_NOFOLLOW == lib.AT_SYMLINK_NOFOLLOW
    assert _lowlevel_structs.AT_REMOVEDIR == lib.AT_REMOVEDIR
    assert _lowlevel_structs.AT_EMPTY_PATH == lib.AT_EMPTY_PATH
    assert _lowlevel_structs.STATX_BASIC_STATS == lib.STATX_BASIC_STATS
    ffi = _lowlevel_structs.ffi
    assert ffi.sizeof("struct cmsghdr") == socket.CMSG_LEN(0)
    assert ffi.sizeof("struct sockaddr_storage") == 128
    assert ffi.offsetof("struct sockaddr_un", "sun_path") == 2


def test_trio_uring_lowlevel_is_reachable_from_the_package() -> None:
    import trio_uring

    assert trio_uring.lowlevel is lowlevel
    with pytest.raises(AttributeError):
        trio_uring.no_such_thing  # type: ignore[attr-defined]  # noqa: B018
