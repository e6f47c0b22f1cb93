"""``trio_uring.open_file``: ``open``'s semantics, opened with ``IORING_OP_OPENAT``.

Builds the three layers ``open`` builds (raw fd, buffers, text), each from
its own module: ``modes.py`` (arguments and mode), ``raw.py``
(positional I/O on the fd), ``binary.py`` (buffering, the binary
API), ``text.py`` (decoding). On a run that is not on io_uring the
open and every later op run in Trio's worker threads instead.
"""

from __future__ import annotations

import os
import stat
from typing import TYPE_CHECKING, Any, overload

import trio

from .._core import fileops
from .._core.manager import running_manager
from . import modes
from .base import refuse
from .binary import AsyncBinaryFile
from .raw import RawFile
from .text import AsyncTextFile
from .textcodec import check_text_args, resolve_encoding, text_encoding

if TYPE_CHECKING:
    from collections.abc import Callable

    from _typeshed import OpenBinaryMode, OpenTextMode, StrOrBytesPath

    FileArg = StrOrBytesPath | int
    Opener = Callable[[str | bytes, int], int]


_INT_MIN = -(2**31)
_INT_MAX = 2**31 - 1


async def _open_fd(path: Any, flags: int, opener: Opener | None) -> int:
    if opener is not None:
        # As io.FileIO: the opener is a plain function called with the
        # path and flags; it runs in a thread like any blocking open.
        fd = await trio.to_thread.run_sync(opener, path, flags | os.O_CLOEXEC)
        if not isinstance(fd, int):
            raise TypeError(f"expected integer from opener, got {type(fd).__name__}")
        if fd < 0:
            raise ValueError(f"opener returned {fd}")
        return fd
    mgr = running_manager()
    if mgr is not None:
        try:
            raw, filename = fileops.path(path, "openat")
        except Exception:
            await refuse()
            raise
        return await fileops.openat(mgr, fileops.AT_FDCWD, raw, filename, flags, 0o666)
    return await trio.to_thread.run_sync(os.open, path, flags | os.O_CLOEXEC, 0o666)


@overload
async def open_file(
    file: FileArg,
    mode: OpenTextMode = "r",
    buffering: int = -1,
    encoding: str | None = None,
    errors: str | None = None,
    newline: str | None = None,
    closefd: bool = True,
    opener: Opener | None = None,
) -> AsyncTextFile: ...


@overload
async def open_file(
    file: FileArg,
    mode: OpenBinaryMode,
    buffering: int = -1,
    encoding: None = None,
    errors: None = None,
    newline: None = None,
    closefd: bool = True,
    opener: Opener | None = None,
) -> AsyncBinaryFile: ...


@overload
async def open_file(
    file: FileArg,
    mode: str,
    buffering: int = -1,
    encoding: str | None = None,
    errors: str | None = None,
    newline: str | None = None,
    closefd: bool = True,
    opener: Opener | None = None,
) -> AsyncBinaryFile | AsyncTextFile: ...


async def open_file(
    file: FileArg,
    mode: str = "r",
    buffering: int = -1,
    encoding: str | None = None,
    errors: str | None = None,
    newline: str | None = None,
    closefd: bool = True,
    opener: Opener | None = None,
) -> AsyncBinaryFile | AsyncTextFile:
    """Open a file, as ``trio.open_file`` / ``open`` do, with native io_uring ops.

    Same arguments, same modes, same exceptions as the builtin ``open``.
    Returns an :class:`AsyncBinaryFile` for binary modes and an
    :class:`AsyncTextFile` for text modes (both :class:`AsyncFile`). On
    io_uring the open is ``IORING_OP_OPENAT`` and every read and write one
    ``IORING_OP_READ``/``WRITE``; elsewhere (stock Trio, a fallback run)
    they run in Trio's worker threads, with the same API. See ``docs/files.md``.
    """
    try:
        if encoding is None and "b" not in str(mode):
            # Before anything else, as open(): -W error::EncodingWarning raises here.
            encoding = text_encoding(encoding, 2)
        parsed, buffering = modes.parse(mode, buffering, encoding, errors, newline)
        if isinstance(file, bool):
            file = int(file)
        if isinstance(file, int) and not _INT_MIN <= file <= _INT_MAX:
            # open() takes an int that is no C int for a name: not a str.
            raise TypeError(f"expected str, bytes or os.PathLike object, not {type(file).__name__}")
        if isinstance(file, int):
            if file < 0:
                raise ValueError("negative file descriptor")
            name: Any = file
        else:
            name = os.fspath(file)  # TypeError for anything else, as open()
            if not closefd:
                raise ValueError("Cannot use closefd=False with file name")
    except Exception:
        # trio.open_file runs open() in a thread: Cancelled comes first.
        await refuse()
        raise
    if isinstance(name, int):
        fd = name
    else:
        fd = await _open_fd(name, parsed.flags, opener)
        closefd = True
    try:
        st = os.fstat(fd)
        if stat.S_ISDIR(st.st_mode):
            raise IsADirectoryError(21, os.strerror(21), name)
        if buffering == 0 and parsed.text:
            raise ValueError("can't have unbuffered text I/O")
        raw = RawFile(fd, closefd=closefd, append=parsed.appending)
        if parsed.appending and raw.seekable:
            raw.seek(0, os.SEEK_END)
        size = 0 if buffering == 0 else modes.buffer_size(buffering, st.st_blksize)
        # Buffered or not, the binary file reports FileIO's mode ("w+" is "rb+").
        binary = AsyncBinaryFile(
            raw, name=name, mode=parsed.raw_mode, readable=parsed.readable,
            writable=parsed.writable, buffer_size=size,
        )  # fmt: skip
        if not parsed.text:
            return binary
        assert encoding is not None
        encoding = resolve_encoding(encoding)
        info = check_text_args(encoding, newline)
        line_buffering = buffering == 1 or os.isatty(fd)
        text = AsyncTextFile(
            binary, mode=mode, encoding=encoding, errors=errors, newline=newline,
            line_buffering=line_buffering, info=info,
        )  # fmt: skip
        if parsed.writable and raw.seekable:
            text.start_writing_at(raw.pos)
        return text
    except BaseException as exc:
        if closefd:
            os.close(fd)
        if isinstance(exc, Exception):
            await refuse()  # an argument open() checks once the file is open
        raise
