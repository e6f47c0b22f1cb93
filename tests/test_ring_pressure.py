"""Ring pressure: 50,000 concurrent native ops on a ring of 64 SQ entries.

The SQ fills hundreds of times over while the ops are queued, the CQ
overflows when they complete at once, and half of them are cancelled: all
must complete, no byte may be read twice or lost, nothing may deadlock.
"""

from __future__ import annotations

import os

import pytest
import trio
import trio.testing

import trio_uring
from trio_uring import lowlevel

PIPES = 1000
READERS_PER_PIPE = 50  # 50,000 ops
BYTES_PER_PIPE = 100  # each reader asks for up to 4: about half go unserved


@pytest.mark.timeout(300)
def test_fifty_thousand_ops_on_64_entries(many_fds: None) -> None:
    pipes = [os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC) for _ in range(PIPES)]
    got: dict[int, bytearray] = {r: bytearray() for r, _ in pipes}
    outcomes = {"result": 0, "cancelled": 0}

    async def reader(fd: int) -> None:
        try:
            data = await lowlevel.read(fd, 4)
        except trio.Cancelled:
            outcomes["cancelled"] += 1
            raise
        got[fd] += data
        outcomes["result"] += 1

    async def main() -> None:
        io = lowlevel.statistics()
        assert io.ring_entries == 64
        with trio.fail_after(240):
            with trio.CancelScope() as scope:
                async with trio.open_nursery() as nursery:
                    for r, _ in pipes:
                        for _ in range(READERS_PER_PIPE):
                            nursery.start_soon(reader, r)
                    await trio.testing.wait_all_tasks_blocked()
                    assert lowlevel.statistics().ops_in_flight >= PIPES * READERS_PER_PIPE
                    for i, (_, w) in enumerate(pipes):
                        os.write(w, bytes((i + k) % 256 for k in range(BYTES_PER_PIPE)))
                    # Let the kernel serve what it can, then cancel the rest.
                    while outcomes["result"] < PIPES * BYTES_PER_PIPE // 4:
                        await trio.sleep(0.01)
                    scope.cancel()
            await trio.sleep(0.05)
            s = lowlevel.statistics()
            assert s.cancels_requested > 0
            assert s.ops_in_flight < 10  # only the manager's own requests

    trio_uring.run(main, entries=64, fallback="raise")
    assert outcomes["result"] + outcomes["cancelled"] == PIPES * READERS_PER_PIPE
    assert outcomes["cancelled"] > 0
    for i, (r, w) in enumerate(pipes):
        try:
            rest = os.read(r, 4096)
        except BlockingIOError:
            rest = b""
        written = bytes((i + k) % 256 for k in range(BYTES_PER_PIPE))
        # Concurrent readers of one pipe may finish in any order, but every
        # byte is read exactly once: the multiset matches, and nothing is
        # left but what no reader took.
        assert sorted(got[r] + rest) == sorted(written)
        os.close(r)
        os.close(w)
