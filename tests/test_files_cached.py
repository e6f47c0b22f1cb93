"""Reads the page cache answers at once: ``RWF_NOWAIT`` first, the op otherwise.

``_core/fileops.py`` (``read_cached``) tries a positional read of up to
64 KiB with one ``preadv2(RWF_NOWAIT)`` before it queues an op. Checked
here: the same bytes either way; a cached read queues no SQE and is still
a checkpoint; an evicted file (``POSIX_FADV_DONTNEED``) is read by the op;
a file system that refuses the flag (procfs) turns it off for that file;
``O_DIRECT`` files never try it; a cancelled task reads nothing.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Awaitable, Callable, Iterator

import pytest
import trio
import trio.testing

import trio_uring
from trio_uring import UringStatistics
from trio_uring._core.fileops import CACHED_READ_MAX

DATA = os.urandom(1 << 20)


@pytest.fixture
def data_file() -> Iterator[str]:
    with tempfile.NamedTemporaryFile(delete=False) as f:
        f.write(DATA)
        f.flush()
        os.fsync(f.fileno())
    try:
        yield f.name
    finally:
        os.unlink(f.name)


def sqes() -> int:
    stats = trio.lowlevel.current_statistics().io_statistics
    assert isinstance(stats, UringStatistics)
    return stats.sqes_submitted


def run(fn: Callable[[], Awaitable[None]]) -> None:
    trio_uring.run(fn, fallback="raise")


def evict(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def test_a_cached_read_queues_no_sqe_and_is_a_checkpoint(data_file: str) -> None:
    async def main() -> None:
        async with await trio_uring.open_file(data_file, "rb") as f:
            assert await f.pread(10, 0) == DATA[:10]  # now cached, surely
            before = sqes()
            with trio.testing.assert_checkpoints():
                got = await f.pread(4096, 8192)
            assert got == DATA[8192:12288]
            assert await f.pread(CACHED_READ_MAX, 1000) == DATA[1000 : 1000 + CACHED_READ_MAX]
            assert await f.pread(100, len(DATA) + 5) == b""  # past the end: 0, final
            assert sqes() == before
            # Short (the end of the file, or only partly cached: the cache
            # cannot say which): the op reads it.
            assert await f.pread(100, len(DATA) - 40) == DATA[-40:]
            assert sqes() == before + 1
            before = sqes()
            # Larger than CACHED_READ_MAX: the op, as before.
            assert await f.pread(CACHED_READ_MAX + 1, 0) == DATA[: CACHED_READ_MAX + 1]
            assert sqes() > before

    run(main)


def test_an_evicted_file_is_read_by_the_op(data_file: str) -> None:
    async def main() -> None:
        async with await trio_uring.open_file(data_file, "rb") as f:
            evict(data_file)
            before = sqes()
            assert await f.pread(4096, 65536) == DATA[65536 : 65536 + 4096]
            assert sqes() > before  # RWF_NOWAIT said EAGAIN: the op read it
            assert f._raw.nowait  # not turned off: it was only not cached
            evict(data_file)
            # The buffered, sequential path too.
            f2 = await trio_uring.open_file(data_file, "rb")
            async with f2:
                assert await f2.read(1 << 20) == DATA

    run(main)


def test_a_file_system_that_refuses_the_flag_turns_it_off() -> None:
    async def main() -> None:
        async with await trio_uring.open_file("/proc/self/status", "rb") as f:
            raw = f._raw
            assert raw.nowait  # seekable, so it is tried
            first = await f.pread(4096, 0)
            assert first.startswith(b"Name:")
            assert not raw.nowait  # procfs answered EOPNOTSUPP: never again
            before = sqes()
            assert (await f.pread(4096, 0)).startswith(b"Name:")
            assert sqes() > before

    run(main)


def test_o_direct_files_never_try_it(data_file: str) -> None:
    async def main() -> None:
        try:
            fd = os.open(data_file, os.O_RDONLY | os.O_DIRECT)
        except OSError as exc:  # pragma: no cover - a file system without O_DIRECT
            pytest.fail(f"this test needs O_DIRECT on the temporary directory: {exc}")
        async with await trio_uring.open_file(fd, "rb", buffering=0) as f:
            assert not f._raw.nowait

    run(main)


def test_a_cancelled_task_reads_nothing_from_the_cache(data_file: str) -> None:
    async def main() -> None:
        async with await trio_uring.open_file(data_file, "rb") as f:
            assert await f.pread(10, 0) == DATA[:10]
            with trio.CancelScope() as scope:
                scope.cancel()
                await f.pread(4096, 0)
            assert scope.cancelled_caught

    run(main)


def test_the_same_bytes_as_the_stdlib_at_every_size_and_offset(data_file: str) -> None:
    cases = [(n, off) for n in (0, 1, 4095, 4096, 4097, 65536) for off in (0, 1, 4095, 999_999)]

    async def main() -> None:
        async with await trio_uring.open_file(data_file, "rb") as f:
            for n, off in cases:
                assert await f.pread(n, off) == DATA[off : off + n], (n, off)

    run(main)
