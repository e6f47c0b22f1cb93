"""``AsyncTextFile``: ``io.TextIOWrapper`` made async, over an ``AsyncBinaryFile``.

Decoding is incremental (a codec's incremental decoder, wrapped in
``io.IncrementalNewlineDecoder`` for universal newlines), chunk by chunk
(8 KiB, ``read1`` of the binary file: one kernel op at most), and the
``newline`` argument means what it means for ``open``:

* ``None``: ``\\r``, ``\\n`` and ``\\r\\n`` all end lines and are read as
  ``\\n``; ``\\n`` is written as ``os.linesep``.
* ``""``: the same line endings, returned untranslated; nothing translated on write.
* ``"\\n"``, ``"\\r"``, ``"\\r\\n"``: only that ends a line on read; ``\\n``
  is written as it.

``tell()`` returns the C ``TextIOWrapper``'s opaque cookie (the byte position of
a point where the decoder was clean, its flags, the bytes to feed and the
characters to skip from there, packed in one int), computed the same way,
so the numbers equal the builtin's and ``seek(tell())`` comes back exactly.

Cancellation: decoded text is appended to a buffer that spans chunks, with
one snapshot (decoder flags, bytes fed) for its start. Appending never
moves the logical position; consuming is the one synchronous step that
does. A cancelled read leaves the position alone and the text buffered.
"""

from __future__ import annotations

import codecs
import io
import os
from typing import TYPE_CHECKING, Any

import trio

from .base import AsyncFile, int_arg, refuse, size_arg, ssize_arg
from .binary import AsyncBinaryFile
from .textcodec import pack_cookie, reconstruct, unpack_cookie

if TYPE_CHECKING:
    pass

_CHUNK_SIZE = 8192
_OFF_MAX = 2**63 - 1


