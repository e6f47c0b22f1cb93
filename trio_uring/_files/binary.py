"""``AsyncBinaryFile``: ``io.BufferedRandom`` (or ``FileIO``) made async, on native ops.

The buffering follows ``open``: a read-ahead buffer of ``buffer_size``
bytes serves small reads (a loop of ``readline()`` costs one kernel op per
buffer, not per line), reads of at least a buffer go straight to the
kernel, and writes collect in a write buffer flushed before a write that
does not fit (``BufferedWriter``'s order, which decides which call reports
a full disk), on ``flush()``, ``seek()`` and ``aclose()``. ``buffering=0`` turns both off:
each ``read``/``write`` is exactly one op, as with ``io.FileIO``.

Cancellation: a cancelled ``read``/``write`` either completed or had no
effect. The rule that makes it exact: *appending to the read buffer never
moves the logical position* (``raw.pos`` minus what is buffered). So every
read first gathers data into the buffer (each raw op completed or did
nothing, see ``raw.py``) and then consumes it in one synchronous step
at the end. If the task is cancelled in between, whatever was gathered
stays buffered and the next read returns it. A write is accepted into the
write buffer after the cancel check; if flushing is then cancelled the
data stays buffered (the write completed; ``Cancelled`` arrives at the
next checkpoint, as when a result wins in the op core).

Every method that does I/O is a checkpoint. Served from a buffer, it checks
for cancellation *before* touching any state and yields with the cancel
shielded *after*, so a cancel can never land between the effect and the
return.
"""

from __future__ import annotations

import errno
import os
from typing import TYPE_CHECKING

import trio

from .._core import fileops
from .._core.manager import running_manager
from .base import refuse, size_arg, ssize_arg
from .positional import PositionedFile
from .raw import RawFile

if TYPE_CHECKING:
    from _typeshed import ReadableBuffer, WriteableBuffer

_shielded_checkpoint = trio.lowlevel.cancel_shielded_checkpoint

# readall's first request on a file whose size is unknown (pipes, /proc).
_READALL_CHUNK = 64 * 1024


