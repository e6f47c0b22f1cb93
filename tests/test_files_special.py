"""Files with no plain position (FIFOs, /proc), EncodingWarning, fd handling, Path.

``open`` is the oracle throughout, on io_uring and on stock Trio (threads).
"""

from __future__ import annotations

import contextlib
import os
import pathlib
import stat
import subprocess
import sys
import tempfile
import threading
from typing import Any

import pytest
import trio

import trio_uring

from .files_oracle import Op, on_backend, run_async, run_sync

BACKENDS = pytest.mark.parametrize("backend", ["uring", "stock"])


# -- FIFOs --------------------------------------------------------------------


def _feed_fifo(path: str, data: bytes) -> threading.Thread:
    def write() -> None:
        with open(path, "wb") as f, contextlib.suppress(BrokenPipeError):
            f.write(data)  # the reader may close early: some op lists read little
            f.flush()

    thread = threading.Thread(target=write)
    thread.start()
    return thread


def _join_writer(path: str, thread: threading.Thread) -> None:
    """Join a feeder; a reader that closed before the feeder opened leaves it blocked in open()."""
    thread.join(0.05)
    while thread.is_alive():
        # Be the reader it waits for, for a moment: its write then fails EPIPE.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        os.close(fd)
        thread.join(0.05)


FIFO_OPS: list[list[Op]] = [
    [("read", 10), ("readline", -1), ("read", 3), ("tell",), ("seek", 0, 0), ("read", -1)],
    [("readline", 5), ("readlines",), ("read", 1), ("seekable",)],
    [("readinto", 100), ("readall",), ("truncate", 0)],
]


@BACKENDS
@pytest.mark.parametrize("ops", FIFO_OPS)
@pytest.mark.parametrize("buffering", [-1, 0])
def test_fifo_reads(backend: str, ops: list[Op], buffering: int) -> None:
    data = b"first line\nsecond line\n" + b"x" * 5000 + b"\nlast"
    if buffering == 0:
        # io.FileIO's readinto/read return what one read(2) gives: on a
        # FIFO that depends on the writer's timing, so keep to whole-file ops.
        ops = [op for op in ops if op[0] in ("tell", "seek", "seekable", "readall", "truncate")]
    with tempfile.TemporaryDirectory() as tmp:
        fifo = os.path.join(tmp, "fifo")
        os.mkfifo(fifo)
        writer = _feed_fifo(fifo, data)
        expected = run_sync(fifo, "rb", ops, buffering=buffering)
        _join_writer(fifo, writer)
        writer = _feed_fifo(fifo, data)
        got = on_backend(backend, lambda: run_async(fifo, "rb", ops, buffering=buffering))
        _join_writer(fifo, writer)
    assert got == expected


@BACKENDS
def test_fifo_text_and_write(backend: str) -> None:
    async def main(fifo: str) -> tuple[list[str], bytes]:
        sink = bytearray()

        def drain() -> None:
            with open(fifo, "rb") as f:
                sink.extend(f.read())

        reader = threading.Thread(target=drain)
        reader.start()
        async with await trio_uring.open_file(fifo, "w", encoding="utf-8") as f:
            await f.write("héllo\nwörld\n" * 1000)
            with pytest.raises(io_unsupported()):
                await f.tell()  # TextIOWrapper: "underlying stream is not seekable"
        await trio.to_thread.run_sync(reader.join)
        writer = _feed_fifo(fifo, bytes(sink))
        async with await trio_uring.open_file(fifo, "r", encoding="utf-8") as f:
            lines = [line async for line in f]
        await trio.to_thread.run_sync(writer.join)
        return lines, bytes(sink)

    with tempfile.TemporaryDirectory() as tmp:
        fifo = os.path.join(tmp, "fifo")
        os.mkfifo(fifo)
        lines, raw = on_backend(backend, main, fifo)
    assert raw == ("héllo\nwörld\n" * 1000).encode()
    assert lines == ["héllo\n", "wörld\n"] * 1000


