"""Exactly once under cancellation: a cancelled read/write completed or had no effect.

Seeded random cancels (from a sibling task, after a random number of
scheduler ticks) and random deadlines (kernel-linked timeouts on io_uring)
hit reads and writes on regular files and pipes. Reads must assemble the
source exactly, with the position equal to what was returned; writes must
leave exactly the concatenation of what was reported written.
"""

from __future__ import annotations

import contextlib
import os
import random
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import pytest
import trio

import trio_uring
import trio_uring.lowlevel

from .files_oracle import on_backend

T = TypeVar("T")
BACKENDS = pytest.mark.parametrize("backend", ["uring", "stock"])
SEEDS = pytest.mark.parametrize("seed", [1, 2, 3])


class Outcomes:
    def __init__(self) -> None:
        self.completed = 0
        self.cancelled = 0

    def check_exercised(self) -> None:
        """Enough of both kinds that the run means something (15% are cancelled up front)."""
        assert self.completed >= 20
        assert self.cancelled >= max(5, (self.cancelled + self.completed) // 20)


async def under_random_cancel(
    rng: random.Random, outcomes: Outcomes, fn: Callable[[], Awaitable[T]]
) -> tuple[bool, T | None]:
    """Run ``fn`` in a scope that may be cancelled; (completed, result)."""
    result: list[T] = []
    async with trio.open_nursery() as nursery:
        with trio.CancelScope() as scope:
            how = rng.random()
            if how < 0.15:
                scope.cancel()  # already cancelled: must do nothing at all
            elif how < 0.35:
                scope.deadline = trio.current_time() + rng.choice([0.0, 1e-6, 1e-5, 1e-4, 1e-3])
            elif how < 0.7:
                ticks = rng.randrange(4)

                async def canceller() -> None:
                    for _ in range(ticks):
                        await trio.lowlevel.cancel_shielded_checkpoint()
                    scope.cancel()

                nursery.start_soon(canceller)
            result.append(await fn())
        nursery.cancel_scope.cancel()
    if result:
        outcomes.completed += 1
        return True, result[0]
    outcomes.cancelled += 1
    return False, None


def make_data(seed: int, size: int) -> bytes:
    rng = random.Random(seed)
    lines = []
    total = 0
    while total < size:
        line = bytes(rng.randrange(32, 127) for _ in range(rng.randrange(0, 120))) + b"\n"
        lines.append(line)
        total += len(line)
    return b"".join(lines)[:size]


async def read_all_cancelled(f: Any, rng: random.Random, outcomes: Outcomes) -> bytes:
    got = bytearray()
    while True:
        op = rng.choice(["read", "read", "readline", "read1", "readinto"])
        size = rng.choice([1, 7, 30, 100, 300, 1000, 4095, 4096, 5000])
        if rng.random() < 0.02:
            size = 70000

        async def one(op: str = op, size: int = size) -> bytes:
            if op == "read":
                data: bytes = await f.read(size)
                return data
            if op == "readline":
                return bytes(await f.readline())
            if op == "read1":
                return bytes(await f.read1(size))
            buf = bytearray(size)
            n = await f.readinto(buf)
            return bytes(buf[:n])

        done, data = await under_random_cancel(rng, outcomes, one)
        if f.seekable():
            # Completed or not, the position is exactly what was returned.
            assert await f.tell() == len(got) + (len(data) if done and data else 0)
        if done:
            assert data is not None
            if not data:
                return bytes(got)
            got += data


@BACKENDS
@SEEDS
@pytest.mark.parametrize("buffering", [-1, 0, 512])
def test_regular_file_reads(backend: str, seed: int, buffering: int) -> None:
    data = make_data(seed, 200_000)
    rng = random.Random(seed)
    outcomes = Outcomes()

    async def main(path: str) -> bytes:
        async with await trio_uring.open_file(path, "rb", buffering=buffering) as f:
            if buffering == 0:
                # FileIO has no read1/readline of its own: keep to read/readinto.
                f.read1 = f.read  # type: ignore[method-assign]
            return await read_all_cancelled(f, rng, outcomes)

    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "src")
        with open(path, "wb") as out:
            out.write(data)
        assert on_backend(backend, main, path) == data
    outcomes.check_exercised()


