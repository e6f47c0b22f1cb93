"""``trio_uring.Path``: a ``trio.Path`` whose common file-system calls are io_uring fileops.

``stat``/``lstat``/``exists``/``is_file``/``is_dir`` are ``IORING_OP_STATX``,
``unlink``/``rmdir`` ``UNLINKAT``, ``rename``/``replace`` ``RENAMEAT``,
``mkdir`` ``MKDIRAT``, ``open``/``read_*``/``write_*``/``touch`` go through
:func:`trio_uring.open_file` (``OPENAT``). Each keeps ``pathlib``'s
semantics (same results, same exceptions) for the running Python. Every
other method is ``trio.Path``'s (a worker thread), and so is everything on
a run that is not on io_uring.
"""

from __future__ import annotations

import errno
import os
import pathlib
import stat
import sys
from typing import TYPE_CHECKING, Any, ClassVar

import trio

from .._core import fileops
from .._core.abi import OP
from .._core.args import mode as _mode_arg
from .._core.manager import UringIOManager, running_manager
from .base import refuse
from .open import open_file
from .textcodec import text_encoding

if TYPE_CHECKING:
    from _typeshed import ReadableBuffer, StrPath

    from .binary import AsyncBinaryFile
    from .text import AsyncTextFile

# pathlib (3.8-3.12) treats these as "does not exist" in exists()/is_*();
# 3.13 switched to os.path's rule: any OSError.
_MISSING_ERRNOS = frozenset({errno.ENOENT, errno.ENOTDIR, errno.EBADF, errno.ELOOP})
_ANY_OSERROR_IS_MISSING = sys.version_info >= (3, 13)


def _native(opcode: str) -> bool:
    manager = running_manager()
    return manager is not None and manager.supports(OP[opcode])


def _manager() -> UringIOManager:
    """The running manager (after ``_native`` said the run is ours)."""
    mgr = running_manager()
    if mgr is None:  # pragma: no cover - _native() said this run is ours
        raise RuntimeError("not on a trio_uring run")
    return mgr


async def _mode(mode: Any) -> int:
    """A permission ``mode`` as ``os.mkdir``/``os.open`` take it (any C int: the kernel masks it).

    Refused after Trio's cancel check, as ``trio.Path`` (a thread) refuses it.
    """
    try:
        return _mode_arg(mode)
    except Exception:
        await refuse()
        raise


async def _path(value: Any, func: str, arg: str = "path") -> tuple[bytes, str | bytes]:
    """``fileops.path``, refused after Trio's cancel check (see :func:`_mode`)."""
    try:
        return fileops.path(value, func, arg)
    except Exception:
        await refuse()
        raise


def _means_missing(exc: OSError) -> bool:
    return _ANY_OSERROR_IS_MISSING or exc.errno in _MISSING_ERRNOS


