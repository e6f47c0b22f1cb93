"""``AsyncFile`` and its binary form: ``io.BufferedRandom`` (or ``FileIO``) made async.

The buffering follows ``open``: a read-ahead buffer of ``buffer_size``
bytes serves small reads (a loop of ``readline()`` costs one kernel op per
buffer, not per line), reads of at least a buffer go straight to the
kernel, and writes collect in a write buffer flushed when it fills, on
``flush()``, ``seek()`` and ``aclose()``. ``buffering=0`` turns both off:
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

import contextlib
import errno
import io
import os
from collections.abc import AsyncIterator, Iterable
from typing import TYPE_CHECKING, Any, AnyStr, Generic

import trio

from .._core import fileops
from .._core.manager import running_manager
from .raw import RawFile

if TYPE_CHECKING:
    from types import TracebackType

    from _typeshed import ReadableBuffer, WriteableBuffer
    from typing_extensions import Self

_checkpoint_if_cancelled = trio.lowlevel.checkpoint_if_cancelled
_shielded_checkpoint = trio.lowlevel.cancel_shielded_checkpoint

# readall's first request on a file whose size is unknown (pipes, /proc).
_READALL_CHUNK = 64 * 1024


def size_arg(size: Any) -> int:
    """A ``size`` argument of read/readline: an int, or None for "all"."""
    if size is None:
        return -1
    try:
        return size.__index__()  # type: ignore[no-any-return]
    except AttributeError:
        raise TypeError(
            f"argument should be integer or None, not '{type(size).__name__}'"
        ) from None


def index_arg(value: Any) -> int:
    """An integer argument, with the stdlib's TypeError for anything else."""
    try:
        return value.__index__()  # type: ignore[no-any-return]
    except AttributeError:
        raise TypeError(
            f"'{type(value).__name__}' object cannot be interpreted as an integer"
        ) from None


class AsyncFile(Generic[AnyStr]):
    """A file opened by :func:`trio_uring.open_file`; what binary and text files share.

    ``AsyncFile[bytes]`` is :class:`AsyncBinaryFile`, ``AsyncFile[str]``
    is :class:`AsyncTextFile`. Use it with ``async with`` (or call
    :meth:`aclose`); iterate over it with ``async for`` to get lines.
    """

    name: Any
    """The path (or the fd) the file was opened with, as ``open`` reports it."""

    mode: str
    """The mode string, as the builtin file object reports it."""

    @property
    def closed(self) -> bool:
        """Whether the file is closed."""
        raise NotImplementedError

    def fileno(self) -> int:
        """The file descriptor.

        The kernel's file offset is set to the unbuffered position first,
        so a caller doing its own ``os.read`` starts where the raw file is
        (reads and writes here are positional and do not move it).
        """
        raise NotImplementedError

    async def aclose(self) -> None:
        """Flush and close the file; it is closed even if this is cancelled."""
        raise NotImplementedError

    async def read(self, size: int | None = -1) -> AnyStr:
        """Read up to ``size`` (all to EOF if negative or None)."""
        raise NotImplementedError

    async def readline(self, size: int | None = -1) -> AnyStr:
        """Read one line (at most ``size``), with its line ending."""
        raise NotImplementedError

    async def write(self, data: Any) -> int:
        """Write ``data``; return how much was written."""
        raise NotImplementedError

    async def readlines(self, hint: int | None = -1) -> list[AnyStr]:
        """Read lines until EOF (or until they total ``hint`` or more)."""
        limit = -1 if hint is None else index_arg(hint)
        lines: list[AnyStr] = []
        total = 0
        while True:
            line = await self.readline()
            if not line:
                return lines
            lines.append(line)
            total += len(line)
            if 0 < limit <= total:
                return lines

    async def writelines(self, lines: Iterable[AnyStr]) -> None:
        """Write each of ``lines`` in turn (no line endings are added)."""
        for line in lines:
            await self.write(line)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    def __aiter__(self) -> AsyncIterator[AnyStr]:
        return self

    async def __anext__(self) -> AnyStr:
        line = await self.readline()
        if not line:
            raise StopAsyncIteration
        return line


