"""The fd under an ``AsyncFile``: positional reads and writes, native or in a thread.

``RawFile`` is ``io.FileIO`` made async. Its one job beyond that is the
file position, because it is what makes cancellation exact:

* For a seekable file the position lives here, in ``pos``, and every read
  and write names its offset explicitly (``pread``/``pwrite``). A
  cancelled op had no effect (the manager confirmed ``-ECANCELED``), so
  the position must not move; an op that returned completed, so it must.
  ``pos`` is updated from the delivered result with no checkpoint in
  between, and nothing else (no kernel file offset) can drift.
* Writes in append mode go to the end whatever the position (``O_APPEND``),
  so they use offset -1 and ``pos`` becomes the kernel's file position
  right after the write: the new end.
* A non-seekable fd (pipe, FIFO, tty, socket, some ``/proc`` files) has no
  position: offset -1 throughout.

The kernel's own file offset is set on every ``seek`` (which is an
``lseek``, so errors and ``SEEK_DATA``/``SEEK_HOLE`` are the kernel's) and
when the file is closed with ``closefd=False`` or ``fileno()`` is asked for;
reads and writes leave it alone.

On io_uring each read/write is one ``IORING_OP_READ``/``WRITE``; on any
other run (stock Trio, a fallback) the same call goes to a worker thread,
which cannot be abandoned, so there too a cancelled call either completed
or never started.
"""

from __future__ import annotations

import errno
import fcntl
import os
from typing import TYPE_CHECKING, Final

import trio

from .._core import fileops
from .._core.manager import running_manager

if TYPE_CHECKING:
    from _typeshed import ReadableBuffer, WriteableBuffer

_SEEK_SET: Final = os.SEEK_SET
_SEEK_CUR: Final = os.SEEK_CUR
_O_DIRECT: Final = getattr(os, "O_DIRECT", 0)


def _preadv(fd: int, buffer: WriteableBuffer, offset: int) -> int:
    if offset < 0:
        return os.readv(fd, [buffer])
    return os.preadv(fd, [buffer], offset)


