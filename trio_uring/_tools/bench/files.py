"""File reads: ``trio.open_file`` (threads) against ``trio_uring.open_file`` (io_uring).

One run writes a file of ``--mib`` MiB into a temporary directory, reads it
once so it is in the page cache, and measures:

Random 4 KiB reads (``--reads`` of them, aligned, seeded offsets) by
``--tasks`` concurrent tasks:

* (a) ``trio.open_file``, one file per task, ``seek`` + ``read`` (stock Trio);
* (b) ``trio.to_thread.run_sync(os.pread)`` on one fd (stock Trio);
* (c) ``trio_uring.open_file``, one file per task, ``seek`` + ``read``;
* (d) ``trio_uring.open_file``, one file shared by all tasks, ``pread``;
* (e) a plain ``os.pread`` loop, no Trio at all: the ceiling.

Sequential reads of the whole file with 64 KiB and 1 MiB ``read`` calls:
``trio.open_file``, ``trio_uring.open_file`` and a plain ``open(...,
buffering=0)`` loop, in GB/s (10^9 bytes).

The file is deleted at the end. Usage::

    python benchmarks/bench_files.py [--reads 200000] [--tasks 64] [--mib 256] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

import trio

BLOCK = 4096
SEQ_CHUNKS = (64 * 1024, 1024 * 1024)


def _offsets(seed: int, count: int, size: int) -> list[int]:
    rng = random.Random(seed)
    blocks = size // BLOCK
    return [rng.randrange(blocks) * BLOCK for _ in range(count)]


def _split(offsets: list[int], tasks: int) -> list[list[int]]:
    return [offsets[i::tasks] for i in range(tasks)]


async def _random_open_file(path: str, parts: list[list[int]], opener: Any) -> float:
    async def worker(offs: list[int]) -> None:
        f = await opener(path, "rb")
        try:
            for off in offs:
                await f.seek(off)
                if len(await f.read(BLOCK)) != BLOCK:
                    raise RuntimeError("short read")
        finally:
            await f.aclose()

    started = time.perf_counter()
    async with trio.open_nursery() as nursery:
        for offs in parts:
            nursery.start_soon(worker, offs)
    return time.perf_counter() - started


async def _random_thread_pread(path: str, parts: list[list[int]]) -> float:
    fd = os.open(path, os.O_RDONLY)

    async def worker(offs: list[int]) -> None:
        for off in offs:
            data = await trio.to_thread.run_sync(os.pread, fd, BLOCK, off)
            if len(data) != BLOCK:
                raise RuntimeError("short read")

    try:
        started = time.perf_counter()
        async with trio.open_nursery() as nursery:
            for offs in parts:
                nursery.start_soon(worker, offs)
        return time.perf_counter() - started
    finally:
        os.close(fd)


async def _random_uring_pread(path: str, parts: list[list[int]]) -> float:
    import trio_uring

    async with await trio_uring.open_file(path, "rb") as f:

        async def worker(offs: list[int]) -> None:
            for off in offs:
                if len(await f.pread(BLOCK, off)) != BLOCK:
                    raise RuntimeError("short read")

        started = time.perf_counter()
        async with trio.open_nursery() as nursery:
            for offs in parts:
                nursery.start_soon(worker, offs)
        return time.perf_counter() - started


def _plain_pread(path: str, offsets: list[int]) -> float:
    fd = os.open(path, os.O_RDONLY)
    try:
        pread = os.pread
        started = time.perf_counter()
        for off in offsets:
            pread(fd, BLOCK, off)
        return time.perf_counter() - started
    finally:
        os.close(fd)


async def _sequential(path: str, chunk: int, opener: Any) -> float:
    started = time.perf_counter()
    async with await opener(path, "rb") as f:
        while await f.read(chunk):
            pass
    return time.perf_counter() - started


def _plain_sequential(path: str, chunk: int) -> float:
    started = time.perf_counter()
    with open(path, "rb", buffering=0) as f:
        while f.read(chunk):
            pass
    return time.perf_counter() - started


def _on_uring(fn: Callable[..., Any], *args: Any) -> Any:
    import trio_uring

    return trio_uring.run(fn, *args, fallback="raise")


def _uring_open(path: str, mode: str) -> Any:
    import trio_uring

    return trio_uring.open_file(path, mode)


def _write_file(path: str, mib: int) -> None:
    block = random.Random(1).randbytes(1 << 20)
    with open(path, "wb") as f:
        for i in range(mib):
            # Every MiB different, so nothing can be deduplicated.
            f.write(i.to_bytes(8, "little") + block[8:])
    with open(path, "rb", buffering=0) as f:
        while f.read(1 << 20):
            pass  # into the page cache


def run_files_bench(
    reads: int = 200_000,
    tasks: int = 64,
    mib: int = 256,
    thread_reads: int | None = None,
    step: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Run every case once; return the figures and the ratios.

    ``thread_reads`` (default: ``reads``) is how many random reads the two
    thread-based cases (a, b) make, so a quick run need not wait on them.
    """
    say = step or (lambda _text: None)
    thread_reads = reads if thread_reads is None else thread_reads
    size = mib << 20
    out: dict[str, Any] = {"reads": reads, "thread_reads": thread_reads, "tasks": tasks,
                           "mib": mib, "random": {}, "sequential": {}}  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="trio_uring_bench_") as tmp:
        path = os.path.join(tmp, "data")
        say(f"file reads: writing {mib} MiB")
        _write_file(path, mib)
        offsets = _offsets(7, reads, size)
        parts = _split(offsets, tasks)
        thread_parts = _split(offsets[:thread_reads], tasks)
        cases: list[tuple[str, str, int, Callable[[], float]]] = [
            ("a", "trio.open_file seek+read", thread_reads,
             lambda: trio.run(_random_open_file, path, thread_parts, trio.open_file)),
            ("b", "trio.to_thread os.pread", thread_reads,
             lambda: trio.run(_random_thread_pread, path, thread_parts)),
            ("c", "trio_uring seek+read", reads,
             lambda: _on_uring(_random_open_file, path, parts, _uring_open)),
            ("d", "trio_uring pread (shared)", reads,
             lambda: _on_uring(_random_uring_pread, path, parts)),
            ("e", "plain os.pread loop", reads, lambda: _plain_pread(path, offsets)),
        ]  # fmt: skip
        for key, label, count, fn in cases:
            say(f"file reads: ({key}) {label}")
            seconds = fn()
            out["random"][key] = {"label": label, "reads": count, "seconds": seconds,
                                  "reads_per_s": count / seconds}  # fmt: skip
        base = out["random"]["a"]["reads_per_s"]
        for entry in out["random"].values():
            entry["x_a"] = entry["reads_per_s"] / base
        for chunk in SEQ_CHUNKS:
            name = f"{chunk // 1024} KiB"
            say(f"file reads: sequential, {name} reads")
            seq = {
                "trio.open_file": trio.run(_sequential, path, chunk, trio.open_file),
                "trio_uring": _on_uring(_sequential, path, chunk, _uring_open),
                "plain loop": _plain_sequential(path, chunk),
            }
            out["sequential"][name] = {k: {"seconds": s, "gb_per_s": size / s / 1e9}
                                       for k, s in seq.items()}  # fmt: skip
    return out


