"""File and path ops on checked arguments: what ``_files`` and ``lowlevel`` both stand on.

Each function is one io_uring opcode, taking arguments that are already
what the kernel will see (an fd number, a byte count, a ``Pinned`` buffer,
NUL-terminated path bytes) and raising the ``OSError`` the stdlib raises
for the same failure. Checking and converting a user's arguments is the
caller's job: ``trio_uring.lowlevel`` does it with the ``os`` module's
rules (``args.py``), the files layer with ``open``'s. Every op goes through
``calls.call`` (``EINTR`` retried where the stdlib retries it, buffer
exports dropped once the kernel is done).

An offset of -1 means "the file position" (``os.read``/``os.write``); any
other offset is positional (``os.pread``/``os.pwrite``).
"""

from __future__ import annotations

import errno
import os
from typing import TYPE_CHECKING, Final, Protocol

import trio

from .abi import OP
from .args import MAX_RW_COUNT, U64, Pinned, c_string, path, size, source, target, u32
from .calls import call, error
from .parking import pass_schedule_point, uncancelled
from .structs import (
    AT_EMPTY_PATH,
    AT_FDCWD,
    AT_REMOVEDIR,
    AT_SYMLINK_NOFOLLOW,
    IORING_FSYNC_DATASYNC,
    STATX_BASIC_STATS,
    addr_of,
    ffi,
    new_statx,
    new_uncleared_buffer,
    stat_result,
)

if TYPE_CHECKING:
    from .manager import UringIOManager

# The argument checks the files layer needs too, re-exported so that it
# loads this one module (and the C extension) once, on first use.
__all__ = [
    "AT_FDCWD",
    "AT_SYMLINK_NOFOLLOW",
    "close",
    "fsync",
    "mkdirat",
    "openat",
    "path",
    "read",
    "readinto",
    "renameat",
    "size",
    "source",
    "statx",
    "target",
    "u32",
    "unlinkat",
    "write",
]

_READ: Final = OP["READ"]
_WRITE: Final = OP["WRITE"]
_FSYNC: Final = OP["FSYNC"]
_CLOSE: Final = OP["CLOSE"]
_OPENAT: Final = OP["OPENAT"]
_STATX: Final = OP["STATX"]
_UNLINKAT: Final = OP["UNLINKAT"]
_RENAMEAT: Final = OP["RENAMEAT"]
_MKDIRAT: Final = OP["MKDIRAT"]
_U32: Final = 0xFFFF_FFFF
_U64: Final = U64
_EINTR: Final = -errno.EINTR
_preadv = os.preadv
# Larger reads take the op: zero-filling a bytearray and copying it out
# costs them more than the op saves (1 MiB sequential reads: 5.6-5.9 GB/s
# by op, 4.9-5.3 through the page cache first).
CACHED_READ_MAX: Final = 64 * 1024
# os.preadv and a bytearray, not a cffi call into the shim: three cffi
# calls (a buffer, the read, the unpack) measured 5-15 % slower per read.
_RWF_NOWAIT: Final = getattr(os, "RWF_NOWAIT", 8)
checkpoint_if_cancelled = trio.lowlevel.checkpoint_if_cancelled


def offset_field(offset: int) -> int:
    """An SQE's ``off`` for ``offset``: -1 (the file position) is ``(u64)-1``."""
    return U64 if offset == -1 else offset


class CachedReads(Protocol):
    """A file whose reads may try the page cache first (``read``'s ``file``)."""

    nowait: bool
    """Whether to try: True until the file system refuses ``RWF_NOWAIT``."""


async def read(
    mgr: UringIOManager, fd: int, count: int, offset: int, file: CachedReads | None = None
) -> bytes:
    """``IORING_OP_READ`` of up to ``count`` (>= 0) bytes at ``offset``; new bytes.

    The random-read hot path: straight to the op core's ``read_op`` (one
    frame), a cancelled task submitting nothing, as every native op.

    With ``file`` (the files layer's own files, never ``lowlevel``'s calls)
    a positional read first asks the page cache: one ``preadv2`` with
    ``RWF_NOWAIT`` (4.14; buffered reads since 5.x), which reads only what
    it can without waiting, or fails with ``EAGAIN``. For a cached read
    that is a plain ``pread``'s cost, which an op cannot beat: its issue
    path is the same read, plus an SQE, a CQE and a tick. All of it there
    (or the end of the file), that is the result, after the schedule point
    every read passes; not cached, only partly, or any error, the op reads
    it as it always did (and reports the error as it always did). A file
    system that refuses the flag turns it off for that file. Random cached
    4 KiB reads, 64 tasks: 181k/s by op, about 300k/s with this first
    (``docs/files.md``).
    """
    if not uncancelled():  # checkpoint_if_cancelled(), without its frame
        await checkpoint_if_cancelled()
    if file is not None and file.nowait:
        cached = read_cached(file, fd, count, offset)
        if cached is not None:
            await pass_schedule_point()
            return cached
    return await read_checked(mgr, fd, count, offset)


def read_cached(file: CachedReads, fd: int, count: int, offset: int) -> bytes | None:
    """What the page cache answers at once for ``read`` (``RWF_NOWAIT``), or None: ask the op.

    No schedule point of its own: the caller passed the cancel check
    before and passes the schedule point after, as ``read`` does.
    """
    if offset < 0 or not 0 < count <= CACHED_READ_MAX:
        return None
    buf = bytearray(count)
    try:
        got = _preadv(fd, [buf], offset, _RWF_NOWAIT)
    except OSError as exc:
        if exc.errno in (errno.EOPNOTSUPP, errno.EINVAL):
            file.nowait = False
        return None
    if got == count or got == 0:
        return bytes(buf) if got else b""
    return None


