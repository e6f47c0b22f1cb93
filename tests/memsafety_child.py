"""Memory-safety scenarios, each run in a child under ``PYTHONMALLOC=debug -X dev``.

Usage: ``python -X dev tests/memsafety_child.py SCENARIO``; prints ``ok`` and
exits 0 when every check held. The debug allocator fills freed memory with
a pattern and checks guard bytes around every block when it is freed, so a
kernel write into freed or foreign memory either breaks a canary checked
here or aborts the interpreter.
"""

from __future__ import annotations

import gc
import os
import signal
import socket
import sys
import threading

import trio
import trio.testing

import trio_uring
from trio_uring import lowlevel
from trio_uring._core import manager as _manager

CANARY = 0xA5
SIZE = 4096


def canaries(count: int) -> list[bytearray]:
    """Fresh blocks of the size just freed: likely to reuse that memory."""
    return [bytearray([CANARY]) * SIZE for _ in range(count)]


def check_canaries(blocks: list[bytearray]) -> None:
    expected = bytes([CANARY]) * SIZE
    for i, block in enumerate(blocks):
        if block != expected:
            raise AssertionError(f"canary block {i} was written to")


def cancelled_receives_then_data() -> None:
    """Cancel receives into buffers, drop the buffers, then let the data arrive."""
    pairs = [socket.socketpair() for _ in range(200)]

    async def main() -> None:
        bufs = [bytearray(SIZE) for _ in pairs]
        with trio.CancelScope() as scope:
            async with trio.open_nursery() as nursery:
                for (a, _), buf in zip(pairs, bufs, strict=True):
                    nursery.start_soon(lowlevel.recv_into, a.fileno(), buf)
                await trio.testing.wait_all_tasks_blocked()
                scope.cancel()
        # Nothing was received: every buffer is still zeros.
        assert all(not any(buf) for buf in bufs)
        del bufs
        gc.collect()
        blocks = canaries(2000)
        for _, b in pairs:
            b.send(b"\x5a" * SIZE)
        await trio.sleep(0.05)
        check_canaries(blocks)
        # The data was never consumed by a cancelled receive: exactly once.
        for a, _ in pairs:
            assert await lowlevel.recv(a.fileno(), SIZE * 2) == b"\x5a" * SIZE

    trio_uring.run(main, fallback="raise")
    for a, b in pairs:
        a.close()
        b.close()


def receive_stays_inside_its_slice() -> None:
    """A receive into a slice never writes past it, however much data waits."""
    a, b = socket.socketpair()
    margin = 64

    async def main() -> None:
        for size in (1, 100, SIZE):
            block = bytearray([CANARY]) * (margin + size + margin)
            target = memoryview(block)[margin : margin + size]
            b.send(b"\x5a" * (SIZE * 2))
            n = await lowlevel.recv_into(a.fileno(), target)
            assert n == size
            assert block[:margin] == bytes([CANARY]) * margin
            assert block[margin + size :] == bytes([CANARY]) * margin
            while True:  # drain the rest for the next size
                try:
                    a.recv(SIZE * 4, socket.MSG_DONTWAIT)
                except BlockingIOError:
                    break

    trio_uring.run(main, fallback="raise")
    a.close()
    b.close()


def run_ends_with_thousands_in_flight() -> None:
    """An exception ends the run while 3,000 receives are in the kernel."""
    pairs = [socket.socketpair() for _ in range(3000)]
    fds_before = len(os.listdir("/proc/self/fd"))

    class Boom(Exception):
        pass

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            for a, _ in pairs:
                nursery.start_soon(lowlevel.recv_into, a.fileno(), bytearray(SIZE))
            await trio.testing.wait_all_tasks_blocked()
            raise Boom

    try:
        trio_uring.run(main, fallback="raise", strict_exception_groups=False)
    except Boom:
        pass
    else:
        raise AssertionError("the run should have raised")
    assert not _manager._UNREAPED, "ops were left to the graveyard"
    gc.collect()
    blocks = canaries(3000)
    for _, b in pairs:
        b.send(b"x" * 100)
    check_canaries(blocks)
    for a, b in pairs:
        a.close()
        b.close()
    assert len(os.listdir("/proc/self/fd")) == fds_before - 2 * len(pairs)


def keyboard_interrupt_with_ops_in_flight() -> None:
    """Ctrl-C while 1,000 receives are in the kernel: a clean KeyboardInterrupt."""
    pairs = [socket.socketpair() for _ in range(1000)]

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            for a, _ in pairs:
                nursery.start_soon(lowlevel.recv_into, a.fileno(), bytearray(SIZE))
            await trio.testing.wait_all_tasks_blocked()
            threading.Timer(0.05, os.kill, (os.getpid(), signal.SIGINT)).start()
            await trio.sleep_forever()

    try:
        trio_uring.run(main, fallback="raise", strict_exception_groups=False)
    except KeyboardInterrupt:
        pass
    else:
        raise AssertionError("expected KeyboardInterrupt")
    assert not _manager._UNREAPED
    gc.collect()
    blocks = canaries(1000)
    for _, b in pairs:
        b.send(b"y" * 100)
    check_canaries(blocks)
    for a, b in pairs:
        a.close()
        b.close()


def pinned_views_in_garbage_cycles() -> None:
    """Memoryviews handed to ops end up in reference cycles; the collector frees them.

    A buffer export held by a pin while its memoryview sits in cyclic
    garbage crashed the collector (memoryview's tp_clear refuses, the
    export is released afterwards): pins are released when the op is over.
    """
    a, b = socket.socketpair()

    class Node:
        pass

    async def main() -> None:
        for i in range(200):
            data = memoryview(bytearray(b"z" * 256))[i % 7 :]
            node = Node()
            node.self = node  # type: ignore[attr-defined]
            node.view = data  # type: ignore[attr-defined]
            await lowlevel.send(b.fileno(), data)
            target = memoryview(bytearray(256))[1:]
            node.target = target  # type: ignore[attr-defined]
            with trio.move_on_after(0.001):
                await lowlevel.recv_into(a.fileno(), target)
            del data, node, target
            if i % 50 == 0:
                gc.collect()
        gc.collect()

    trio_uring.run(main, fallback="raise")
    gc.collect()
    a.close()
    b.close()


SCENARIOS = {
    f.__name__: f
    for f in (
        cancelled_receives_then_data,
        receive_stays_inside_its_slice,
        run_ends_with_thousands_in_flight,
        keyboard_interrupt_with_ops_in_flight,
        pinned_views_in_garbage_cycles,
    )
}

if __name__ == "__main__":
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 10000), hard))
    SCENARIOS[sys.argv[1]]()
    print("ok")
