"""``trio_uring.lowlevel``'s file and path family: ``os``'s calls as io_uring ops.

Each function checks its arguments with the ``os`` module's rules
(``_core/args.py``), then runs the core's op (``_core/fileops.py``, which
the files layer stands on too).
"""

from __future__ import annotations

import errno
import os
from typing import TYPE_CHECKING, Any, Final

from .._core import args as _args
from .._core import fileops
from .._core import structs as _st
from .._core.abi import OP
from .._core.calls import call, error
from ._common import U32 as _U32
from ._common import require

if TYPE_CHECKING:
    from collections.abc import Iterable

    from _typeshed import ReadableBuffer, WriteableBuffer

    from ._common import FileDescriptor, Path

_READV: Final = OP["READV"]
_WRITEV: Final = OP["WRITEV"]
_FSYNC: Final = OP["FSYNC"]
_FALLOCATE: Final = OP["FALLOCATE"]
_OPENAT: Final = OP["OPENAT"]
_CLOSE: Final = OP["CLOSE"]
_STATX: Final = OP["STATX"]
_READ: Final = OP["READ"]
_WRITE: Final = OP["WRITE"]
_SPLICE: Final = OP["SPLICE"]
_RENAMEAT: Final = OP["RENAMEAT"]
_UNLINKAT: Final = OP["UNLINKAT"]
_MKDIRAT: Final = OP["MKDIRAT"]


def _offset(offset: Any) -> int:
    """``offset`` checked as ``os.pread`` does; -1 stays -1 (the file position)."""
    off = _args.file_offset(offset)
    return -1 if off == _args.U64 else off


async def read(fd: FileDescriptor, size: int, offset: int = -1) -> bytes:
    """Read up to ``size`` bytes, as ``os.read`` (offset -1) or ``os.pread`` do.

    ``IORING_OP_READ``, Linux 5.6. ``offset=-1`` reads at the file position
    and advances it; an offset >= 0 reads there and leaves it alone. Returns
    ``b""`` at end of file. Even on a non-blocking fd the kernel waits for
    data rather than failing with ``EAGAIN`` (Linux 5.x/6.x; a kernel that
    does fail raises ``BlockingIOError``, as ``os.read`` would).

    :raises ValueError: ``size`` is negative.
    :raises OSError: what ``os.read``/``os.pread`` raise (``EBADF``, also
        for a negative fd; ``EISDIR``; ``EINVAL`` for an offset below -1...).
        One difference: on a pipe or socket the kernel ignores an offset
        >= 0 and reads at the position, where ``os.pread`` fails ``ESPIPE``
        (``docs/conformance.md``).
    """
    mgr = require("read", _READ)
    fdn = _args.os_fd(fd)
    count = _args.size(size, "negative value for 'size' not allowed")
    return await fileops.read(mgr, fdn, count, _offset(offset))


async def readinto(fd: FileDescriptor, buffer: WriteableBuffer, offset: int = -1) -> int:
    """Read into ``buffer`` (all of it at most); return the number of bytes read.

    ``IORING_OP_READ``, Linux 5.6. ``offset`` as in :func:`read`.
    ``buffer`` stays pinned (a ``bytearray`` cannot be resized) until the
    kernel is done with it, even if the task is cancelled meanwhile.

    :raises TypeError: ``buffer`` is not a writable, C-contiguous buffer.
    :raises OSError: as :func:`read`.
    """
    mgr = require("readinto", _READ)
    fdn = _args.os_fd(fd)
    target = _args.target(buffer, "readinto", "buffer")
    return await fileops.readinto(mgr, fdn, target, _offset(offset))


