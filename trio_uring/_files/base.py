"""``AsyncFile``: what binary and text files share, and the argument checks both use."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from typing import TYPE_CHECKING, Any, AnyStr, Generic

if TYPE_CHECKING:
    from types import TracebackType

    from typing_extensions import Self


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