class AsyncBinaryFile(PositionedFile):
    """A binary file: ``io.BufferedRandom`` (or ``io.FileIO`` unbuffered), async.

    Returned by :func:`trio_uring.open_file` for ``"b"`` modes. Besides the
    ``io`` methods it has positional I/O (:meth:`pread`, :meth:`preadinto`,
    :meth:`pwrite`) that neither uses nor moves the position, and that many
    tasks may run at once on one file; those and the position's own
    methods (``tell``, ``seek``, ``truncate``) are ``positional.py``'s.
    """

    def __repr__(self) -> str:
        return f"<trio_uring.AsyncBinaryFile name={self.name!r} mode={self.mode!r}>"

    # -- state ---------------------------------------------------------

    @property
    def closed(self) -> bool:
        """Whether the file is closed."""
        return self._raw.closed

    def fileno(self) -> int:
        """The file descriptor (see :meth:`AsyncFile.fileno`)."""
        self._check_open()
        self._raw.sync_position()
        return self._raw.fd

    def readable(self) -> bool:
        """Whether the mode allows reading."""
        self._check_open()
        return self._readable

    def writable(self) -> bool:
        """Whether the mode allows writing."""
        self._check_open()
        return self._writable

    def seekable(self) -> bool:
        """Whether the file has a position (``lseek`` works on it)."""
        self._check_open()
        return self._raw.seekable

    def isatty(self) -> bool:
        """Whether the fd is a terminal."""
        self._check_open()
        return os.isatty(self._raw.fd)

    # -- reading -------------------------------------------------------

    async def read(self, size: int | None = -1) -> bytes:
        """Read up to ``size`` bytes; all until EOF if ``size`` is negative or None.

        Buffered, it returns fewer only at EOF; unbuffered (``buffering=0``)
        it is one kernel read, which may return fewer (``io.FileIO.read``).
        """
        try:
            self._check_readable()
            n = size_arg(size)
            if n < -1 and self.buffer_size:
                # BufferedReader's check (FileIO reads all).
                raise ValueError("read length must be non-negative or -1")
        except Exception:
            # As on trio.open_file, a cancelled task hears Cancelled first.
            await refuse()
            raise
        if n < 0:
            return await self.readall()
        if n == 0 and self.buffer_size:
            # BufferedReader answers from its buffer, flushing nothing.
            await trio.lowlevel.checkpoint()
            return b""
        ops = await self._enter()
        try:
            if self._wbuf:
                await self._flush_unlocked()
            raw = self._raw
            data: bytes
            if not self.buffer_size:
                if not self._available and n:
                    return await raw.read(n)
                data = self._consume(n)
            else:
                mgr = running_manager()
                if n >= self.buffer_size and not self._available and raw.seekable and mgr:
                    # The random-read hot path, one op deep: straight into a
                    # new bytes at the position (as _fill -> raw.read would).
                    data = await fileops.read(mgr, raw.fd, n, raw.pos, raw)
                    raw.pos += len(data)  # no checkpoint since the result
                    raw.ops += 1
                    if len(data) == n or not data:
                        return data
                    self._keep(data)  # short: the loop reads on to n or EOF
                while self._available < n:
                    if not await self._fill(n - self._available):
                        break
                data = self._consume(n)
        finally:
            self._lock.release()
        await self._yield_unless(ops)
        return data

    async def read1(self, size: int = -1) -> bytes:
        """Read up to ``size`` bytes with at most one kernel read (``BufferedReader.read1``)."""
        try:
            self._check_readable("read1")
            n = ssize_arg(size)
        except Exception:
            await refuse()
            raise
        ops = await self._enter()
        try:
            await self._flush_unlocked()
            if n < 0:
                n = self.buffer_size or _READALL_CHUNK
            if not self._available and n:
                # As BufferedReader.read1 (3.11): one raw read of n, unbuffered.
                data = await self._raw.read(n)
                await self._yield_unless(ops)
                return data
            data = self._consume(n)
        finally:
            self._lock.release()
        await self._yield_unless(ops)
        return data

    async def readall(self) -> bytes:
        """Read until EOF."""
        try:
            if not self._readable and not self.buffer_size:
                # io.FileIO.readall does not check the mode: read(2) says EBADF.
                self._check_open()
                raise OSError(errno.EBADF, os.strerror(errno.EBADF))
            self._check_readable()
        except Exception:
            await refuse()
            raise
        ops = await self._enter()
        try:
            await self._flush_unlocked()
            # Size the first kernel read from the file size where there is
            # one, so a regular file takes two reads (data, then EOF).
            want = _READALL_CHUNK
            if self._raw.seekable:
                try:
                    end = os.fstat(self._raw.fd).st_size
                except OSError:
                    end = 0
                if end > self._raw.pos:
                    want = end - self._raw.pos + 1
            while await self._fill(want):
                want = max(want, _READALL_CHUNK)
            data = self._consume(self._available)
        finally:
            self._lock.release()
        await self._yield_unless(ops)
        return data

    async def readinto(self, buffer: WriteableBuffer) -> int:
        """Read into ``buffer``; return the number of bytes read (0 at EOF)."""
        try:
            self._check_readable()
            try:
                whole = memoryview(buffer)
            except ValueError:  # released
                whole = None
            if whole is None or whole.readonly:
                raise TypeError(
                    f"readinto() argument must be read-write bytes-like object, "
                    f"not {type(buffer).__name__}"
                )
            view = whole.cast("B")
            whole.release()
        except Exception:
            await refuse()
            raise
        try:
            return await self._readinto(view)
        finally:
            # Every await below has had its op's CQE by the time it returns
            # or raises, so the kernel is done with the buffer: drop the
            # export, or a traceback holding this frame (a cancel's) would
            # keep the caller's bytearray from resizing, where Trio's is free.
            view.release()

    async def _readinto(self, view: memoryview) -> int:
        n = view.nbytes
        ops = await self._enter()
        try:
            await self._flush_unlocked()
            if not self._available and n and (not self.buffer_size or n >= self.buffer_size):
                # Straight into the caller's buffer: one op, done or not.
                count = await self._raw.readinto(view)
                await self._yield_unless(ops)
                return count
            if self.buffer_size:
                while self._available < n:
                    if not await self._fill(n - self._available):
                        break
            data = self._consume(n)
            view[: len(data)] = data
        finally:
            self._lock.release()
        await self._yield_unless(ops)
        return len(data)

    async def readline(self, size: int | None = -1) -> bytes:
        """Read one line (up to and including ``b"\\n"``), at most ``size`` bytes."""
        try:
            limit = size_arg(size)
            if limit == 0 and not self._readable:
                # IOBase.readline (what a write-only file has) reads nothing for 0.
                await trio.lowlevel.checkpoint()
                return b""
            self._check_readable("readline")
        except Exception:
            await refuse()
            raise
        ops = await self._enter()
        try:
            await self._flush_unlocked()
            searched = 0
            while True:
                end = self._rbuf.find(b"\n", self._rpos + searched)
                if end >= 0:
                    n = end - self._rpos + 1
                    break
                searched = self._available
                if 0 <= limit <= searched:
                    n = limit
                    break
                # Unbuffered, read a byte at a time: never past the newline
                # (a pipe cannot give back what it handed over).
                if not await self._fill(1):
                    n = self._available
                    break
            data = self._consume(n if limit < 0 else min(n, limit))
        finally:
            self._lock.release()
        await self._yield_unless(ops)
        return data

    async def peek(self, size: int = 0) -> bytes:
        """Return buffered bytes without consuming them (one kernel read if none)."""
        try:
            self._check_readable("peek")
            n = ssize_arg(size)
        except Exception:
            await refuse()
            raise
        ops = await self._enter()
        try:
            if not self._available:
                await self._fill(n)
            data = self._rbuf[self._rpos :]
        finally:
            self._lock.release()
        await self._yield_unless(ops)
        return data

    # -- writing -------------------------------------------------------

    async def write(self, data: ReadableBuffer) -> int:
        """Write ``data``; return its length (unbuffered: what one kernel write took).

        Buffered, the data is accepted once this returns: it is in the
        file or in the write buffer. If the task is cancelled before
        that, nothing was written.
        """
        try:
            self._check_writable()
            view = memoryview(data)
            if not view.c_contiguous:
                view.release()
                raise BufferError("memoryview: underlying buffer is not C-contiguous")
        except Exception:
            await refuse()
            raise
        try:
            if view.ndim != 1 or view.format != "B":
                flat = view.cast("B")
                view.release()
                view = flat
            return await self._write(view)
        finally:
            view.release()  # the kernel is done with it (see readinto)

    async def _write(self, view: memoryview) -> int:
        ops = await self._enter()
        try:
            self._drop_read_buffer()
            if not self.buffer_size:
                count = await self._raw.write(view)
                await self._yield_unless(ops)
                return count
            n = view.nbytes
            if self._wbuf and len(self._wbuf) + n > self.buffer_size:
                # BufferedWriter's order: what is buffered goes out first; if
                # that fails (a full disk), this write fails having accepted
                # nothing, so a retry cannot write its bytes twice.
                await self._flush_unlocked()
            if not self._wbuf and n >= self.buffer_size:
                done = 0
                try:
                    # Straight through, as BufferedWriter: after a short write
                    # (a full disk, RLIMIT_FSIZE) a rest that fits the buffer
                    # is buffered and the write succeeds; the error, if it
                    # persists, comes from the next write or the flush.
                    while done < n and (not done or n - done > self.buffer_size):
                        part = view[done:]
                        try:
                            done += await self._raw.write(part)
                        finally:
                            part.release()  # a slice holds the export too
                except trio.Cancelled:
                    if not done:
                        raise
                    # Part of it is in the file: the write completed, the
                    # rest is buffered; the cancel lands at the next checkpoint.
                self._wbuf += view[done:]
            else:
                # It fits (a full buffer waits, as BufferedWriter's does, for
                # the next write or flush to go out).
                self._wbuf += view
        finally:
            self._lock.release()
        await self._yield_unless(ops)
        return n

    async def flush(self) -> None:
        """Write out the write buffer."""
        try:
            self._check_open()
        except Exception:
            await refuse()
            raise
        ops = await self._enter()
        try:
            await self._flush_unlocked()
            # As BufferedRandom.flush: read-ahead is dropped too (the
            # logical position stays; the next read starts afresh).
            self._drop_read_buffer()
        finally:
            self._lock.release()
        await self._yield_unless(ops)

    async def fsync(self) -> None:
        """Flush, then ``fsync`` the file (data and metadata to disk)."""
        await self.flush()
        await self._raw.fsync(data_only=False)

    async def fdatasync(self) -> None:
        """Flush, then ``fdatasync`` the file (data to disk)."""
        await self.flush()
        await self._raw.fsync(data_only=True)

    async def aclose(self) -> None:
        """Flush (shielded from cancellation) and close; then ``Cancelled`` if it is due.

        As ``trio.open_file``'s ``aclose``, whose close runs shielded in a
        thread: a file closed inside a cancelled scope still writes out what
        its write buffer holds, and the fd is closed even if the flush
        fails. One difference, so that a cancel can always end the call:
        while another task holds the file (its flush blocked, say, on a
        full pipe), a cancelled ``aclose`` does not wait for it; it closes
        the fd at once, and that task's op ends in ``ClosedResourceError``.
        """
        if self._raw.closed:
            await trio.lowlevel.checkpoint()
            return
        try:
            if self._wbuf:
                try:
                    self._lock.acquire_nowait()
                except trio.WouldBlock:
                    await self._lock.acquire()  # a cancel here: close without flushing
                try:
                    with trio.CancelScope(shield=True):
                        await self._flush_unlocked()
                finally:
                    self._lock.release()
        finally:
            self._drop_read_buffer()
            # A new buffer, not clear(): when this task was cancelled waiting
            # for the lock, another task's flush may still have the old one
            # pinned by a write op (a resize would raise BufferError and skip
            # the close below).
            self._wbuf = bytearray()
            with trio.CancelScope(shield=True):
                await self._raw.close()
        await trio.lowlevel.checkpoint_if_cancelled()

    def detach_raw(self) -> RawFile:
        """The raw file (for the text layer's tests and internals)."""
        return self._raw