async def read_checked(mgr: UringIOManager, fd: int, count: int, offset: int) -> bytes:
    """``read``'s op, for a caller that has passed the cancel check already."""
    buf = new_uncleared_buffer(count)
    length = count if count <= MAX_RW_COUNT else MAX_RW_COUNT
    off = _U64 if offset == -1 else offset
    while True:
        res = await mgr.read_op(fd, buf, length, off)
        if res >= 0:
            return ffi.unpack(buf, res)  # type: ignore[no-any-return]  # one copy
        if res != _EINTR:  # PEP 475: a read a signal interrupted is redone
            raise error(res)
        await checkpoint_if_cancelled()


async def readinto(mgr: UringIOManager, fd: int, target: Pinned, offset: int) -> int:
    """``IORING_OP_READ`` into a pinned writable buffer (all of it at most); bytes read."""
    res = await call(
        mgr, _READ, fd, target.pins(), addr=target.addr,
        length=min(target.nbytes, MAX_RW_COUNT), off=offset_field(offset),
    )  # fmt: skip
    if res < 0:
        raise error(res)
    return res


async def write(mgr: UringIOManager, fd: int, source: Pinned, offset: int) -> int:
    """``IORING_OP_WRITE`` of a pinned buffer (perhaps only part of it); bytes written."""
    res = await call(
        mgr, _WRITE, fd, source.pins(), addr=source.addr,
        length=min(source.nbytes, MAX_RW_COUNT), off=offset_field(offset),
    )  # fmt: skip
    if res < 0:
        raise error(res)
    return res


async def fsync(mgr: UringIOManager, fd: int, *, data_only: bool) -> None:
    """``IORING_OP_FSYNC`` (``fdatasync`` with ``data_only``)."""
    res = await call(mgr, _FSYNC, fd, None, op_flags=IORING_FSYNC_DATASYNC if data_only else 0)
    if res < 0:
        raise error(res)


async def close(mgr: UringIOManager, fd: int) -> None:
    """``IORING_OP_CLOSE``, after waking whoever waits on ``fd``; closes even when cancelled.

    Like Trio's ``aclose``: the close itself is shielded, and ``Cancelled``
    comes after it. Never retried on ``EINTR`` (Linux has closed the fd anyway).
    """
    trio.lowlevel.notify_closing(fd)
    with trio.CancelScope(shield=True):
        res = await call(mgr, _CLOSE, fd, None, retry_eintr=False)
    if res < 0:
        raise error(res)
    await trio.lowlevel.checkpoint_if_cancelled()


async def openat(
    mgr: UringIOManager, dirfd: int, path: bytes, filename: object, flags: int, mode: int
) -> int:
    """``IORING_OP_OPENAT`` of ``path`` (bytes, no NUL) with ``O_CLOEXEC`` added; the new fd."""
    cpath = c_string(path)
    res = await call(
        mgr, _OPENAT, dirfd, cpath, addr=addr_of(cpath), length=mode,
        op_flags=(flags | os.O_CLOEXEC) & _U32,
    )  # fmt: skip
    if res < 0:
        raise error(res, filename)
    return res


async def statx(
    mgr: UringIOManager, dirfd: int, path: bytes, filename: object, flags: int
) -> os.stat_result:
    """``IORING_OP_STATX`` as ``os.stat`` reports it (``path`` b"" with an fd: ``fstat``)."""
    if not path:
        flags |= AT_EMPTY_PATH
    cpath = c_string(path)
    buf = new_statx()
    res = await call(
        mgr, _STATX, dirfd, (cpath, buf), addr=addr_of(cpath), length=STATX_BASIC_STATS,
        op_flags=flags, off=addr_of(buf),
    )  # fmt: skip
    if res < 0:
        raise error(res, filename)
    return stat_result(buf)


async def unlinkat(
    mgr: UringIOManager, dirfd: int, path: bytes, filename: object, *, rmdir: bool
) -> None:
    """``IORING_OP_UNLINKAT``: ``os.unlink``, or ``os.rmdir`` with ``rmdir``."""
    cpath = c_string(path)
    flags = AT_REMOVEDIR if rmdir else 0
    res = await call(mgr, _UNLINKAT, dirfd, cpath, addr=addr_of(cpath), op_flags=flags)
    if res < 0:
        raise error(res, filename)


async def renameat(
    mgr: UringIOManager,
    src: tuple[int, bytes, object],
    dst: tuple[int, bytes, object],
    flags: int,
) -> None:
    """``IORING_OP_RENAMEAT`` of ``(dir_fd, path, filename)`` to another; renameat2 ``flags``."""
    olddir, raw_src, name_src = src
    newdir, raw_dst, name_dst = dst
    c_src = c_string(raw_src)
    c_dst = c_string(raw_dst)
    res = await call(
        mgr, _RENAMEAT, olddir, (c_src, c_dst), addr=addr_of(c_src), length=newdir & _U32,
        off=addr_of(c_dst), op_flags=flags,
    )  # fmt: skip
    if res < 0:
        raise error(res, name_src, name_dst)


async def mkdirat(
    mgr: UringIOManager, dirfd: int, path: bytes, filename: object, mode: int
) -> None:
    """``IORING_OP_MKDIRAT`` (``mode`` masked by the umask, as ``os.mkdir``)."""
    cpath = c_string(path)
    res = await call(mgr, _MKDIRAT, dirfd, cpath, addr=addr_of(cpath), length=mode)
    if res < 0:
        raise error(res, filename)
