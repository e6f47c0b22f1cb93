"""The native-op path of the manager (prepare / wait_op), driven directly.

``trio_uring.lowlevel`` will build on exactly this path; these tests pin its
contract: a confirmed cancel raises Cancelled, a real result wins over a
cancel, an op still in the SQ is dropped on the spot, and the op record (not
the task) keeps the buffer alive until the op's own CQE.
"""

from __future__ import annotations

import errno
import gc
import os
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import trio
import trio.testing
from trio_uring._core._uring import ffi

import trio_uring
from trio_uring._core.abi import OP
from trio_uring._core.manager import UringIOManager
from trio_uring._core.ops import NATIVE


class Buffer(bytearray):
    """A bytearray that can be weakly referenced, to watch its lifetime."""


def manager() -> UringIOManager:
    """The running manager (the lowlevel module will wrap this lookup)."""
    io = trio._core._run.GLOBAL_RUN_CONTEXT.runner.io_manager
    assert isinstance(io, UringIOManager)
    return io


@contextmanager
def pipe() -> Iterator[tuple[int, int]]:
    r, w = os.pipe()
    try:
        yield r, w
    finally:
        os.close(r)
        os.close(w)


def prepare_read(fd: int, buf: bytearray) -> object:
    cbuf = ffi.from_buffer(buf)
    addr = int(ffi.cast("uintptr_t", cbuf))
    # off = -1 (as u64): read at the file position, as read(2) does.
    return manager().prepare(OP["READ"], fd, (buf, cbuf), addr=addr, length=len(buf), off=2**64 - 1)


async def read(fd: int, size: int) -> tuple[int, bytes]:
    buf = bytearray(size)
    res = await manager().wait_op(prepare_read(fd, buf))  # type: ignore[arg-type]
    return res, bytes(buf[: max(res, 0)])


def run(fn: object) -> None:
    trio_uring.run(fn, fallback="raise")  # type: ignore[arg-type]


def test_read_completes_and_cancel_raises_cancelled() -> None:
    async def main() -> None:
        with pipe() as (r, w):
            os.write(w, b"hello")
            assert await read(r, 16) == (5, b"hello")
            # A read blocked on an empty pipe: the cancel goes to the kernel,
            # the kernel confirms, the task gets Cancelled.
            before = manager().statistics().cancels_requested
            with trio.move_on_after(0.05) as scope:
                await read(r, 16)
            assert scope.cancelled_caught
            assert manager().statistics().cancels_requested == before + 1
            # Nothing was consumed by the cancelled read.
            os.write(w, b"after")
            assert await read(r, 16) == (5, b"after")

    run(main)


def test_op_cancelled_before_submission_is_dropped_on_the_spot() -> None:
    async def main() -> None:
        with pipe() as (r, w):
            os.write(w, b"data")
            before = manager().statistics().cancels_requested
            with trio.CancelScope() as scope:
                scope.cancel()
                # No checkpoint between queueing and parking: the abort finds
                # the SQE still in the SQ and turns it into a NOP.
                await read(r, 16)
            assert scope.cancelled_caught
            assert manager().statistics().cancels_requested == before
            # The NOP read nothing: the data is still there.
            assert await read(r, 16) == (4, b"data")

    run(main)


def test_result_wins_over_cancel(monkeypatch: pytest.MonkeyPatch) -> None:
    """The kernel finished the op before our cancel reached it: keep the result.

    Which of the two the kernel sees first is a race we cannot steer from
    here, so the cancel request for the native op is made to lose it for
    sure: it is recorded but never sent, exactly as if the kernel had
    answered -ENOENT. (Other cancels, such as close()'s, still go out.)
    """
    original = UringIOManager._queue_cancel

    def lose_native_cancels(self: UringIOManager, target: int) -> None:
        op = self._ops.get(target)
        if op is None or op.kind != NATIVE:
            original(self, target)

    monkeypatch.setattr(UringIOManager, "_queue_cancel", lose_native_cancels)

    async def main() -> None:
        with pipe() as (r, w):
            got: list[tuple[int, bytes]] = []
            landed: list[str] = []

            async def reader(task_status: trio.TaskStatus[trio.CancelScope]) -> None:
                with trio.CancelScope() as scope:
                    task_status.started(scope)
                    got.append(await read(r, 16))
                    await trio.lowlevel.checkpoint()  # the cancel lands here
                    landed.append("not reached")
                landed.append(f"cancelled_caught={scope.cancelled_caught}")

            async with trio.open_nursery() as nursery:
                scope = await nursery.start(reader)
                await trio.sleep(0.01)  # the read is in the kernel now
                scope.cancel()  # abort: cancel "requested", task stays parked
                await trio.sleep(0.01)
                assert got == []  # still parked: no result, no Cancelled
                os.write(w, b"racing")
            assert got == [(6, b"racing")]
            assert landed == ["cancelled_caught=True"]
            stats = manager().statistics()
            assert stats.cancels_requested == 1
            assert stats.cancels_lost_to_result == 1

    run(main)


