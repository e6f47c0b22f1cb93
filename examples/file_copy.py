"""Copy a file and checksum it, with ``trio_uring.open_file``.

    python examples/file_copy.py SRC DST [--chunk 1048576] [--stock]

A reader task and a writer task pass chunks through a memory channel, so
the next read is in flight while the last chunk is written; the SHA-256 of
what was read is checked against a second pass over DST. On trio_uring
every open, read, write and fsync is one io_uring op; ``--stock`` runs the
same program with ``trio.run``, where ``trio_uring.open_file`` uses Trio's
worker threads instead.
"""

from __future__ import annotations

import argparse
import hashlib
import sys

import trio

import trio_uring


async def copy(src: str, dst: str, chunk: int) -> tuple[int, str]:
    """Copy ``src`` to ``dst``; return the byte count and the SHA-256 of what was read."""
    digest = hashlib.sha256()
    copied = 0
    send, receive = trio.open_memory_channel[bytes](2)

    async def reader() -> None:
        async with send, await trio_uring.open_file(src, "rb") as f:
            while data := await f.read(chunk):
                digest.update(data)
                await send.send(data)

    async def writer() -> None:
        nonlocal copied
        async with receive, await trio_uring.open_file(dst, "wb") as f:
            async for data in receive:
                copied += await f.write(data)
            await f.fsync()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(reader)
        nursery.start_soon(writer)
    return copied, digest.hexdigest()


async def checksum(path: str, chunk: int) -> str:
    """SHA-256 of a file, read with positional reads (the position never moves)."""
    digest = hashlib.sha256()
    async with await trio_uring.open_file(path, "rb") as f:
        offset = 0
        while data := await f.pread(chunk, offset):
            digest.update(data)
            offset += len(data)
    return digest.hexdigest()


async def main(src: str, dst: str, chunk: int) -> int:
    copied, read_sum = await copy(src, dst, chunk)
    written_sum = await checksum(dst, chunk)
    backend = trio.lowlevel.current_statistics().io_statistics.backend
    print(f"copied {copied} bytes ({backend})")
    print(f"sha256 {read_sum}")
    if written_sum != read_sum:
        print(f"MISMATCH: {dst} has sha256 {written_sum}", file=sys.stderr)
        return 1
    print("verified")
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("src")
    parser.add_argument("dst")
    parser.add_argument("--chunk", type=int, default=1 << 20, help="read size in bytes")
    parser.add_argument("--stock", action="store_true", help="run on stock Trio")
    args = parser.parse_args()
    run = trio.run if args.stock else trio_uring.run
    sys.exit(run(main, args.src, args.dst, args.chunk))
