"""``AsyncFile``: what binary and text files share, and the argument checks both use."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from typing import TYPE_CHECKING, Any, AnyStr, Final, Generic

import trio

if TYPE_CHECKING:
    from types import TracebackType

    from typing_extensions import Self


_SSIZE_MIN: Final = -(2**63)
_SSIZE_MAX: Final = 2**63 - 1
_INT_MIN: Final = -(2**31)
_INT_MAX: Final = 2**31 - 1
checkpoint_if_cancelled = trio.lowlevel.checkpoint_if_cancelled


def size_arg(size: Any) -> int:
    """A ``size`` argument of read/readline: an int, or None for "all"."""
    if size is None:
        return -1
    try:
        number: int = size.__index__()
    except AttributeError:
        raise TypeError(
            f"argument should be integer or None, not '{type(size).__name__}'"
        ) from None
    if not _SSIZE_MIN <= number <= _SSIZE_MAX:
        raise OverflowError("cannot fit 'int' into an index-sized integer")
    return number


def ssize_arg(value: Any) -> int:
    """An integer that must fit a C ``Py_ssize_t`` (``read1``, ``peek``, text ``readline``)."""
    number = index_arg(value)
    if not _SSIZE_MIN <= number <= _SSIZE_MAX:
        raise OverflowError("Python int too large to convert to C ssize_t")
    return number


def int_arg(value: Any) -> int:
    """An integer that must fit a C ``int`` (``whence``), as the stdlib parses it."""
    number = index_arg(value)
    if not _INT_MIN <= number <= _INT_MAX:
        raise OverflowError("Python int too large to convert to C int")
    return number


async def refuse() -> None:
    """What a method does before its argument error escapes: Trio's cancel check.

    ``trio.open_file``'s methods run in a thread, whose start is a
    checkpoint: in a cancelled scope they raise ``Cancelled`` before the
    stdlib sees the arguments. Callers catch the error, ``await refuse()``,
    and re-raise, so that only the error path pays for it.
    """
    await checkpoint_if_cancelled()


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
        try:
            limit = size_arg(hint)
        except Exception:
            await refuse()
            raise
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
        try:
            items = iter(lines)
        except Exception:
            await refuse()
            raise
        for line in items:
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