def test_kernel_race_never_loses_data() -> None:
    """The real race: data and cancel in one tick. Either outcome, never both or neither."""

    async def main() -> None:
        with pipe() as (r, w):
            got: list[tuple[int, bytes]] = []

            async def reader(task_status: trio.TaskStatus[trio.CancelScope]) -> None:
                with trio.CancelScope() as scope:
                    task_status.started(scope)
                    got.append(await read(r, 16))

            async with trio.open_nursery() as nursery:
                scope = await nursery.start(reader)
                await trio.sleep(0.01)
                os.write(w, b"racing")
                scope.cancel()
            if got:
                assert got == [(6, b"racing")]
            else:
                assert os.read(r, 16) == b"racing"

    for _ in range(20):
        run(main)


def test_the_record_not_the_task_keeps_the_buffer_alive(monkeypatch: pytest.MonkeyPatch) -> None:
    """An op dropped in the SQ frees its task at once; its record holds the buffer to the CQE."""
    seen: list[tuple[bool, bool]] = []
    original = UringIOManager.process_events

    def watch(self: UringIOManager, events: Any) -> None:
        for ud in events[0] if events else ():
            op = self._ops.get(ud)
            if op is not None and op.kind == NATIVE:
                # At the moment its CQE arrives: was the task already gone,
                # and does the record still hold the very buffer?
                seen.append((op.task is None, op.pins is not None and op.pins[0] is target[0]))
        original(self, events)

    monkeypatch.setattr(UringIOManager, "process_events", watch)
    target: list[Buffer] = []

    async def main() -> None:
        with pipe() as (r, _):
            io = manager()
            target.append(Buffer(4096))
            with trio.CancelScope() as scope:
                scope.cancel()
                await io.wait_op(prepare_read(r, target[0]))  # type: ignore[arg-type]
            assert scope.cancelled_caught
            await trio.sleep(0.01)
            assert not any(op.pins is not None for op in io._ops.values())
            assert io._native_by_fd == {}

    run(main)
    # Exactly one native CQE (the NOP's), arriving after the task was released,
    # with the buffer still pinned by the record.
    assert seen == [(True, True)]
    alive = weakref.ref(target.pop())
    gc.collect()
    assert alive() is None  # and nothing kept it once the record retired


def test_notify_closing_cancels_native_ops_with_closed_resource_error() -> None:
    async def main() -> None:
        with pipe() as (r, _):
            async with trio.open_nursery() as nursery:
                errors: list[BaseException] = []

                async def reader() -> None:
                    try:
                        await read(r, 16)
                    except trio.ClosedResourceError as exc:
                        errors.append(exc)

                nursery.start_soon(reader)
                await trio.sleep(0.01)
                trio.lowlevel.notify_closing(r)
            assert len(errors) == 1
            assert manager()._native_by_fd == {}

    run(main)


def test_notify_closing_before_submission_never_reaches_a_reused_fd() -> None:
    # The op is queued but not yet submitted when its fd is closed, and the
    # number is reused (dup2) before the next io_uring_enter. The kernel must
    # never see the op: it would read from the unrelated new pipe.
    async def main() -> None:
        with pipe() as (r, _), pipe() as (other_r, other_w):
            os.write(other_w, b"not yours")
            buf = bytearray(16)
            op = prepare_read(r, buf)
            trio.lowlevel.notify_closing(r)
            os.dup2(other_r, r)  # closes r; r now names the other pipe
            with pytest.raises(trio.ClosedResourceError):
                await manager().wait_op(op)  # type: ignore[arg-type]
            assert os.read(other_r, 64) == b"not yours"
            assert not any(buf)

    run(main)


def test_errors_come_back_as_negative_errno() -> None:
    async def main() -> None:
        r, w = os.pipe()
        os.close(r)
        os.close(w)
        res, _ = await read(r, 16)
        assert res == -errno.EBADF

    run(main)


def test_thousands_of_native_ops_cancelled_together() -> None:
    """2,000 reads parked in the kernel, all cancelled at once: every CQE reaped."""
    count = 2000
    fds = [os.pipe() for _ in range(count // 2)]

    async def main() -> None:
        async def park(fd: int) -> None:
            await read(fd, 64)

        io = manager()
        async with trio.open_nursery() as nursery:
            for r, _ in fds:
                nursery.start_soon(park, r)
                nursery.start_soon(park, r)
            await trio.testing.wait_all_tasks_blocked()
            assert io.statistics().ops_in_flight >= count
            nursery.cancel_scope.cancel()
        assert io.statistics().cancels_requested == count
        assert io._native_by_fd == {}
        assert not any(op.pins is not None for op in io._ops.values())

    try:
        run(main)
    finally:
        for r, w in fds:
            os.close(r)
            os.close(w)