async def write(fd: FileDescriptor, data: ReadableBuffer, offset: int = -1) -> int:
    """Write ``data`` (possibly only part of it); return the number of bytes written.

    ``IORING_OP_WRITE``, Linux 5.6. As ``os.write`` (offset -1: at the file
    position, or at the end for ``O_APPEND``) or ``os.pwrite`` (offset >= 0).

    :raises TypeError: ``data`` is not bytes-like.
    :raises BufferError: ``data`` is not C-contiguous.
    :raises OSError: what ``os.write``/``os.pwrite`` raise (``EBADF``,
        ``EPIPE`` → ``BrokenPipeError``, ``ENOSPC``...).
    """
    mgr = require("write", _WRITE)
    fdn = _args.os_fd(fd)
    source = _args.source(data)
    return await fileops.write(mgr, fdn, source, _offset(offset))


async def readv(fd: FileDescriptor, buffers: Iterable[WriteableBuffer], offset: int = -1) -> int:
    """Read into several buffers in order (scatter); return the total bytes read.

    ``IORING_OP_READV``, Linux 5.1. As ``os.readv`` (offset -1) or
    ``os.preadv``. Every buffer and the iovec array stay pinned until the
    kernel is done.

    :raises TypeError: ``buffers`` is not a sequence, or one of them is not
        a writable, C-contiguous buffer.
    :raises OSError: as :func:`read`; ``EINVAL`` for more than 1024 buffers.
    """
    manager = require("readv", _READV)
    fdn = _args.os_fd(fd)
    iov = _args.target_iovecs(buffers, "readv")
    off = _args.file_offset(offset)
    res = await call(manager, _READV, fdn, iov.pins(), addr=iov.addr, length=iov.count, off=off)
    if res < 0:
        raise error(res)
    return res


async def writev(fd: FileDescriptor, buffers: Iterable[ReadableBuffer], offset: int = -1) -> int:
    """Write several buffers in order (gather); return the total bytes written.

    ``IORING_OP_WRITEV``, Linux 5.1. As ``os.writev`` (offset -1) or
    ``os.pwritev``.

    :raises TypeError: ``buffers`` is not a sequence of bytes-like objects.
    :raises BufferError: one of them is not C-contiguous.
    :raises OSError: as :func:`write`; ``EINVAL`` for more than 1024 buffers.
    """
    manager = require("writev", _WRITEV)
    fdn = _args.os_fd(fd)
    iov = _args.source_iovecs(buffers, "writev")
    off = _args.file_offset(offset)
    res = await call(manager, _WRITEV, fdn, iov.pins(), addr=iov.addr, length=iov.count, off=off)
    if res < 0:
        raise error(res)
    return res


async def close(fd: FileDescriptor) -> None:
    """Close a file descriptor, as ``os.close``, waking whoever waits on it first.

    ``IORING_OP_CLOSE``, Linux 5.6. Calls ``trio.lowlevel.notify_closing``
    first: tasks waiting on ``fd`` (``wait_readable``, native ops) get
    ``trio.ClosedResourceError``. Like Trio's ``aclose``, it closes the fd
    even if the task is cancelled, and then raises ``Cancelled``. Never
    retried on ``EINTR`` (Linux has closed the fd anyway).

    :raises OSError: ``EBADF`` if ``fd`` is not open.
    """
    mgr = require("close", _CLOSE)
    await fileops.close(mgr, _args.os_fd(fd))


async def openat(
    path: Path, flags: int, mode: int = 0o777, *, dir_fd: FileDescriptor | None = None
) -> int:
    """Open a file and return its fd, as ``os.open`` (``O_CLOEXEC`` is always added).

    ``IORING_OP_OPENAT``, Linux 5.6. ``path`` is relative to ``dir_fd``
    (default: the working directory). The path bytes stay pinned until the
    kernel is done. An open that completed is returned even if the task was
    cancelled meanwhile; the fd is the caller's to close.

    :raises TypeError: ``path`` is not str, bytes or ``os.PathLike``.
    :raises ValueError: ``path`` contains a NUL byte.
    :raises OSError: what ``os.open`` raises, with the path as ``filename``
        (``FileNotFoundError``, ``PermissionError``, ``IsADirectoryError``...).
    """
    mgr = require("openat", _OPENAT)
    raw, filename = _args.path(path, "openat")
    open_flags = _args.c_int(flags)
    perm = _args.mode(mode)
    return await fileops.openat(mgr, _args.dir_fd(dir_fd), raw, filename, open_flags, perm)