def format_table(result: dict[str, Any]) -> str:
    """The results as fixed-width tables."""
    lines = [
        f"random {BLOCK} B reads of a page-cached {result['mib']} MiB file, "
        f"{result['tasks']} tasks",
        f"{'case':34} {'reads':>9} {'reads/s':>12} {'x (a)':>8}",
    ]
    for key, e in result["random"].items():
        lines.append(f"({key}) {e['label']:30} {e['reads']:>9,} {e['reads_per_s']:>12,.0f} "
                     f"{e['x_a']:>7.1f}x")  # fmt: skip
    ceiling = result["random"]["e"]["reads_per_s"]
    lines.append(f"(d) reaches {result['random']['d']['reads_per_s'] / ceiling:.0%} of the "
                 "plain loop (e)")  # fmt: skip
    lines.append("")
    lines.append("sequential read of the whole file, GB/s")
    lines.append(f"{'read size':10} {'trio.open_file':>15} {'trio_uring':>11} {'plain loop':>11} "
                 f"{'uring/trio':>11} {'uring/plain':>12}")  # fmt: skip
    for name, seq in result["sequential"].items():
        a, u, p = (seq[k]["gb_per_s"] for k in ("trio.open_file", "trio_uring", "plain loop"))
        lines.append(f"{name:10} {a:>15.2f} {u:>11.2f} {p:>11.2f} {u / a:>10.2f}x "
                     f"{u / p:>11.0%}")  # fmt: skip
    return "\n".join(lines)


def main() -> int:
    """Command-line entry."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reads", type=int, default=200_000)
    parser.add_argument("--thread-reads", type=int, default=None,
                        help="reads for the thread cases (a, b); default --reads")  # fmt: skip
    parser.add_argument("--tasks", type=int, default=64)
    parser.add_argument("--mib", type=int, default=256)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if args.reads < args.tasks or args.tasks < 1 or args.mib < 2:
        parser.error("need --reads >= --tasks >= 1 and --mib >= 2")

    def step(text: str) -> None:
        print(text, file=sys.stderr, flush=True)

    result = run_files_bench(args.reads, args.tasks, args.mib, args.thread_reads, step)
    print(json.dumps(result, indent=2) if args.json else format_table(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
