"""Where a binary file reads and writes: positional I/O and the file position.

``pread``, ``preadinto`` and ``pwrite`` go to the kernel at an offset of
their own: they neither use the buffers nor move the position, so many
tasks may run them at once on one file (``pread`` is the random-read hot
path: checks that cost a comparison each, then straight to the op).
``tell``, ``seek`` and ``truncate`` are ``io.BufferedRandom``'s: they count
what the buffers hold, and a ``seek`` inside the read buffer keeps it.
``AsyncBinaryFile`` (``binary.py``) is built on this class.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import trio
from trio.lowlevel import checkpoint_if_cancelled

from .._core import fileops
from .._core.manager import running_manager
from .._core.parking import pass_schedule_point, uncancelled
from .base import index_arg, int_arg, refuse
from .buffered import BufferedFile

if TYPE_CHECKING:
    from _typeshed import ReadableBuffer, WriteableBuffer

_OFF_MAX = 2**63 - 1


class PositionedFile(BufferedFile):
    """Positional I/O and the position, over the buffers (see module doc)."""

    # -- positional I/O ------------------------------------------------

    async def pread(self, size: int, offset: int) -> bytes:
        """Read up to ``size`` bytes at ``offset``: one kernel read, the position untouched.

        Safe from many tasks at once. It bypasses the buffers: ``flush()``
        first if you also write through :meth:`write`.
        """
        raw = self._raw
        if (
            raw.closed or not self._readable or not raw.seekable
            or type(offset) is not int or not 0 <= offset <= _OFF_MAX
            or type(size) is not int or size < 0
        ):  # fmt: skip
            # Not the common case, which costs these tests only.
            size, offset = await self._pread_args(size, offset)
        mgr = running_manager()
        if mgr is not None:
            # The hot path of random reads: fileops.read written out (one
            # coroutine frame less, about 8 % of a cached read): the page
            # cache first, then the op.
            if not raw.nowait:
                return await fileops.read(mgr, raw.fd, size, offset)
            if not uncancelled():
                await checkpoint_if_cancelled()
            cached = fileops.read_cached(raw, raw.fd, size, offset)
            if cached is not None:
                await pass_schedule_point()
                return cached
            data: bytes = await fileops.read_checked(mgr, raw.fd, size, offset)
            return data
        return await raw.pread(size, offset)

    async def _pread_args(self, size: object, offset: object) -> tuple[int, int]:
        try:
            self._check_fd_mode(writing=False)
            count = fileops.size(size, "negative value for 'size' not allowed")
            return count, self._offset(offset)  # type: ignore[arg-type]
        except Exception:
            await refuse()
            raise

    async def preadinto(self, buffer: WriteableBuffer, offset: int) -> int:
        """Read into ``buffer`` at ``offset`` (one kernel read); return the count."""
        try:
            self._check_fd_mode(writing=False)
            position = self._offset(offset)
        except Exception:
            await refuse()
            raise
        try:
            return await self._raw.preadinto(buffer, position)
        except (TypeError, ValueError, BufferError):
            await refuse()  # the buffer, refused before any op ran
            raise

    async def pwrite(self, data: ReadableBuffer, offset: int) -> int:
        """Write (part of) ``data`` at ``offset`` (one kernel write); return the count.

        In append mode Linux writes at the end whatever ``offset`` says.
        """
        try:
            self._check_fd_mode(writing=True)
            position = self._offset(offset)
        except Exception:
            await refuse()
            raise
        try:
            return await self._raw.pwrite(data, position)
        except (TypeError, ValueError, BufferError):
            await refuse()  # the buffer, refused before any op ran
            raise

    # -- position ------------------------------------------------------

    async def tell(self) -> int:
        """The position (counting what the buffers hold)."""
        try:
            self._check_open()
        except Exception:
            await refuse()
            raise
        await trio.lowlevel.checkpoint()
        return self._tell()

    async def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        """Move the position, as ``io.BufferedRandom.seek``; return it."""
        try:
            # In the stdlib's order: whence, then the offset, then the file.
            how = int_arg(whence)
            valid = (os.SEEK_SET, os.SEEK_CUR, os.SEEK_END, os.SEEK_DATA, os.SEEK_HOLE)
            if how not in valid and self.buffer_size:
                # Buffered files check; io.FileIO leaves it to lseek (EINVAL).
                raise ValueError(f"whence value {how} unsupported")
            target = index_arg(offset)
            if self.buffer_size and not -_OFF_MAX - 1 <= target <= _OFF_MAX:
                raise ValueError("cannot fit 'int' into an offset-sized integer")
            self._check_open()
            self._check_seekable()
        except Exception:
            await refuse()
            raise
        ops = await self._enter()
        try:
            if how in (os.SEEK_SET, os.SEEK_CUR) and not self._wbuf and self._available:
                # Inside the read buffer: no syscall, keep the buffer.
                current = self._tell()
                new = target if how == os.SEEK_SET else current + target
                start = current - (self._rpos)
                if start <= new <= self._raw.pos:
                    self._rpos = new - start
                    if self._rpos >= len(self._rbuf):
                        self._rbuf, self._rpos = b"", 0
                    pos = new
                    await self._yield_unless(ops)
                    return pos
            await self._flush_unlocked()
            if how == os.SEEK_CUR:
                target, how = self._tell() + target, os.SEEK_SET
            self._drop_read_buffer()
            pos = self._raw.seek(target, how)
            self._rbuf, self._rpos = b"", 0
        finally:
            self._lock.release()
        await self._yield_unless(ops)
        return pos

    async def truncate(self, size: int | None = None) -> int:
        """Resize the file to ``size`` (default: the position); the position stays."""
        try:
            self._check_writable_for("truncate")
            wanted = None if size is None else index_arg(size)
        except Exception:
            await refuse()
            raise
        await self._enter()
        try:
            await self._flush_unlocked()
            new = self._tell() if wanted is None else wanted
            self._drop_read_buffer()
            result = await self._raw.truncate(new)
        finally:
            self._lock.release()
        return result