class Path(trio.Path, pathlib.PurePosixPath):
    """A ``trio.Path`` (so a ``pathlib.PurePosixPath``) with native io_uring fileops.

    ``open``, ``read_bytes``, ``write_bytes``, ``read_text``,
    ``write_text``, ``stat``, ``lstat``, ``exists``, ``is_file``,
    ``is_dir``, ``unlink``, ``rename``, ``replace``, ``mkdir``, ``rmdir``
    and ``touch`` are io_uring ops on a run on io_uring; the rest (and all
    of it elsewhere) are ``trio.Path``'s threaded methods. ``open`` returns
    a :class:`trio_uring.AsyncFile`.
    """

    __slots__ = ()

    _wrapped_cls: ClassVar[type[pathlib.Path]] = pathlib.PosixPath

    def __repr__(self) -> str:
        return f"trio_uring.Path({str(self)!r})"

    async def open(  # type: ignore[override]
        self,
        mode: str = "r",
        buffering: int = -1,
        encoding: str | None = None,
        errors: str | None = None,
        newline: str | None = None,
    ) -> AsyncBinaryFile | AsyncTextFile:
        """Open the file, as :func:`trio_uring.open_file` (``pathlib.Path.open``'s arguments)."""
        try:
            if "b" not in mode:
                encoding = text_encoding(encoding)
        except Exception:
            await refuse()
            raise
        return await open_file(self, mode, buffering, encoding, errors, newline)

    async def read_bytes(self) -> bytes:
        """The file's contents, as bytes."""
        async with await open_file(self, "rb") as f:
            return await f.read()

    async def read_text(self, encoding: str | None = None, errors: str | None = None) -> str:
        """The file's contents, decoded."""
        encoding = text_encoding(encoding)
        async with await open_file(self, "r", encoding=encoding, errors=errors) as f:
            return await f.read()

    async def write_bytes(self, data: ReadableBuffer) -> int:
        """Replace the file's contents with ``data``; return its length."""
        try:
            view = memoryview(data)  # TypeError before the file is touched, as pathlib
        except Exception:
            await refuse()
            raise
        try:
            async with await open_file(self, "wb") as f:
                return await f.write(view)
        finally:
            view.release()  # the caller's buffer is free again, even after a cancel

    async def write_text(
        self,
        data: str,
        encoding: str | None = None,
        errors: str | None = None,
        newline: str | None = None,
    ) -> int:
        """Replace the file's contents with ``data``, encoded; return its length."""
        if not isinstance(data, str):
            await refuse()
            raise TypeError(f"data must be str, not {type(data).__name__}")
        encoding = text_encoding(encoding)
        async with await open_file(
            self, "w", encoding=encoding, errors=errors, newline=newline
        ) as f:
            return await f.write(data)

    async def stat(self, *, follow_symlinks: bool = True) -> os.stat_result:
        """``os.stat`` of the path (``os.lstat`` with ``follow_symlinks=False``)."""
        if not _native("STATX"):
            return await super().stat(follow_symlinks=follow_symlinks)
        mgr = _manager()
        raw, filename = await _path(self, "statx")
        flags = 0 if follow_symlinks else fileops.AT_SYMLINK_NOFOLLOW
        return await fileops.statx(mgr, fileops.AT_FDCWD, raw, filename, flags)

    async def lstat(self) -> os.stat_result:
        """``os.lstat`` of the path."""
        return await self.stat(follow_symlinks=False)

    async def _mode_or_none(self) -> int | None:
        try:
            return (await self.stat()).st_mode
        except OSError as exc:
            if not _means_missing(exc):
                raise
            return None
        except ValueError:
            # Not encodable, or a NUL byte: pathlib says False (after the
            # thread trio.Path runs it in: a schedule point).
            await trio.lowlevel.cancel_shielded_checkpoint()
            return None

    async def exists(self) -> bool:
        """Whether the path exists (following symlinks), as ``pathlib``."""
        return await self._mode_or_none() is not None

    async def is_file(self) -> bool:
        """Whether the path is a regular file (or a symlink to one), as ``pathlib``."""
        mode = await self._mode_or_none()
        return mode is not None and stat.S_ISREG(mode)

    async def is_dir(self) -> bool:
        """Whether the path is a directory (or a symlink to one), as ``pathlib``."""
        mode = await self._mode_or_none()
        return mode is not None and stat.S_ISDIR(mode)

    async def unlink(self, missing_ok: bool = False) -> None:
        """Remove the file (``missing_ok``: no error if it is not there)."""
        if not _native("UNLINKAT"):
            return await super().unlink(missing_ok)
        mgr = _manager()
        raw, filename = await _path(self, "unlinkat")
        try:
            await fileops.unlinkat(mgr, fileops.AT_FDCWD, raw, filename, rmdir=False)
        except FileNotFoundError:
            if not missing_ok:
                raise
        return None

    async def rmdir(self) -> None:
        """Remove the (empty) directory."""
        if not _native("UNLINKAT"):
            return await super().rmdir()
        mgr = _manager()
        raw, filename = await _path(self, "unlinkat")
        return await fileops.unlinkat(mgr, fileops.AT_FDCWD, raw, filename, rmdir=True)

    async def rename(self, target: StrPath) -> Path:
        """Rename to ``target`` (replacing it if it is a file); return the new path."""
        if not _native("RENAMEAT"):
            await super().rename(target)
            return self.__class__(target)
        mgr = _manager()
        raw_src, name_src = await _path(self, "renameat", "src")
        raw_dst, name_dst = await _path(target, "renameat", "dst")
        at = fileops.AT_FDCWD
        await fileops.renameat(mgr, (at, raw_src, name_src), (at, raw_dst, name_dst), 0)
        return self.__class__(target)

    async def replace(self, target: StrPath) -> Path:
        """Rename to ``target``, replacing it; return the new path (``os.replace``)."""
        return await self.rename(target)

    async def mkdir(self, mode: int = 0o777, parents: bool = False, exist_ok: bool = False) -> None:
        """Create the directory, as ``pathlib.Path.mkdir``."""
        if not _native("MKDIRAT"):
            return await super().mkdir(mode, parents, exist_ok)
        mgr = _manager()
        raw, filename = await _path(self, "mkdirat")
        perm = await _mode(mode)
        try:
            await fileops.mkdirat(mgr, fileops.AT_FDCWD, raw, filename, perm)
        except FileNotFoundError:
            if not parents or self.parent == self:
                raise
            await self.parent.mkdir(parents=True, exist_ok=True)
            await self.mkdir(mode, parents=False, exist_ok=exist_ok)
        except OSError:
            # As pathlib: another errno (EACCES, EROFS) may come before EEXIST.
            if not exist_ok or not await self.is_dir():
                raise
        return None

    async def touch(self, mode: int = 0o666, exist_ok: bool = True) -> None:
        """Create the file if missing; else (``exist_ok``) bump its times, as ``pathlib``."""
        if not _native("OPENAT"):
            return await super().touch(mode, exist_ok)
        mgr = _manager()
        raw, filename = await _path(self, "openat")
        try:
            perm = _mode_arg(mode)
        except Exception:
            # pathlib parses mode only when it must create the file (an
            # existing one just gets utime): its threaded code decides.
            return await super().touch(mode, exist_ok)
        flags = os.O_CREAT | os.O_WRONLY | (0 if exist_ok else os.O_EXCL)
        try:
            fd = await fileops.openat(mgr, fileops.AT_FDCWD, raw, filename, flags, perm)
        except OSError:
            if not exist_ok:
                raise
            # A directory, or no write permission: pathlib's utime path
            # decides (it succeeds for an owner, or raises its error).
            return await super().touch(mode, exist_ok)
        try:
            if exist_ok:
                os.utime(fd)  # futimens on the open fd: "now", as pathlib's utime
        finally:
            await fileops.close(mgr, fd)
        return None