# -- /proc files: size 0, position-dependent content ---------------------------

PROC_FILES = ["/proc/version", "/proc/filesystems", "/proc/self/limits", "/proc/self/mountinfo"]
PROC_OPS: list[list[Op]] = [
    [("read", -1), ("tell",), ("read", -1), ("seek", 0, 0), ("read", 7), ("tell",)],
    [
        ("readline", -1),
        ("readline", -1),
        ("tell",),
        ("seek", 3, 0),
        ("readline", 4),
        ("readlines",),
        ("tell",),
    ],
    [("read", 1), ("read", 1000), ("seek", 0, 1), ("tell",), ("readall",), ("seekable",)],
]


@BACKENDS
@pytest.mark.parametrize("path", PROC_FILES)
@pytest.mark.parametrize("ops", PROC_OPS)
@pytest.mark.parametrize("buffering", [-1, 0, 16])
def test_proc_files(backend: str, path: str, ops: list[Op], buffering: int) -> None:
    # Same process on both sides, so /proc/self names the same file.
    expected = run_sync(path, "rb", ops, buffering=buffering)
    got = on_backend(backend, lambda: run_async(path, "rb", ops, buffering=buffering))
    assert got == expected


@BACKENDS
def test_proc_text(backend: str) -> None:
    ops: list[Op] = [("readline", -1), ("tell",), ("read", 5), ("seek_cookie", 0), ("read", -1)]
    expected = run_sync("/proc/self/limits", "r", ops, encoding="utf-8")
    got = on_backend(backend, lambda: run_async("/proc/self/limits", "r", ops, encoding="utf-8"))
    assert got == expected


# -- encodings, fds, closefd -----------------------------------------------------


def test_encoding_warning_as_open() -> None:
    code = (
        "import sys, tempfile, os, trio_uring\n"
        "p = os.path.join(tempfile.mkdtemp(), 'f')\n"
        "open(p, 'w', encoding='utf-8').close()\n"
        "async def main():\n"
        "    f = await trio_uring.open_file(p, 'r', encoding='utf-8')\n"
        "    await f.aclose()\n"
        "    f = await trio_uring.open_file(p, 'rb')\n"
        "    await f.aclose()\n"
        "    try:\n"
        "        await trio_uring.open_file(p, 'r')\n"
        "    except EncodingWarning as w:\n"
        "        print('warned', w)\n"
        "    try:\n"
        "        await trio_uring.Path(p).read_text()\n"
        "    except EncodingWarning as w:\n"
        "        print('warned', w)\n"
        "    try:\n"
        "        open(p, 'r')\n"
        "    except EncodingWarning as w:\n"
        "        print('open warned', w)\n"
        "trio_uring.run(main)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-X", "warn_default_encoding", "-W", "error::EncodingWarning", "-c", code],
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    assert proc.stdout.count("warned") == 3, proc.stdout + proc.stderr


@BACKENDS
def test_fd_closefd_and_position(backend: str) -> None:
    async def main(path: str) -> list[Any]:
        fd = os.open(path, os.O_RDWR)
        os.lseek(fd, 3, os.SEEK_SET)
        out: list[Any] = []
        f = await trio_uring.open_file(fd, "rb", closefd=False)
        out.append((f.name, await f.tell(), await f.read(4)))
        await f.aclose()
        # The kernel's offset follows the file's position on close.
        out.append(os.lseek(fd, 0, os.SEEK_CUR))
        os.fstat(fd)  # still open
        f = await trio_uring.open_file(fd, "r+b")
        await f.seek(1)
        await f.read(1)
        # fileno() syncs it too, to the raw position: after the read-ahead,
        # as a BufferedReader's fd is.
        out.append(os.lseek(f.fileno(), 0, os.SEEK_CUR))
        await f.aclose()
        with pytest.raises(OSError, match="Bad file descriptor"):
            os.fstat(fd)
        with pytest.raises(ValueError, match="closefd"):
            await trio_uring.open_file(path, "rb", closefd=False)
        return out

    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "f")
        with open(path, "wb") as f:
            f.write(b"0123456789")
        fd_name = on_backend(backend, main, path)
    assert fd_name[1:] == [7, 10]
    assert fd_name[0][1:] == (3, b"3456")
    assert isinstance(fd_name[0][0], int)