@BACKENDS
@SEEDS
def test_text_reads(backend: str, seed: int) -> None:
    text = make_data(seed, 200_000).decode().replace("a", "é").replace("b", "\r\n")
    rng = random.Random(seed)
    outcomes = Outcomes()

    async def main(path: str) -> str:
        got: list[str] = []
        async with await trio_uring.open_file(path, "r", encoding="utf-8", newline="") as f:
            while True:
                op = rng.choice(["read", "readline"])
                size = rng.choice([1, 10, 5000, -1 if rng.random() < 0.01 else 3])

                async def one(op: str = op, size: int = size) -> str:
                    return str(await (f.read(size) if op == "read" else f.readline(size)))

                done, chunk = await under_random_cancel(rng, outcomes, one)
                if done:
                    if not chunk:
                        return "".join(got)
                    got.append(chunk)
                    # The cookie names the spot: coming back to it changes nothing.
                    await f.seek(await f.tell())

    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "src")
        with open(path, "w", encoding="utf-8", newline="") as out:
            out.write(text)
        assert on_backend(backend, main, path) == text
    outcomes.check_exercised()


def _pipe_writer(fd: int, data: bytes, seed: int, pause: float = 0.0) -> None:
    rng = random.Random(seed)
    view = memoryview(data)
    try:
        while view:
            if pause:
                time.sleep(pause)  # readers park in the kernel meanwhile
            n = os.write(fd, view[: rng.choice([1, 10, 1000] if pause else [1, 10, 1000, 65536])])
            view = view[n:]
    finally:
        os.close(fd)


@BACKENDS
@SEEDS
@pytest.mark.parametrize("buffering", [-1, 0])
def test_pipe_reads(backend: str, seed: int, buffering: int) -> None:
    data = make_data(seed, 200_000)
    rng = random.Random(seed)
    outcomes = Outcomes()
    r, w = os.pipe()
    writer = threading.Thread(target=_pipe_writer, args=(w, data, seed))
    writer.start()

    async def main() -> bytes:
        async with await trio_uring.open_file(r, "rb", buffering=buffering) as f:
            assert not f.seekable()
            if buffering == 0:
                f.read1 = f.read  # type: ignore[method-assign]
            return await read_all_cancelled(f, rng, outcomes)

    try:
        assert on_backend(backend, main) == data
    finally:
        writer.join()
    outcomes.check_exercised()


def _pipe_reader(fd: int, sink: bytearray) -> None:
    try:
        while chunk := os.read(fd, 65536):
            sink += chunk
    finally:
        os.close(fd)


async def write_chunks_cancelled(f: Any, seed: int, outcomes: Outcomes, count: int) -> bytes:
    rng = random.Random(seed)
    reported = bytearray()
    for i in range(count):
        chunk = bytes([65 + i % 26]) * rng.choice([1, 100, 4096, 10000, 100_000])

        async def one(chunk: bytes = chunk) -> int:
            return int(await f.write(chunk))

        done, n = await under_random_cancel(rng, outcomes, one)
        if done:
            assert n is not None
            reported += chunk[:n]
    return bytes(reported)


@BACKENDS
@SEEDS
@pytest.mark.parametrize("buffering", [-1, 0])
def test_regular_file_writes(backend: str, seed: int, buffering: int) -> None:
    outcomes = Outcomes()

    async def main(path: str) -> bytes:
        async with await trio_uring.open_file(path, "wb", buffering=buffering) as f:
            reported = await write_chunks_cancelled(f, seed, outcomes, 400)
            assert await f.tell() == len(reported)
        return reported

    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "dst")
        reported = on_backend(backend, main, path)
        with open(path, "rb") as f:
            assert f.read() == reported
    outcomes.check_exercised()


@BACKENDS
@SEEDS
@pytest.mark.parametrize("buffering", [-1, 0])
def test_pipe_writes(backend: str, seed: int, buffering: int) -> None:
    outcomes = Outcomes()
    r, w = os.pipe()
    sink = bytearray()
    reader = threading.Thread(target=_pipe_reader, args=(r, sink))
    reader.start()

    async def main() -> bytes:
        async with await trio_uring.open_file(w, "wb", buffering=buffering) as f:
            return await write_chunks_cancelled(f, seed, outcomes, 300)

    try:
        reported = on_backend(backend, main)
    finally:
        reader.join()
    assert bytes(sink) == reported
    outcomes.check_exercised()


def test_cancels_land_in_the_kernel() -> None:
    """On io_uring some cancels reach ops the kernel holds, and some results win."""
    r, w = os.pipe()
    data = make_data(9, 20_000)
    writer = threading.Thread(target=_pipe_writer, args=(w, data, 9, 0.001))
    writer.start()
    rng = random.Random(9)
    outcomes = Outcomes()

    async def main() -> tuple[bytes, Any]:
        async with await trio_uring.open_file(r, "rb", buffering=0) as f:
            f.read1 = f.read  # type: ignore[method-assign]
            got = await read_all_cancelled(f, rng, outcomes)
        return got, trio_uring.lowlevel.statistics()

    try:
        got, stats = trio_uring.run(main, fallback="raise")
    finally:
        writer.join()
    assert got == data
    assert stats.cancels_requested > 0