async def statx(
    path: Path | int,
    *,
    dir_fd: FileDescriptor | None = None,
    follow_symlinks: bool = True,
) -> os.stat_result:
    """Status of a file, equal field by field to ``os.stat`` (``os.lstat`` without following).

    ``IORING_OP_STATX``, Linux 5.6. ``path`` may also be an open fd (an
    int), as ``os.stat`` takes one. Every field matches ``os.stat``'s,
    ``st_*_ns``, ``st_blocks``, ``st_blksize`` and ``st_rdev`` included.
    The path and the ``struct statx`` stay pinned until the kernel is done.

    :raises TypeError, ValueError: a malformed path, as ``os.stat``.
    :raises OSError: what ``os.stat`` raises, with the path as ``filename``.
    """
    mgr = require("statx", _STATX)
    flags = 0 if follow_symlinks else _st.AT_SYMLINK_NOFOLLOW
    filename: str | bytes | int
    if isinstance(path, int):
        # os.stat's checks, fd 0 exempt as there (CPython tests "fd > 0").
        if dir_fd is not None and path > 0:
            raise ValueError("stat: can't specify dir_fd without matching path")
        if not follow_symlinks and path > 0:
            raise ValueError("stat: cannot use fd and follow_symlinks together")
        # fstat: an empty path names the fd itself, which is never a symlink.
        dirfd, raw, filename, flags = _args.fileno(path), b"", path, 0
    else:
        raw, filename = _args.path(path, "statx")
        dirfd = _args.dir_fd(dir_fd)
    return await fileops.statx(mgr, dirfd, raw, filename, flags)


async def fsync(fd: FileDescriptor) -> None:
    """Flush a file's data and metadata to disk, as ``os.fsync``.

    ``IORING_OP_FSYNC``, Linux 5.1.

    :raises OSError: ``EBADF``, ``EINVAL`` (an fd that cannot be synced), ``EIO``.
    """
    mgr = require("fsync", _FSYNC)
    await fileops.fsync(mgr, _args.fileno(fd), data_only=False)


async def fdatasync(fd: FileDescriptor) -> None:
    """Flush a file's data (and the metadata needed to read it), as ``os.fdatasync``.

    ``IORING_OP_FSYNC`` with ``IORING_FSYNC_DATASYNC``, Linux 5.1.

    :raises OSError: as :func:`fsync`.
    """
    mgr = require("fdatasync", _FSYNC)
    await fileops.fsync(mgr, _args.fileno(fd), data_only=True)


async def fallocate(fd: FileDescriptor, mode: int, offset: int, length: int) -> None:
    """Allocate (or, with ``mode`` flags, punch or zero) a file range, as fallocate(2).

    ``IORING_OP_FALLOCATE``, Linux 5.6. ``mode=0`` is ``os.posix_fallocate``.

    :raises ValueError: ``length`` is negative.
    :raises OSError: ``EINVAL`` for a negative offset or a zero length (as
        ``os.posix_fallocate``), ``EOPNOTSUPP`` for a mode the file system
        lacks, ``ENOSPC``, ``EBADF``...
    """
    manager = require("fallocate", _FALLOCATE)
    fdn = _args.os_fd(fd)
    flags = _args.c_int(mode)
    off = _args.file_offset(offset)
    if off == _args.U64:  # -1 means nothing special here: it is just negative
        raise OSError(errno.EINVAL, os.strerror(errno.EINVAL))
    count = _args.size(length, "negative value for 'length' not allowed")
    res = await call(manager, _FALLOCATE, fdn, None, off=off, addr=count, length=flags & _U32)
    if res < 0:
        raise error(res)