@BACKENDS
def test_closed_file_and_wrong_direction(backend: str) -> None:
    async def main(path: str) -> None:
        f = await trio_uring.open_file(path, "rb")
        with pytest.raises(io_unsupported()):
            await f.write(b"x")
        await f.aclose()
        await f.aclose()  # idempotent
        assert f.closed
        for call in (f.read, f.readline, f.tell, f.flush):
            with pytest.raises(ValueError, match="closed file"):
                await call()
        with pytest.raises(ValueError, match="closed file"):
            f.fileno()

    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "f")
        pathlib.Path(path).write_bytes(b"abc")
        on_backend(backend, main, path)


def io_unsupported() -> type[Exception]:
    import io

    return io.UnsupportedOperation


@BACKENDS
def test_positional_io_from_many_tasks(backend: str) -> None:
    data = os.urandom(1 << 20)

    async def main(path: str) -> None:
        async with await trio_uring.open_file(path, "r+b") as f:
            await f.seek(123)
            results: dict[int, bytes] = {}

            async def reader(i: int) -> None:
                for j in range(20):
                    off = (i * 7919 + j * 4096) % (len(data) - 4096)
                    results[off] = await f.pread(4096, off)
                    assert results[off] == data[off : off + 4096]
                    buf = bytearray(100)
                    assert await f.preadinto(buf, off) == 100
                    assert bytes(buf) == data[off : off + 100]

            async with trio.open_nursery() as nursery:
                for i in range(32):
                    nursery.start_soon(reader, i)
            assert await f.tell() == 123  # untouched
            assert await f.pwrite(b"XY", 10) == 2
            assert await f.pread(4, 9) == data[9:10] + b"XY" + data[12:13]
            assert await f.pread(10, len(data)) == b""
            with pytest.raises(OSError, match="Invalid argument"):
                await f.pread(1, -1)
            assert await f.tell() == 123

    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "f")
        pathlib.Path(path).write_bytes(data)
        on_backend(backend, main, path)


@BACKENDS
def test_readline_loop_costs_one_op_per_buffer(backend: str) -> None:
    lines = [f"line {i}\n".encode() for i in range(5000)]

    async def main(path: str) -> tuple[int, int]:
        async with await trio_uring.open_file(path, "rb") as f:
            before = _ops()
            count = 0
            async for _ in f:
                count += 1
            return count, _ops() - before

    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "f")
        pathlib.Path(path).write_bytes(b"".join(lines))
        count, ops = on_backend(backend, main, path)
    assert count == 5000
    if backend == "uring":
        size = sum(map(len, lines))
        assert ops <= size // 4096 + 5  # one read per 4 KiB buffer, not one per line


def _ops() -> int:
    stats = trio.lowlevel.current_statistics().io_statistics
    return int(getattr(stats, "sqes_submitted", 0))


# -- Path ------------------------------------------------------------------------


