"""The buffers of a binary file: read-ahead, write-behind, the lock, and their rules.

``BufferedFile`` is the state ``AsyncBinaryFile`` (``binary.py``) does its
I/O on: the read-ahead buffer (``_rbuf`` from ``_rpos``), the write buffer,
the lock that lets one task at a time change them and the position, and
the small steps every read and write is made of. The rule that makes a
cancelled read exact lives here: appending to the read buffer (``_keep``,
``_fill``) never moves the logical position; only ``_consume`` does, in
one synchronous step (see ``binary.py``'s module docstring).
"""

from __future__ import annotations

import errno
import io
import os
from typing import Any

import trio

from .base import AsyncFile, index_arg
from .raw import RawFile

_checkpoint_if_cancelled = trio.lowlevel.checkpoint_if_cancelled
_shielded_checkpoint = trio.lowlevel.cancel_shielded_checkpoint


class BufferedFile(AsyncFile[bytes]):
    """The buffers, the lock and the checks under :class:`AsyncBinaryFile`'s methods."""

    def __init__(
        self,
        raw: RawFile,
        *,
        name: Any,
        mode: str,
        readable: bool,
        writable: bool,
        buffer_size: int,
    ) -> None:
        self._raw = raw
        self.name = name
        self.mode = mode
        self._readable = readable
        self._writable = writable
        # 0: unbuffered (io.FileIO semantics).
        self.buffer_size = buffer_size
        """The size of the read-ahead and write buffers (0: unbuffered)."""
        self._rbuf = b""
        self._rpos = 0
        self._wbuf = bytearray()
        # One task at a time changes the buffers and the position, as the
        # lock inside io.Buffered* serializes threads.
        self._lock = trio.Lock()

    def _check_open(self) -> None:
        if self._raw.closed:
            raise ValueError("I/O operation on closed file.")

    def _check_readable(self, what: str = "read") -> None:
        self._check_open()
        if not self._readable:
            # The words of io.BufferedWriter, or of io.FileIO unbuffered.
            raise io.UnsupportedOperation(what if self.buffer_size else "File not open for reading")

    def _check_writable(self) -> None:
        if not self._writable:
            raise io.UnsupportedOperation(
                "write" if self.buffer_size else "File not open for writing"
            )
        self._check_open()

    def _check_fd_mode(self, writing: bool) -> None:
        """``pread``/``pwrite`` on a file not open for it: ``EBADF``, as ``os.pread`` says."""
        self._check_open()
        if not (self._writable if writing else self._readable):
            raise OSError(errno.EBADF, os.strerror(errno.EBADF))

    def _check_seekable(self) -> None:
        if not self._raw.seekable:
            if self.buffer_size:
                raise io.UnsupportedOperation("File or stream is not seekable.")
            raise OSError(errno.ESPIPE, os.strerror(errno.ESPIPE))

    async def _enter(self) -> int:
        """Take the lock (callers release it in ``finally``); return the op count.

        The cancel check comes first: a cancelled task changes nothing. (Not
        an async context manager: this is on every read's path.)
        """
        await _checkpoint_if_cancelled()
        try:
            self._lock.acquire_nowait()
        except trio.WouldBlock:
            await self._lock.acquire()
        return self._raw.ops

    async def _yield_unless(self, ops: int) -> None:
        """The schedule point of a call served from the buffers.

        A call that ran a kernel op has been through one already (the op's
        wait), so it does not pay for a second scheduler tick.
        """
        if self._raw.ops == ops:
            await _shielded_checkpoint()

    @property
    def _available(self) -> int:
        return len(self._rbuf) - self._rpos

    def _consume(self, n: int) -> bytes:
        """Take ``n`` buffered bytes (or fewer at EOF): the one step that moves the position."""
        start = self._rpos
        if start == 0 and n >= len(self._rbuf):
            data, self._rbuf = self._rbuf, b""
            return data
        data = self._rbuf[start : start + n]
        self._rpos = start + len(data)
        if self._rpos >= len(self._rbuf):
            self._rbuf, self._rpos = b"", 0
        return data

    def _keep(self, chunk: bytes) -> None:
        """Append what a raw read returned to the read buffer (the position stays)."""
        if not self._available:
            self._rbuf, self._rpos = chunk, 0
        else:
            self._rbuf = self._rbuf[self._rpos :] + chunk
            self._rpos = 0

    def _drop_read_buffer(self) -> None:
        """Forget read-ahead, moving the raw position back to the logical one."""
        if self._available and self._raw.seekable:
            self._raw.pos -= self._available
            self._rbuf, self._rpos = b"", 0

    async def _fill(self, want: int) -> bool:
        """One raw read of at least a buffer (or ``want``) into the buffer; False at EOF."""
        chunk = await self._raw.read(max(want, self.buffer_size, 1))
        if not chunk:
            return False
        self._keep(chunk)
        return True

    async def _flush_unlocked(self) -> None:
        while self._wbuf:
            count = await self._raw.write(self._wbuf)
            # The op's buffer export is gone once it returned: resizing is safe.
            del self._wbuf[:count]

    def _offset(self, offset: int) -> int:
        """A ``pread``/``pwrite`` offset, refused as ``os.pread`` refuses it."""
        self._check_open()
        value = index_arg(offset)
        if not -(2**63) <= value < 2**63:
            raise OverflowError("Python int too large to convert to C long")
        if value < 0:
            raise OSError(errno.EINVAL, os.strerror(errno.EINVAL))
        if not self._raw.seekable:
            # io_uring would read at the position; os.pread says this.
            raise OSError(errno.ESPIPE, os.strerror(errno.ESPIPE))
        return value

    def _tell(self) -> int:
        if not self._raw.seekable:
            raise OSError(errno.ESPIPE, os.strerror(errno.ESPIPE))
        return self._raw.pos - self._available + len(self._wbuf)

    def _check_writable_for(self, what: str) -> None:
        self._check_open()
        if not self._writable:
            raise io.UnsupportedOperation(what if self.buffer_size else "File not open for writing")
        if not self._raw.seekable and self.buffer_size:
            raise io.UnsupportedOperation(what)
