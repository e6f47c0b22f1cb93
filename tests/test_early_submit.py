"""The batched path's early start: sends leave once ``EARLY_SUBMIT`` SQEs are queued.

Queued sends normally wait for the tick's ``io_uring_enter``; once enough
are queued, the ring hands them over at once, so that the peer can answer
while the rest of the tick runs (``_core/native.py``). What a program can
see: the bytes are at the peer before the sending task's checkpoint.
"""

from __future__ import annotations

import socket
import subprocess
import sys

import trio

import trio_uring
from trio_uring._core.manager import running_manager
from trio_uring._core.native import EARLY_SUBMIT


def _pairs(count: int) -> list[tuple[socket.socket, socket.socket]]:
    pairs = [socket.socketpair() for _ in range(count)]
    for _, b in pairs:
        b.setblocking(False)
    return pairs


def _arrived(pairs: list[tuple[socket.socket, socket.socket]]) -> list[bytes]:
    out = []
    for _, b in pairs:
        try:
            out.append(b.recv(16))
        except BlockingIOError:
            out.append(b"")
    return out


def test_sends_start_once_enough_are_queued_and_not_before() -> None:
    pairs = _pairs(EARLY_SUBMIT)
    # What each task saw right after queueing its send, in the order the
    # tasks ran: SQEs still queued, io_uring_enter calls since the tick,
    # peers that already have their bytes.
    seen: list[tuple[int, int, int]] = []
    results: list[int] = []

    async def main() -> None:
        mgr = running_manager()
        assert mgr is not None
        ring = mgr._ring
        # The first native op checks the kernel's clock (for deadlines);
        # after it, with no deadline about, queue_send queues.
        assert await mgr.send_op(pairs[0][0].fileno(), b"warm", 0) == 4
        assert pairs[0][1].recv(16) == b"warm"
        enters: list[int] = []

        async def sender(a: socket.socket, message: bytes) -> None:
            if not enters:
                enters.append(ring.enter_calls)  # the first of the batch
            op = mgr.queue_send(a.fileno(), message, 0)
            assert op is not None
            arrived = sum(1 for got in _arrived(pairs) if got)
            seen.append((ring.sq_pending(), ring.enter_calls - enters[0], arrived))
            results.append(await mgr.at_checkpoint(op, release=True))

        async with trio.open_nursery() as nursery:
            for i, (a, _) in enumerate(pairs):
                nursery.start_soon(sender, a, b"m%d" % i)

    try:
        trio_uring.run(main, fallback="raise", data_path="batched")
    finally:
        for a, b in pairs:
            a.close()
            b.close()
    # One short of the mark: queued, no system call, nothing at the peers
    # (the tick's enter would submit them). At the mark, one io_uring_enter
    # took them all, and every send completed inline in it, before any of
    # the tasks reached its checkpoint.
    short = [(n, 0, 0) for n in range(1, EARLY_SUBMIT)]
    assert seen == [*short, (0, 1, EARLY_SUBMIT)]
    assert sorted(results) == [2] * EARLY_SUBMIT


EARLY_START_IN_A_CHILD = """
import os, socket, trio, trio_uring
from trio_uring._core.manager import running_manager

async def main():
    mgr = running_manager()
    a, b = socket.socketpair()
    pid = os.fork()
    if pid == 0:
        # The parent's ring answers every call -EOWNERDEAD here. The early
        # start swallows that: it is never a send's failure (the tick's own
        # enter raises RingForkedError, as test_faults shows).
        mgr._ring.submit_early(0)
        os.write(1, b"child: early start quiet\\n")
        os._exit(0)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, status
    print("parent: ok", flush=True)

trio_uring.run(main, fallback="raise", data_path="batched")
"""


def test_an_early_start_fails_no_send_even_on_a_ring_it_may_not_touch() -> None:
    proc = subprocess.run(
        [sys.executable, "-c", EARLY_START_IN_A_CHILD],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "child: early start quiet" in proc.stdout
    assert "parent: ok" in proc.stdout