async def _path_results(root: str) -> list[Any]:
    out: list[Any] = []

    async def record(fn: Any, *args: Any, **kwargs: Any) -> None:
        try:
            value = await fn(*args, **kwargs)
        except (OSError, ValueError, TypeError) as exc:
            out.append(("err", type(exc).__name__, getattr(exc, "errno", None)))
            return
        if isinstance(value, os.stat_result):
            value = (stat.S_IFMT(value.st_mode), value.st_size)
        elif isinstance(value, pathlib.PurePath):
            value = ("path", os.path.relpath(str(value), root))
        out.append(("ok", value))

    P = trio_uring.Path
    base = P(root)
    f = base / "file"
    d = base / "dir"
    await record(f.write_bytes, b"abc")
    await record(f.write_text, "héllo\n", encoding="utf-8")
    await record(f.write_text, b"x")
    await record(f.read_text, encoding="utf-8")
    await record(f.read_bytes)
    await record(f.stat)
    await record(f.lstat)
    for p in (f, d, base / "missing", f / "sub", base / "loop", base / "dangling"):
        await record(p.exists)
        await record(p.is_file)
        await record(p.is_dir)
    await record(d.mkdir)
    await record(d.mkdir)
    await record(d.mkdir, exist_ok=True)
    await record((d / "a" / "b").mkdir)
    await record((d / "a" / "b").mkdir, parents=True)
    await record(d.rmdir)
    await record((d / "a" / "b").rmdir)
    await record((base / "t").touch)
    await record((base / "t").touch, exist_ok=False)
    await record((base / "t").touch)
    await record(d.touch)
    await record((base / "t").rename, base / "t2")
    await record((base / "t").unlink)
    await record((base / "t").unlink, missing_ok=True)
    await record((base / "t2").replace, f)
    await record(f.read_bytes)
    await record(d.unlink)
    await record(f.rmdir)
    await record(f.stat, follow_symlinks=False)
    await record((base / "dangling").lstat)
    await record((base / "dangling").stat)
    async with await f.open("rb") as fh:
        out.append(("open", await fh.read()))
    return out


def _make_tree(root: str) -> None:
    os.symlink("loop", os.path.join(root, "loop"))
    os.symlink("nowhere", os.path.join(root, "dangling"))


@pytest.mark.parametrize("backend", ["uring", "stock"])
def test_path_matches_pathlib(backend: str) -> None:
    with tempfile.TemporaryDirectory() as a, tempfile.TemporaryDirectory() as b:
        _make_tree(a)
        _make_tree(b)
        expected = _pathlib_oracle(a)
        got = on_backend(backend, _path_results, b)
    assert got == expected


def _pathlib_oracle(root: str) -> list[Any]:
    """Run the same script against pathlib.Path wrapped as async (no threads)."""

    def wrap(p: str) -> Any:
        return _Async(pathlib.Path(p))

    return trio.run(_path_results_with, root, wrap)


class _Async:
    """pathlib.Path with its methods as coroutines, for the oracle run."""

    def __init__(self, p: pathlib.Path) -> None:
        self.p = p

    def __truediv__(self, other: str) -> _Async:
        return _Async(self.p / other)

    def __str__(self) -> str:
        return str(self.p)

    def __fspath__(self) -> str:
        return str(self.p)

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self.p, name)

        async def call(*args: Any, **kwargs: Any) -> Any:
            args = tuple(a.p if isinstance(a, _Async) else a for a in args)
            if name == "open":
                return _SyncFile(attr(*args, **kwargs))
            return attr(*args, **kwargs)

        return call


class _SyncFile:
    def __init__(self, f: Any) -> None:
        self.f = f

    async def __aenter__(self) -> _SyncFile:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.f.close()

    async def read(self) -> Any:
        return self.f.read()


async def _path_results_with(root: str, make: Any) -> list[Any]:
    orig = trio_uring.Path
    trio_uring.Path = make  # type: ignore[misc]
    try:
        return await _path_results(root)
    finally:
        trio_uring.Path = orig  # type: ignore[misc]


def test_path_is_a_trio_path() -> None:
    p = trio_uring.Path("/tmp", "x")
    assert isinstance(p, trio.Path)
    assert isinstance(p / "y", trio_uring.Path)
    assert repr(p) == "trio_uring.Path('/tmp/x')"
    assert p.parent == trio_uring.Path("/tmp")

    async def main() -> None:
        assert await trio_uring.Path("/").is_dir()
        # Not one of ours: trio.Path's thread method, returning our class.
        assert isinstance(await trio_uring.Path("/tmp/../tmp").resolve(), trio_uring.Path)
        assert await trio_uring.Path("/nonexistent\0x").exists() is False

    trio_uring.run(main)
    trio.run(main)