class RawFile:
    """An open fd with its position: ``io.FileIO``'s job, async."""

    __slots__ = ("append", "closed", "closefd", "fd", "nowait", "ops", "pos", "seekable")

    def __init__(self, fd: int, *, closefd: bool, append: bool) -> None:
        self.fd = fd
        self.closefd = closefd
        self.append = append
        self.closed = False
        # Ops completed through read/readinto/write (each one was a checkpoint).
        self.ops = 0
        # As io.FileIO.seekable() decides: can the kernel tell a position?
        try:
            self.pos = os.lseek(fd, 0, _SEEK_CUR)
        except OSError:
            self.seekable = False
            self.pos = 0
        else:
            self.seekable = True
        # Positional reads try the page cache first (fileops.read), except
        # with O_DIRECT: there RWF_NOWAIT still waits for the device, in
        # our thread. Turned off for good by a file system that refuses it.
        self.nowait = self.seekable and not fcntl.fcntl(fd, fcntl.F_GETFL) & _O_DIRECT

    # -- ops at an explicit offset (-1: the kernel's position) -----------

    async def pread(self, size: int, offset: int) -> bytes:
        """Up to ``size`` bytes at ``offset`` (-1: the fd's position, for pipes)."""
        mgr = running_manager()
        if mgr is not None:
            data: bytes = await fileops.read(mgr, self.fd, size, offset, self)
            return data
        if offset < 0:
            return await trio.to_thread.run_sync(os.read, self.fd, size)
        return await trio.to_thread.run_sync(os.pread, self.fd, size, offset)

    async def preadinto(self, buffer: WriteableBuffer, offset: int) -> int:
        """Read into ``buffer`` at ``offset``; return the count."""
        mgr = running_manager()
        if mgr is not None:
            target = fileops.target(buffer, "readinto", "buffer")
            count: int = await fileops.readinto(mgr, self.fd, target, offset)
            return count
        return await trio.to_thread.run_sync(_preadv, self.fd, buffer, offset)

    async def pwrite(self, data: ReadableBuffer, offset: int) -> int:
        """Write (part of) ``data`` at ``offset``; return the count."""
        mgr = running_manager()
        if mgr is not None:
            count: int = await fileops.write(mgr, self.fd, fileops.source(data), offset)
            return count
        if offset < 0:
            return await trio.to_thread.run_sync(os.write, self.fd, data)
        return await trio.to_thread.run_sync(os.pwrite, self.fd, data, offset)

    # -- ops at the position, which they advance ------------------------

    async def read(self, size: int) -> bytes:
        """One read of up to ``size`` bytes at the position."""
        if not self.seekable:
            data = await self.pread(size, -1)
        else:
            data = await self.pread(size, self.pos)
            self.pos += len(data)  # no checkpoint since the result: exact under cancellation
        self.ops += 1
        return data

    async def readinto(self, buffer: WriteableBuffer) -> int:
        """One read into ``buffer`` at the position."""
        if not self.seekable:
            count = await self.preadinto(buffer, -1)
        else:
            count = await self.preadinto(buffer, self.pos)
            self.pos += count
        self.ops += 1
        return count

    async def write(self, data: ReadableBuffer) -> int:
        """One write of (part of) ``data`` at the position (at the end in append mode)."""
        if self.append:
            if self.seekable:
                # The kernel's offset starts at ours: a write that does
                # nothing (0 bytes, or cancelled) leaves it there.
                os.lseek(self.fd, self.pos, _SEEK_SET)
            count = await self.pwrite(data, -1)
            if self.seekable:
                # O_APPEND wrote at the end and moved the kernel's offset
                # there; that is where the next read or tell starts.
                self.pos = os.lseek(self.fd, 0, _SEEK_CUR)
        elif not self.seekable:
            count = await self.pwrite(data, -1)
        else:
            count = await self.pwrite(data, self.pos)
            self.pos += count
        self.ops += 1
        return count

    # -- position and metadata (cheap, non-blocking syscalls) ------------

    def seek(self, offset: int, whence: int = _SEEK_SET) -> int:
        """Move the position as ``lseek`` does; return it.

        ``SEEK_CUR`` is computed from our position (the kernel's may be
        elsewhere) and handed to the kernel as ``SEEK_SET``, so the kernel
        validates every seek and its offset ends up equal to ours.
        """
        if whence == _SEEK_CUR:
            offset, whence = self.pos + offset, _SEEK_SET
        self.pos = os.lseek(self.fd, offset, whence)
        return self.pos

    def sync_position(self) -> None:
        """Set the kernel's file offset to our position (for users of the raw fd)."""
        if self.seekable and not self.closed:
            os.lseek(self.fd, self.pos, _SEEK_SET)

    async def truncate(self, size: int) -> int:
        """Resize the file (``ftruncate``, in a worker thread: io_uring has no op for it here)."""
        await trio.to_thread.run_sync(os.ftruncate, self.fd, size)
        return size

    async def fsync(self, data_only: bool) -> None:
        """``fsync``/``fdatasync`` the fd."""
        mgr = running_manager()
        if mgr is not None:
            await fileops.fsync(mgr, self.fd, data_only=data_only)
            return
        await trio.to_thread.run_sync(os.fdatasync if data_only else os.fsync, self.fd)

    async def close(self) -> None:
        """Close the fd (if ours), even when cancelled; idempotent."""
        if self.closed:
            return
        if not self.closefd:
            self.sync_position()
        self.closed = True
        if not self.closefd:
            await trio.lowlevel.checkpoint()
            return
        mgr = running_manager()
        if mgr is not None:
            await fileops.close(mgr, self.fd)
            return
        trio.lowlevel.notify_closing(self.fd)
        os.close(self.fd)
        await trio.lowlevel.checkpoint()


def closed_error() -> ValueError:
    """The error of an operation on a closed file, in the stdlib's words."""
    return ValueError("I/O operation on closed file.")


def not_seekable_error() -> OSError:
    """``ESPIPE``, as a buffered file reports tell() on a pipe."""
    return OSError(errno.ESPIPE, os.strerror(errno.ESPIPE))