class AsyncTextFile(AsyncFile[str]):
    """A text file: ``io.TextIOWrapper``'s behaviour, async.

    Returned by :func:`trio_uring.open_file` for text modes. ``buffer`` is
    the :class:`AsyncBinaryFile` underneath (with its positional I/O).
    """

    def __init__(
        self,
        buffer: AsyncBinaryFile,
        *,
        mode: str,
        encoding: str,
        errors: str | None,
        newline: str | None,
        line_buffering: bool,
        info: codecs.CodecInfo,
    ) -> None:
        self.buffer = buffer
        """The binary file underneath."""
        self.name = buffer.name
        self.mode = mode
        self.encoding = encoding
        """The encoding in use."""
        self.errors = "strict" if errors is None else errors
        """The error handler of the codec."""
        self.line_buffering = line_buffering
        """Whether a write containing a line ending flushes."""
        self._newline = newline
        self._translate_in = newline is None
        self._universal = not newline
        self._write_nl = os.linesep if newline is None else newline
        self._translate_out = newline != ""
        self._decoder: Any = None
        self._encoder: Any = None
        self._info = info
        if buffer._readable:
            decoder: Any = info.incrementaldecoder(self.errors)
            if self._universal:
                decoder = io.IncrementalNewlineDecoder(decoder, self._translate_in)
            self._decoder = decoder
        if buffer._writable:
            self._encoder = info.incrementalencoder(self.errors)
        # Decoded text not yet returned: _chars[_used:]. _chars is the text
        # of the chunks in _chunks, each recorded as (decoder flags before
        # it, bytes the decoder still held before it, its bytes, how many
        # characters it gave): what tell() needs to name the position.
        self._chars = ""
        self._used = 0
        self._chunks: list[tuple[int, bytes, bytes, int]] = []
        self._lock = trio.Lock()
        # As TextIOWrapper: tell() is refused while a line iteration
        # (async for, readlines) is in progress, until EOF or a seek.
        self._telling = True

    def __repr__(self) -> str:
        return (
            f"<trio_uring.AsyncTextFile name={self.name!r} mode={self.mode!r} "
            f"encoding={self.encoding!r}>"
        )

    @property
    def closed(self) -> bool:
        """Whether the file is closed."""
        return self.buffer.closed

    @property
    def newlines(self) -> str | tuple[str, ...] | None:
        """The line endings seen so far (universal newlines mode), as ``TextIOWrapper``."""
        if isinstance(self._decoder, io.IncrementalNewlineDecoder):
            return self._decoder.newlines
        return None

    def fileno(self) -> int:
        """The file descriptor (see :meth:`AsyncFile.fileno`)."""
        return self.buffer.fileno()

    def readable(self) -> bool:
        """Whether the mode allows reading."""
        return self.buffer.readable()

    def writable(self) -> bool:
        """Whether the mode allows writing."""
        return self.buffer.writable()

    def seekable(self) -> bool:
        """Whether the file has a position."""
        return self.buffer.seekable()

    def isatty(self) -> bool:
        """Whether the fd is a terminal."""
        return self.buffer.isatty()

    def _check_open(self) -> None:
        if self.buffer.closed:
            raise ValueError("I/O operation on closed file.")

    def _check_readable(self) -> None:
        self._check_open()
        if self._decoder is None:
            raise io.UnsupportedOperation("not readable")

    async def _enter(self) -> None:
        await trio.lowlevel.checkpoint_if_cancelled()
        try:
            self._lock.acquire_nowait()
        except trio.WouldBlock:
            await self._lock.acquire()

    # -- reading -------------------------------------------------------

    @property
    def _pending(self) -> int:
        return len(self._chars) - self._used

    async def _read_chunk(self, size: int = _CHUNK_SIZE) -> bool:
        """Decode one more chunk onto the buffer; False at EOF (after the decoder's tail)."""
        pending, flags = self._decoder.getstate()
        data = await self.buffer.read1(size)
        # From here on no checkpoint, so a cancel cannot split the update.
        eof = not data
        text = self._decoder.decode(data, eof)
        self._chunks.append((flags, pending, data, len(text)))
        self._drop_returned_chunks()
        self._chars += text
        # As the C TextIOWrapper: the final decode's output is not EOF yet.
        return not eof or bool(text)

    def _drop_returned_chunks(self) -> None:
        """Forget chunks whose text was all returned, keeping the last one.

        What remains starts at the chunk TextIOWrapper would have as its
        snapshot, so tell() gives the same cookie.
        """
        chunks = self._chunks
        while len(chunks) > 1 and self._used >= chunks[0][3]:
            done = chunks.pop(0)[3]
            self._used -= done
            self._chars = self._chars[done:]

    def _take(self, n: int) -> str:
        start = self._used
        text = self._chars[start : start + n] if n >= 0 else self._chars[start:]
        self._used = start + len(text)
        return text

    async def read(self, size: int | None = -1) -> str:
        """Read up to ``size`` characters; all until EOF if negative or None."""
        try:
            n = size_arg(size)
            self._check_readable()
        except Exception:
            await refuse()
            raise
        await self._enter()
        try:
            await self._flush_writes()
            if n < 0:
                # One readall (cancel-safe on its own), then decode the rest
                # finally, as TextIOWrapper.read() does.
                data = await self.buffer.read()
                text: str = self._take(n) + self._decoder.decode(data, True)
                # As TextIOWrapper.read(): everything is decoded (finally),
                # so tell() is the byte position again.
                self._chars, self._used, self._chunks = "", 0, []
            else:
                while self._pending < n and await self._read_chunk(_CHUNK_SIZE):
                    pass
                text = self._take(n)
        finally:
            self._lock.release()
        await trio.lowlevel.cancel_shielded_checkpoint()
        return text

    def _find_line_end(self, start: int) -> int:
        """Index just past the first line ending at or after ``start`` (-1: none yet)."""
        chars = self._chars
        if self._translate_in or self._newline == "\n":
            end = chars.find("\n", start)
            return end + 1 if end >= 0 else -1
        if self._universal:
            # The newline decoder never ends its output with a "\r" that
            # might start a "\r\n" (it holds it back), so a "\r" here is a
            # whole line ending unless "\n" follows it.
            cr = chars.find("\r", start)
            lf = chars.find("\n", start)
            if cr < 0 and lf < 0:
                return -1
            if cr < 0 or (0 <= lf < cr):
                return lf + 1
            return cr + 2 if chars.startswith("\n", cr + 1) else cr + 1
        newline = self._newline or "\n"
        end = chars.find(newline, start)
        return end + len(newline) if end >= 0 else -1

    async def readline(self, size: int | None = -1) -> str:
        """Read one line with its ending (per ``newline``), at most ``size`` characters."""
        try:
            limit = ssize_arg(size)  # TextIOWrapper.readline refuses None
            self._check_readable()
        except Exception:
            await refuse()
            raise
        await self._enter()
        try:
            await self._flush_writes()
            searched = self._used
            eof = at_eof = False
            while True:
                # As TextIOWrapper: decoded text first (or EOF), then the
                # limit. (It reads only when its decoded chunk is empty,
                # not when all of it was returned.)
                while not self._chars and not eof:
                    eof = not await self._read_chunk(_CHUNK_SIZE)
                    searched = self._used
                if not self._pending and eof:
                    n, at_eof = 0, True
                    break
                end = self._find_line_end(searched)
                if end >= 0:
                    n = end - self._used
                    break
                if 0 <= limit <= self._pending:
                    n = limit
                    break
                # Resume the search where the old text ended (less one
                # char for a "\r\n" newline split across chunks).
                searched = max(self._used, len(self._chars) - 1)
                if eof:
                    n, at_eof = self._pending, True
                    break
                base = self._used
                eof = not await self._read_chunk(_CHUNK_SIZE)
                searched += self._used - base  # _read_chunk may have re-based _chars
            text = self._take(n if limit < 0 else min(n, limit))
            if at_eof and not self._pending:
                # TextIOWrapper drops its snapshot when a readline meets EOF.
                self._chars, self._used, self._chunks = "", 0, []
        finally:
            self._lock.release()
        await trio.lowlevel.cancel_shielded_checkpoint()
        return text

    async def __anext__(self) -> str:
        self._telling = False
        line = await self.readline()
        if not line:
            self._telling = True
            raise StopAsyncIteration
        return line

    async def readlines(self, hint: int | None = -1) -> list[str]:
        """Read lines until EOF (or until they total ``hint`` characters or more)."""
        try:
            limit = size_arg(hint)
        except Exception:
            await refuse()
            raise
        lines: list[str] = []
        total = 0
        async for line in self:
            lines.append(line)
            total += len(line)
            if 0 < limit <= total:
                break
        return lines

    # -- writing -------------------------------------------------------

    async def write(self, data: str) -> int:
        """Write ``data`` (encoded, ``\\n`` translated per ``newline``); return its length."""
        try:
            if not isinstance(data, str):
                raise TypeError(f"write() argument must be str, not {type(data).__name__}")
            self._check_open()
            if self._encoder is None:
                raise io.UnsupportedOperation("not writable")
        except Exception:
            await refuse()
            raise
        length = len(data)
        text = data
        if self._translate_out and self._write_nl != "\n" and "\n" in text:
            text = text.replace("\n", self._write_nl)
        flush = self.line_buffering and ("\n" in text or "\r" in text)
        await self._enter()
        try:
            # Encoded only now: a write cancelled above must not have
            # advanced the encoder (a BOM, a stateful codec).
            encoded = self._encoder.encode(text)
            # TextIOWrapper forgets decoded text on write (the binary
            # file rewinds only its own read-ahead).
            self._forget_decoded()
            await self.buffer.write(encoded)
            if flush:
                await self.buffer.flush()
        finally:
            self._lock.release()
        return length

    def _forget_decoded(self) -> None:
        # As TextIOWrapper on write and seek: the decoder restarts too.
        self._chars, self._used = "", 0
        self._chunks = []
        if self._decoder is not None:
            self._decoder.reset()

    async def _flush_writes(self) -> None:
        if self.buffer._wbuf:
            await self.buffer.flush()

    async def flush(self) -> None:
        """Write out what the buffers hold."""
        try:
            self._check_open()
        except Exception:
            await refuse()
            raise
        self._telling = True  # as TextIOWrapper.flush
        await self.buffer.flush()

    # -- position ------------------------------------------------------

    async def tell(self) -> int:
        """An opaque cookie for :meth:`seek`: ``TextIOWrapper.tell``'s number."""
        try:
            self._check_open()
            if not self.buffer.seekable():
                raise io.UnsupportedOperation("underlying stream is not seekable")
            if not self._telling:
                raise OSError("telling position disabled by next() call")
        except Exception:
            await refuse()
            raise
        await self.flush()
        position = self.buffer._tell()
        decoder = self._decoder
        if decoder is None or not self._chunks:
            return position
        self._drop_returned_chunks()
        flags, held = self._chunks[0][:2]
        fed = held + b"".join(chunk[2] for chunk in self._chunks)
        position -= len(fed)
        skip = self._used
        if skip == 0:
            return pack_cookie(position, flags)
        saved = decoder.getstate()
        try:
            return pack_cookie(*reconstruct(decoder, position, flags, fed, skip, self._chunks[0]))
        finally:
            decoder.setstate(saved)

    async def seek(self, cookie: int, whence: int = os.SEEK_SET) -> int:
        """Go to a :meth:`tell` cookie, or to the start/end (``seek(0, 2)``).

        The arguments are checked as the C ``TextIOWrapper.seek`` checks
        them: ``whence`` first, then the cookie, which is compared with 0 and
        then taken as ``int(cookie)`` (so a float cookie is accepted and
        returned as given, as there).
        """
        try:
            how = int_arg(whence)
            self._check_open()
            if not self.buffer.seekable():
                raise io.UnsupportedOperation("underlying stream is not seekable")
            if how == os.SEEK_CUR and cookie != 0:
                raise io.UnsupportedOperation("can't do nonzero cur-relative seeks")
            if how == os.SEEK_END and cookie != 0:
                raise io.UnsupportedOperation("can't do nonzero end-relative seeks")
            if how not in (os.SEEK_SET, os.SEEK_CUR, os.SEEK_END):
                raise ValueError(f"invalid whence ({how}, should be 0, 1 or 2)")
            if how == os.SEEK_SET and cookie < 0:
                raise ValueError(f"negative seek position {cookie!r}")
            number = int(cookie) if how == os.SEEK_SET else 0
        except Exception:
            await refuse()
            raise
        given = cookie
        if how == os.SEEK_CUR:
            # As TextIOWrapper: seek(tell()), which re-syncs the decoder.
            number, how = await self.tell(), os.SEEK_SET
            given = number
        self._telling = True
        if how == os.SEEK_END:
            await self.flush()
            self._forget_decoded()
            position = await self.buffer.seek(0, os.SEEK_END)
            self._reset_encoder(position)
            return position
        cookie = number
        await self.flush()
        position, flags, feed, skip, need_eof = unpack_cookie(cookie)
        if position > _OFF_MAX:
            position -= 2**64  # the cookie's off_t is signed (lseek says EINVAL)
        await self.buffer.seek(position)
        self._chars, self._used = "", 0
        self._chunks = []
        if self._decoder is not None:
            if cookie == 0:
                self._decoder.reset()
            else:
                self._decoder.setstate((b"", flags))
            self._chunks = [(flags, b"", b"", 0)]
        if skip:
            data = await self.buffer.read(feed)
            self._chars = self._decoder.decode(data, need_eof)
            self._chunks = [(flags, b"", data, len(self._chars))]
            if len(self._chars) < skip:
                raise OSError("can't restore logical file position")
            self._used = skip
        self._reset_encoder(cookie)
        return given

    def _reset_encoder(self, position: int) -> None:
        # A BOM is written only at the very start of the file.
        if self._encoder is not None:
            if position == 0:
                self._encoder.reset()
            else:
                self._encoder.setstate(0)

    async def truncate(self, size: int | None = None) -> int:
        """Flush and resize the file (``size`` in bytes; default: the position)."""
        await self.flush()
        if size is None:
            size = await self.tell()
        return await self.buffer.truncate(size)

    async def fsync(self) -> None:
        """Flush, then ``fsync``."""
        await self.buffer.fsync()

    async def fdatasync(self) -> None:
        """Flush, then ``fdatasync``."""
        await self.buffer.fdatasync()

    async def aclose(self) -> None:
        """Flush and close; closed even if the flush fails or is cancelled."""
        await self.buffer.aclose()

    def start_writing_at(self, position: int) -> None:
        """Set up the encoder for a file opened at ``position`` (no BOM mid-file)."""
        if position != 0 and self._encoder is not None:
            self._encoder.setstate(0)