@BACKENDS
def test_cancelled_aclose_while_another_task_flushes(backend: str) -> None:
    # Task A's flush is a write blocked on a full pipe (on io_uring, an op
    # the kernel holds, pinning A's write buffer). Task B, already
    # cancelled, closes the file: it must still close the fd (A sees
    # ClosedResourceError, or its write completes), and must not trip over
    # the write buffer A's op has pinned.
    async def main() -> tuple[bool, str]:
        r, w = os.pipe()
        os.set_blocking(w, False)
        with contextlib.suppress(BlockingIOError):
            while True:
                os.write(w, b"f" * 65536)  # fill the pipe
        os.set_blocking(w, True)
        f = await trio_uring.open_file(w, "wb", buffering=4096)
        outcome = ["none"]

        async def writer() -> None:
            try:
                await f.write(b"x" * 100)  # into the write buffer
                await f.flush()  # blocks: the pipe is full
                outcome[0] = "written"
            except trio.ClosedResourceError:
                outcome[0] = "closed"

        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(writer)
                await trio.sleep(0.2)
                assert outcome[0] == "none"  # really blocked in the flush
                with trio.CancelScope() as scope:
                    scope.cancel()
                    await f.aclose()
                # A blocked worker thread (stock) finishes once the pipe drains.
                os.set_blocking(r, False)
                while outcome[0] == "none":
                    with contextlib.suppress(BlockingIOError):
                        os.read(r, 1 << 20)
                    await trio.sleep(0.01)
        finally:
            os.close(r)
        try:
            os.fstat(w)
            still_open = True
        except OSError:
            still_open = False
        return still_open, outcome[0]

    still_open, outcome = on_backend(backend, main)
    assert not still_open
    assert outcome in ("written", "closed")


@pytest.mark.parametrize("mode", ["wb", "w"])
def test_aclose_in_a_cancelled_scope_flushes_as_trio_open_file_does(
    tmp_path: Any, mode: str
) -> None:
    """Buffered bytes reach the file, the fd is closed, then ``Cancelled`` arrives.

    The oracle is ``trio.open_file`` on the same run, closing the same way.
    """
    data: Any = b"buffered bytes" if "b" in mode else "buffered text"

    async def close_cancelled(f: Any) -> tuple[bool, bool]:
        await f.write(data)
        raised = False
        with trio.CancelScope() as scope:
            scope.cancel()
            try:
                await f.aclose()
            except trio.Cancelled:
                raised = True
                raise
        return raised, scope.cancelled_caught

    async def main() -> None:
        theirs, ours = tmp_path / "theirs", tmp_path / "ours"
        expected = await close_cancelled(await trio.open_file(theirs, mode))
        got = await close_cancelled(await trio_uring.open_file(ours, mode))
        assert got == expected == (True, True)
        assert ours.read_bytes() == theirs.read_bytes() != b""

    trio_uring.run(main, fallback="raise")


@pytest.mark.parametrize("buffering", [-1, 0])
@pytest.mark.parametrize("size", [-5, -1, None, 0, 3])
def test_read_sizes_as_the_stdlib_takes_them(tmp_path: Any, buffering: int, size: Any) -> None:
    """``read(size)`` returns or raises what ``open(...).read(size)`` does (the oracle)."""
    path = tmp_path / "f"
    path.write_bytes(b"hello\n")

    def outcome(call: Callable[[], Any]) -> tuple[str, Any]:
        try:
            return "ok", call()
        except Exception as exc:  # the oracle's exception, whatever it is
            return type(exc).__name__, str(exc)

    with open(path, "rb", buffering=buffering) as f:
        expected = outcome(lambda: f.read(size))

    async def main() -> tuple[tuple[str, Any], bool]:
        f = await trio_uring.open_file(path, "rb", buffering=buffering)
        try:
            got = await f.read(size)
        except Exception as exc:
            result: tuple[str, Any] = (type(exc).__name__, str(exc))
        else:
            result = ("ok", got)
        # And in a cancelled scope, Cancelled comes first, as on trio.open_file.
        with trio.CancelScope() as scope:
            scope.cancel()
            with contextlib.suppress(ValueError):
                await f.read(size)
        await f.aclose()
        return result, scope.cancelled_caught

    got, cancelled_first = trio_uring.run(main, fallback="raise")
    assert got == expected
    assert cancelled_first
