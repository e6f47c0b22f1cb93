"""The native-op path of the manager (prepare / wait_op), driven directly.

``trio_uring.lowlevel`` will build on exactly this path; these tests pin its
cancellation contract: a confirmed cancel raises Cancelled, a real result
wins over a cancel, and an op still in the SQ is dropped on the spot.
"""

from __future__ import annotations

import errno
import gc
import os

import pytest
import trio
import trio.testing
from trio_uring._uring import ffi

import trio_uring
from trio_uring._abi import OP
from trio_uring._manager import UringIOManager


def manager() -> UringIOManager:
    """The running manager (the lowlevel module will wrap this lookup)."""
    io = trio._core._run.GLOBAL_RUN_CONTEXT.runner.io_manager
    assert isinstance(io, UringIOManager)
    return io


async def read(fd: int, size: int) -> tuple[int, bytes]:
    io = manager()
    buf = bytearray(size)
    cbuf = ffi.from_buffer(buf)
    op = io.prepare(OP["READ"], fd, (buf, cbuf), addr=int(ffi.cast("uintptr_t", cbuf)),
                    length=size, off=2**64 - 1)  # fmt: skip
    res = await io.wait_op(op)
    return res, bytes(buf[: max(res, 0)])


def test_read_completes_and_cancel_raises_cancelled() -> None:
    async def main() -> None:
        r, w = os.pipe()
        try:
            os.write(w, b"hello")
            assert await read(r, 16) == (5, b"hello")
            # A read blocked on an empty pipe: the cancel goes to the kernel,
            # the kernel confirms, the task gets Cancelled.
            with trio.move_on_after(0.05) as scope:
                await read(r, 16)
            assert scope.cancelled_caught
            stats = manager().statistics()
            assert stats.cancels_requested >= 1
            # Nothing was consumed by the cancelled read.
            os.write(w, b"after")
            assert await read(r, 16) == (5, b"after")
        finally:
            os.close(r)
            os.close(w)

    trio_uring.run(main, fallback="raise")


def test_op_cancelled_before_submission_is_dropped_on_the_spot() -> None:
    async def main() -> None:
        r, w = os.pipe()
        try:
            os.write(w, b"data")
            io = manager()
            before = io.statistics().cancels_requested
            with trio.CancelScope() as scope:
                scope.cancel()
                # No checkpoint between queueing and parking: the abort finds
                # the SQE still in the SQ and turns it into a NOP.
                await read(r, 16)
            assert scope.cancelled_caught
            assert io.statistics().cancels_requested == before
            # The NOP read nothing: the data is still there.
            assert await read(r, 16) == (4, b"data")
        finally:
            os.close(r)
            os.close(w)

    trio_uring.run(main, fallback="raise")


def test_result_wins_over_cancel() -> None:
    async def main() -> None:
        r, w = os.pipe()
        try:
            got: list[tuple[int, bytes]] = []

            async def reader(task_status: trio.TaskStatus[trio.CancelScope]) -> None:
                with trio.CancelScope() as scope:
                    task_status.started(scope)
                    got.append(await read(r, 16))
                    await trio.lowlevel.checkpoint()  # the cancel lands here

            async with trio.open_nursery() as nursery:
                scope = await nursery.start(reader)
                await trio.testing.wait_all_tasks_blocked()
                await trio.sleep(0.01)  # the read is in the kernel now
                # Data and cancel in the same tick: whichever the kernel sees
                # first decides; if the data won it must be delivered.
                os.write(w, b"racing")
                scope.cancel()
            io = manager()
            if got:
                assert got == [(6, b"racing")]
                assert io.statistics().cancels_lost_to_result >= 1
            else:
                assert os.read(r, 16) == b"racing"
        finally:
            os.close(r)
            os.close(w)

    for _ in range(20):
        trio_uring.run(main, fallback="raise")


def test_buffers_stay_pinned_after_the_task_is_gone() -> None:
    """Cancel a read, drop every reference, collect, then let data arrive."""

    async def main() -> None:
        r, w = os.pipe()
        try:
            io = manager()
            with trio.move_on_after(0.02):
                await read(r, 4096)
            gc.collect()
            # The op record still holds the buffer until its CQE; the kernel
            # has confirmed the cancel, so the record is gone by now.
            await trio.sleep(0.01)
            pinned = [op for op in io._ops.values() if op.pins is not None]
            assert pinned == []
            os.write(w, b"late")
            assert await read(r, 16) == (4, b"late")
        finally:
            os.close(r)
            os.close(w)

    trio_uring.run(main, fallback="raise")


def test_errors_come_back_as_negative_errno() -> None:
    async def main() -> None:
        r, w = os.pipe()
        os.close(r)
        os.close(w)
        res, _ = await read(r, 16)
        assert res == -errno.EBADF

    trio_uring.run(main, fallback="raise")


@pytest.mark.parametrize("count", [2000])
def test_close_with_native_ops_in_flight(count: int) -> None:
    """End the run with thousands of reads parked in the kernel."""
    fds = [os.pipe() for _ in range(count // 2)]

    async def main() -> None:
        async def park(fd: int) -> None:
            await read(fd, 64)

        async with trio.open_nursery() as nursery:
            for r, _ in fds:
                nursery.start_soon(park, r)
                nursery.start_soon(park, r)
            await trio.testing.wait_all_tasks_blocked()
            assert manager().statistics().ops_in_flight >= count
            nursery.cancel_scope.cancel()

    try:
        trio_uring.run(main, fallback="raise")
    finally:
        for r, w in fds:
            os.close(r)
            os.close(w)