async def unlinkat(
    path: Path, *, dir_fd: FileDescriptor | None = None, rmdir: bool = False
) -> None:
    """Remove a file (``os.unlink``) or, with ``rmdir=True``, an empty directory (``os.rmdir``).

    ``IORING_OP_UNLINKAT``, Linux 5.11.

    :raises OSError: what ``os.unlink``/``os.rmdir`` raise, with the path as
        ``filename`` (``FileNotFoundError``, ``IsADirectoryError``,
        ``NotADirectoryError``, ``OSError(ENOTEMPTY)``...).
    """
    mgr = require("unlinkat", _UNLINKAT)
    raw, filename = _args.path(path, "unlinkat")
    await fileops.unlinkat(mgr, _args.dir_fd(dir_fd), raw, filename, rmdir=rmdir)


async def renameat(
    src: Path,
    dst: Path,
    *,
    src_dir_fd: FileDescriptor | None = None,
    dst_dir_fd: FileDescriptor | None = None,
    flags: int = 0,
) -> None:
    """Rename ``src`` to ``dst``, as ``os.rename`` (renameat2(2) ``flags``).

    ``IORING_OP_RENAMEAT``, Linux 5.11. ``flags`` may hold
    ``RENAME_NOREPLACE`` (1), ``RENAME_EXCHANGE`` (2), ``RENAME_WHITEOUT`` (4).

    :raises OSError: what ``os.rename`` raises, naming both paths
        (``filename`` and ``filename2``).
    """
    mgr = require("renameat", _RENAMEAT)
    raw_src, name_src = _args.path(src, "renameat", "src")
    raw_dst, name_dst = _args.path(dst, "renameat", "dst")
    olddir = _args.dir_fd(src_dir_fd)
    newdir = _args.dir_fd(dst_dir_fd)
    rename_flags = _args.u32(flags, "flags")
    await fileops.renameat(
        mgr, (olddir, raw_src, name_src), (newdir, raw_dst, name_dst), rename_flags
    )


async def mkdirat(path: Path, mode: int = 0o777, *, dir_fd: FileDescriptor | None = None) -> None:
    """Create a directory, as ``os.mkdir`` (``mode`` is masked by the umask).

    ``IORING_OP_MKDIRAT``, Linux 5.15.

    :raises OSError: what ``os.mkdir`` raises, with the path as ``filename``
        (``FileExistsError``, ``FileNotFoundError``...).
    """
    mgr = require("mkdirat", _MKDIRAT)
    raw, filename = _args.path(path, "mkdirat")
    perm = _args.mode(mode)
    await fileops.mkdirat(mgr, _args.dir_fd(dir_fd), raw, filename, perm)


async def splice(
    fd_in: FileDescriptor,
    off_in: int | None,
    fd_out: FileDescriptor,
    off_out: int | None,
    nbytes: int,
    flags: int = 0,
) -> int:
    """Move up to ``nbytes`` between two fds, one of them a pipe, as ``os.splice``.

    ``IORING_OP_SPLICE``, Linux 5.7. An offset of None uses (and advances)
    that fd's position; a pipe must have None. Returns the bytes moved (0
    at end of input).

    :raises ValueError: ``nbytes`` is negative, or ``flags`` has
        ``SPLICE_F_FD_IN_FIXED`` (io_uring's registered-file flag).
    :raises OSError: what ``os.splice`` raises (``EINVAL`` if neither fd is
        a pipe, ``ESPIPE`` for an offset on a pipe...).
    """
    manager = require("splice", _SPLICE)
    fdn_in = _args.os_fd(fd_in)
    fdn_out = _args.os_fd(fd_out)
    o_in = _args.optional_offset(off_in)
    o_out = _args.optional_offset(off_out)
    count = _args.size(nbytes, "negative value for 'nbytes' not allowed")
    splice_flags = _args.u32(flags, "flags")
    if splice_flags & _st.SPLICE_F_FD_IN_FIXED:
        raise ValueError("SPLICE_F_FD_IN_FIXED is not supported (no registered files)")
    res = await call(
        manager, _SPLICE, fdn_out, None, addr=o_in, off=o_out,
        length=min(count, _args.MAX_RW_COUNT), op_flags=splice_flags, splice_fd_in=fdn_in,
    )  # fmt: skip
    if res < 0:
        raise error(res)
    return res
