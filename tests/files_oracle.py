"""Run one sequence of file operations on the builtin ``open`` and on ``trio_uring.open_file``.

Each op is a tuple ``(name, *args)``; each result is ``("ok", value)`` or
``("err", exception type name, errno)``, so the two sides compare with
``==`` op by op. Exception messages are not compared (CPython words them
differently per layer); types and errno are.
"""

from __future__ import annotations

import inspect
import io
import os
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

import trio

import trio_uring

Op = tuple[Any, ...]
Result = tuple[Any, ...]


def _error(exc: BaseException) -> Result:
    return ("err", type(exc).__name__, getattr(exc, "errno", None))


def _sync_step(f: Any, op: Op, cookies: list[Any]) -> Any:
    name, *args = op
    if name == "readinto":
        buf = bytearray(args[0])
        count = f.readinto(buf)
        return (count, bytes(buf[: count or 0]))
    if name == "seek_cookie":
        return f.seek(cookies[args[0] % len(cookies)] if cookies else 0)
    if name == "readall":
        return f.readall() if hasattr(f, "readall") else f.read()
    if name == "read1":
        if f.writable():
            # CPython 3.11's BufferedRandom.read1 ignores pending writes: it
            # reads at the raw position (behind the logical one) and the
            # write buffer lands after what it returned. Both sides flush
            # first (as read() does), which drops the read-ahead on both.
            f.flush()
        start = f.tell()
        return _read1_contract(f.read1(*args), args[0], start, f.seek)
    value = getattr(f, name)(*args)
    if name == "write" and _flush_after_write(f):
        # In append modes CPython's buffered position after a write is the
        # old position + length until the next flush, then the end (its
        # tell() changes across a flush that writes nothing new), and "a+"
        # keeps serving reads from a read-ahead buffer the write was copied
        # into while the bytes went to the end. Unbuffered, or after a
        # flush, the position is the end. Both sides flush here.
        f.flush()
    if name == "tell":
        cookies.append(value)
    return value


def _read1_contract(data: bytes, size: Any, start: int, seek: Any) -> tuple[bytes, bool]:
    """What read1 promises, comparable across implementations.

    How much one raw read returns depends on what the buffer held (CPython
    keeps the last raw read, rounds direct reads to whole blocks...), so
    the exact length is not compared: the first byte (b"" only at EOF) and
    the size cap are. Both sides then continue one byte after ``start``.
    """
    capped = not isinstance(size, int) or size < 0 or len(data) <= size
    if seek is not None:
        seek(start + len(data[:1]))
    return data[:1], capped


def _flush_after_write(f: Any) -> bool:
    # Text files that read and write too: TextIOWrapper reads through
    # BufferedRandom.read1, so CPython 3.11's read1 bug (above) would make
    # a read after a write return bytes from behind the position.
    text_rw = isinstance(f, (io.TextIOBase, trio_uring.AsyncTextFile)) and f.writable()
    return "a" in f.mode or (text_rw and f.readable())


async def _async_step(f: Any, op: Op, cookies: list[Any]) -> Any:
    name, *args = op
    if name == "readinto":
        buf = bytearray(args[0])
        count = await f.readinto(buf)
        return (count, bytes(buf[:count]))
    if name == "seek_cookie":
        return await f.seek(cookies[args[0] % len(cookies)] if cookies else 0)
    if name == "readall":
        return await (f.readall() if hasattr(f, "readall") else f.read())
    if name == "read1":
        if f.writable():
            await f.flush()  # as the oracle does (see _sync_step)
        start = await f.tell()
        data = await f.read1(*args)
        result = _read1_contract(data, args[0], start, None)
        await f.seek(start + len(result[0]))
        return result
    value = getattr(f, name)(*args)
    if inspect.isawaitable(value):  # seekable() & co. are plain methods, as in trio
        value = await value
    if name == "write" and _flush_after_write(f):
        await f.flush()  # as the oracle does (see _sync_step)
    if name == "tell":
        cookies.append(value)
    return value


def run_sync(path: str, mode: str, ops: Sequence[Op], **kwargs: Any) -> list[Result]:
    """The oracle: ``open`` and the ops, then the file's bytes."""
    results: list[Result] = []
    try:
        f = open(path, mode, **kwargs)  # noqa: SIM115 - closed below
    except Exception as exc:
        return [_error(exc)]
    cookies: list[Any] = []
    with f:
        for op in ops:
            try:
                results.append(("ok", _sync_step(f, op, cookies)))
            except (OSError, ValueError, TypeError, LookupError) as exc:
                results.append(_error(exc))
    results.append(("file", _contents(path)))
    return results


async def run_async(path: str, mode: str, ops: Sequence[Op], **kwargs: Any) -> list[Result]:
    """The same on ``trio_uring.open_file``."""
    results: list[Result] = []
    try:
        f = await trio_uring.open_file(path, mode, **kwargs)
    except Exception as exc:
        return [_error(exc)]
    cookies: list[Any] = []
    async with f:
        for op in ops:
            try:
                results.append(("ok", await _async_step(f, op, cookies)))
            except (OSError, ValueError, TypeError, LookupError) as exc:
                results.append(_error(exc))
    results.append(("file", _contents(path)))
    return results


def _contents(path: str) -> bytes | None:
    if not os.path.isfile(path) or path.startswith("/proc/"):
        return None  # a FIFO would block; /proc content is not the point
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError:
        return None


def on_backend(backend: str, fn: Callable[..., Any], *args: Any) -> Any:
    """Run ``fn(*args)`` on io_uring (``"uring"``) or on stock Trio (``"stock"``)."""
    if backend == "uring":
        return trio_uring.run(fn, *args, fallback="raise")
    return trio.run(fn, *args)


def compare(
    backend: str, tmp: str, mode: str, content: bytes | None, ops: Sequence[Op], **kwargs: Any
) -> tuple[list[Result], list[Result]]:
    """Both sides from the same starting file; returns (oracle, ours)."""
    a = os.path.join(tmp, "oracle")
    b = os.path.join(tmp, "ours")
    for path in (a, b):
        if os.path.exists(path):
            os.unlink(path)
        if content is not None:
            with open(path, "wb") as f:
                f.write(content)
    expected = run_sync(a, mode, ops, **kwargs)
    got = on_backend(backend, partial(run_async, **kwargs), b, mode, ops)
    return expected, got