class AsyncBinaryFile(AsyncFile[bytes]):
    """A binary file: ``io.BufferedRandom`` (or ``io.FileIO`` unbuffered), async.

    Returned by :func:`trio_uring.open_file` for ``"b"`` modes. Besides the
    ``io`` methods it has positional I/O (:meth:`pread`, :meth:`preadinto`,
    :meth:`pwrite`) that neither uses nor moves the position, and that many
    tasks may run at once on one file.
    """

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

    def _check_open(self) -> None:
        if self._raw.closed:
            raise ValueError("I/O operation on closed file.")

    def _check_readable(self, what: str = "read") -> None:
        self._check_open()
        if not self._readable:
            raise io.UnsupportedOperation(what)

    def _check_writable(self) -> None:
        if not self._writable:
            raise io.UnsupportedOperation("write")
        self._check_open()

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

    # -- reading -------------------------------------------------------

    async def read(self, size: int | None = -1) -> bytes:
        """Read up to ``size`` bytes; all until EOF if ``size`` is negative or None.

        Buffered, it returns fewer only at EOF; unbuffered (``buffering=0``)
        it is one kernel read, which may return fewer (``io.FileIO.read``).
        """
        self._check_readable()
        n = size_arg(size)
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
                    data = await fileops.read(mgr, raw.fd, n, raw.pos)
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
        self._check_readable("read1")
        n = index_arg(size)
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
        if not self._readable and not self.buffer_size:
            # io.FileIO.readall does not check the mode: read(2) says EBADF.
            self._check_open()
            raise OSError(errno.EBADF, os.strerror(errno.EBADF))
        self._check_readable()
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
        self._check_readable()
        view = memoryview(buffer).cast("B")
        if view.readonly:
            raise TypeError(
                f"readinto() argument must be read-write bytes-like object, "
                f"not {type(buffer).__name__}"
            )
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
        limit = size_arg(size)
        if limit == 0 and not self._readable:
            # IOBase.readline (what a write-only file has) reads nothing for 0.
            await trio.lowlevel.checkpoint()
            return b""
        self._check_readable("readline")
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
        self._check_readable("peek")
        ops = await self._enter()
        try:
            if not self._available:
                await self._fill(size)
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
        self._check_writable()
        view = memoryview(data)
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
            if not self._wbuf and n >= self.buffer_size:
                done = 0
                try:
                    while done < n:
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
                self._wbuf += view
                if len(self._wbuf) >= self.buffer_size:
                    with contextlib.suppress(trio.Cancelled):  # accepted: see above
                        await self._flush_unlocked()
        finally:
            self._lock.release()
        await self._yield_unless(ops)
        return n

    async def flush(self) -> None:
        """Write out the write buffer."""
        self._check_open()
        ops = await self._enter()
        try:
            await self._flush_unlocked()
            # As BufferedRandom.flush: read-ahead is dropped too (the
            # logical position stays; the next read starts afresh).
            self._drop_read_buffer()
        finally:
            self._lock.release()
        await self._yield_unless(ops)

    async def _flush_unlocked(self) -> None:
        while self._wbuf:
            count = await self._raw.write(self._wbuf)
            # The op's buffer export is gone once it returned: resizing is safe.
            del self._wbuf[:count]

    # -- positional I/O ------------------------------------------------

    async def pread(self, size: int, offset: int) -> bytes:
        """Read up to ``size`` bytes at ``offset``: one kernel read, the position untouched.

        Safe from many tasks at once. It bypasses the buffers: ``flush()``
        first if you also write through :meth:`write`.
        """
        if self._raw.closed or not self._readable:
            self._check_readable("pread")
        if type(offset) is not int or offset < 0:  # the common case costs one test
            offset = self._offset(offset)
        mgr = running_manager()
        if mgr is not None:
            # Straight to the op: this is the hot path of random reads.
            if type(size) is not int or size < 0:
                size = fileops.size(size, "negative value for 'size' not allowed")
            data: bytes = await fileops.read(mgr, self._raw.fd, size, offset)
            return data
        return await self._raw.pread(size, offset)

    async def preadinto(self, buffer: WriteableBuffer, offset: int) -> int:
        """Read into ``buffer`` at ``offset`` (one kernel read); return the count."""
        self._check_readable("preadinto")
        return await self._raw.preadinto(buffer, self._offset(offset))

    async def pwrite(self, data: ReadableBuffer, offset: int) -> int:
        """Write (part of) ``data`` at ``offset`` (one kernel write); return the count.

        In append mode Linux writes at the end whatever ``offset`` says.
        """
        self._check_writable()
        return await self._raw.pwrite(data, self._offset(offset))

    def _offset(self, offset: int) -> int:
        self._check_open()
        value = index_arg(offset)
        if value < 0:
            raise OSError(errno.EINVAL, os.strerror(errno.EINVAL))
        return value

    # -- position ------------------------------------------------------

    async def tell(self) -> int:
        """The position (counting what the buffers hold)."""
        self._check_open()
        await trio.lowlevel.checkpoint()
        return self._tell()

    def _tell(self) -> int:
        if not self._raw.seekable:
            raise OSError(errno.ESPIPE, os.strerror(errno.ESPIPE))
        return self._raw.pos - self._available + len(self._wbuf)

    async def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        """Move the position, as ``io.BufferedRandom.seek``; return it."""
        target = index_arg(offset)
        how = index_arg(whence)
        valid = (os.SEEK_SET, os.SEEK_CUR, os.SEEK_END, os.SEEK_DATA, os.SEEK_HOLE)
        if how not in valid and self.buffer_size:
            # Buffered files check; io.FileIO leaves it to lseek (EINVAL).
            raise ValueError(f"whence value {how} unsupported")
        self._check_open()
        self._check_seekable()
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
        self._check_writable_for("truncate")
        await self._enter()
        try:
            await self._flush_unlocked()
            new = self._tell() if size is None else index_arg(size)
            self._drop_read_buffer()
            result = await self._raw.truncate(new)
        finally:
            self._lock.release()
        return result

    def _check_writable_for(self, what: str) -> None:
        self._check_open()
        if not self._writable:
            raise io.UnsupportedOperation(what)
        if not self._raw.seekable and self.buffer_size:
            raise io.UnsupportedOperation(what)

    async def fsync(self) -> None:
        """Flush, then ``fsync`` the file (data and metadata to disk)."""
        await self.flush()
        await self._raw.fsync(data_only=False)

    async def fdatasync(self) -> None:
        """Flush, then ``fdatasync`` the file (data to disk)."""
        await self.flush()
        await self._raw.fsync(data_only=True)

    async def aclose(self) -> None:
        """Flush and close; the fd is closed even if the flush fails or is cancelled."""
        if self._raw.closed:
            await trio.lowlevel.checkpoint()
            return
        try:
            if self._wbuf:
                await self._enter()
                try:
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
            await self._raw.close()

    def detach_raw(self) -> RawFile:
        """The raw file (for the text layer's tests and internals)."""
        return self._raw
