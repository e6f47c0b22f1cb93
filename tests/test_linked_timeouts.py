"""Kernel-linked timeouts: the kernel itself cancels a native op at Trio's deadline.

Each native op waiting under a finite deadline, in a run on Trio's
``SystemClock``, carries an ``IORING_OP_LINK_TIMEOUT``. These tests show the
timer firing (its CQE says ``-ETIME``, counted in ``linked_timeouts_fired``),
the op cancelled on time, a deadline moved later leading to a resubmission,
and no timer ever armed where kernel time is not Trio's time.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import trio
import trio.testing

import trio_uring
from trio_uring._core.abi import OP
from trio_uring._core.manager import UringIOManager, UringStatistics, running_manager
from trio_uring._core.ring import ffi
from trio_uring._core.settings import Mode

# How late a kernel-cancelled op may wake, past its deadline. The timer is
# exact; this covers scheduling on a loaded 2-core CI machine.
LATENESS = 0.02


def manager() -> UringIOManager:
    io = running_manager()
    assert io is not None
    return io


def stats() -> UringStatistics:
    return manager().statistics()


async def read_pipe(fd: int, size: int = 16) -> int:
    """A native READ on ``fd`` through the op core (``perform``)."""
    buf = bytearray(size)
    cbuf = ffi.from_buffer(buf)
    return await manager().perform(
        OP["READ"], fd, (buf, cbuf), addr=int(ffi.cast("uintptr_t", cbuf)),
        length=size, off=2**64 - 1,
    )  # fmt: skip


@contextmanager
def pipe() -> Iterator[tuple[int, int]]:
    r, w = os.pipe()
    try:
        yield r, w
    finally:
        os.close(r)
        os.close(w)


_MODE: list[Mode] = ["interrupt"]


@pytest.fixture(autouse=True, params=["interrupt", "sqpoll"])
def ring_mode(request: pytest.FixtureRequest) -> Iterator[None]:
    """Every test twice: this thread submits, or a kernel thread does (the
    poller may take an op before its linked timer is queued behind it)."""
    _MODE[0] = request.param
    yield
    _MODE[0] = "interrupt"


def run(fn: Callable[[], Awaitable[Any]], **kwargs: Any) -> Any:
    kwargs.setdefault("mode", _MODE[0])
    return trio_uring.run(fn, fallback="raise", **kwargs)


def test_kernel_timer_cancels_on_time() -> None:
    async def main() -> None:
        with pipe() as (r, _):
            before = stats()
            deadline = trio.current_time() + 0.05
            with trio.CancelScope(deadline=deadline) as scope:
                await read_pipe(r)
            late = trio.current_time() - deadline
            after = stats()
        assert scope.cancelled_caught
        assert 0 <= late < LATENESS, late
        assert after.linked_timeouts_armed - before.linked_timeouts_armed == 1
        # The timer's own CQE said -ETIME: the kernel did the cancelling.
        assert after.linked_timeouts_fired - before.linked_timeouts_fired == 1
        assert after.ops_resubmitted == before.ops_resubmitted

    run(main)


def test_result_before_deadline_disarms_the_timer() -> None:
    async def main() -> None:
        with pipe() as (r, w):
            os.write(w, b"hello")
            with trio.fail_after(5):
                assert await read_pipe(r) == 5
            await trio.sleep(0.01)  # let the cancelled timer's CQE arrive
            s = stats()
            assert s.linked_timeouts_armed == 1
            assert s.linked_timeouts_fired == 0
            # Op and timer both retired: nothing of theirs is left in flight.
            assert all(op.opcode != OP["LINK_TIMEOUT"] for op in manager()._ops.values())

    run(main)


def test_deadline_moved_later_resubmits() -> None:
    async def main() -> None:
        with pipe() as (r, _):
            start = trio.current_time()
            with trio.CancelScope(deadline=start + 0.05) as scope:
                async with trio.open_nursery() as nursery:

                    async def move() -> None:
                        await trio.sleep(0.02)
                        scope.deadline = start + 0.15

                    nursery.start_soon(move)
                    await read_pipe(r)
            end = trio.current_time()
        s = stats()
        assert scope.cancelled_caught
        # The first timer fired at +0.05 while Trio's deadline was +0.15:
        # nothing happened, so the op went back to the kernel.
        assert s.ops_resubmitted == 1
        assert s.linked_timeouts_armed == 2
        assert s.linked_timeouts_fired >= 1
        assert start + 0.15 <= end < start + 0.15 + LATENESS

    run(main)


def test_deadline_moved_earlier_is_honoured() -> None:
    async def main() -> None:
        with pipe() as (r, _):
            start = trio.current_time()
            with trio.CancelScope(deadline=start + 10) as scope:
                async with trio.open_nursery() as nursery:

                    async def move() -> None:
                        await trio.sleep(0.02)
                        scope.deadline = start + 0.05

                    nursery.start_soon(move)
                    await read_pipe(r)
            end = trio.current_time()
        s = stats()
        assert scope.cancelled_caught
        assert start + 0.05 <= end < start + 0.05 + LATENESS
        # Trio cancelled it (ASYNC_CANCEL); the far timer went with the op.
        assert s.cancels_requested == 1
        assert s.linked_timeouts_fired == 0

    run(main)


def test_no_timer_without_a_deadline_or_under_a_shield() -> None:
    async def main() -> None:
        with pipe() as (r, w):
            async with trio.open_nursery() as nursery:

                async def feed() -> None:
                    await trio.sleep(0.02)
                    os.write(w, b"ab")

                nursery.start_soon(feed)
                assert await read_pipe(r) == 2
            with trio.move_on_after(5):
                with trio.CancelScope(shield=True):
                    os.write(w, b"c")
                    assert await read_pipe(r) == 1
        assert stats().linked_timeouts_armed == 0

    run(main)


def test_no_timer_under_mock_clock() -> None:
    async def main() -> None:
        with pipe() as (r, _):
            with trio.move_on_after(30) as scope:
                await read_pipe(r)
        assert scope.cancelled_caught
        s = stats()
        assert s.linked_timeouts_armed == 0
        # Trio's (virtual) deadline did it, through ASYNC_CANCEL.
        assert s.cancels_requested == 1

    run(main, clock=trio.testing.MockClock(autojump_threshold=0))


def test_no_timer_when_turned_off() -> None:
    async def main() -> None:
        with pipe() as (r, _), trio.move_on_after(0.02):
            await read_pipe(r)
        assert stats().linked_timeouts_armed == 0

    run(main, linked_timeouts=False)


def test_deadline_already_past_never_submits() -> None:
    async def main() -> None:
        with pipe() as (r, _):
            # Trio's own system tasks start waiting at run start: let them.
            await trio.testing.wait_all_tasks_blocked()
            before = stats().sqes_submitted
            with trio.CancelScope(deadline=trio.current_time() - 1) as scope:
                await read_pipe(r)
            assert scope.cancelled_caught
            assert stats().sqes_submitted == before

    run(main)


@pytest.mark.parametrize("entries", [2, 4])
def test_linked_pairs_never_split_on_a_tiny_ring(
    entries: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    # With 2 or 4 SQ slots, most pairs land where only one slot is left. A
    # split pair runs the op unlinked and the timer alone, which the kernel
    # refuses (-EINVAL). So every timer's own CQE must say -ETIME (it fired)
    # or -ECANCELED (its op ended first), and none anything else. (At the
    # deadline both the kernel timer and Trio's own cancel may act on the
    # same op, so fired + cancels_requested is at least the count, not
    # exactly it.)
    count = 40
    timer_results: list[int] = []
    original = UringIOManager.process_events

    def recording(self: UringIOManager, events: Any) -> None:
        if events:
            for ud, res in zip(events[0], events[1], strict=False):
                op = self._ops.get(ud)
                if op is not None and op.opcode == OP["LINK_TIMEOUT"]:
                    timer_results.append(res)
        original(self, events)

    monkeypatch.setattr(UringIOManager, "process_events", recording)

    async def main() -> None:
        fds = [os.pipe() for _ in range(count)]
        try:
            with trio.move_on_after(0.1):
                async with trio.open_nursery() as nursery:
                    for r, _ in fds:
                        nursery.start_soon(read_pipe, r)
            await trio.sleep(0.02)
            s = stats()
            assert s.linked_timeouts_armed == count
            assert s.linked_timeouts_fired + s.cancels_requested >= count
            assert s.linked_timeouts_fired > 0
        finally:
            for r, w in fds:
                os.close(r)
                os.close(w)

    run(main, entries=entries)
    assert len(timer_results) == count
    assert set(timer_results) <= {-errno.ETIME, -errno.ECANCELED}


def test_ops_skip_the_deadline_walk_only_while_trio_counts_no_deadline() -> None:
    # perform() skips current_effective_deadline() while Trio's count of
    # finite deadlines is zero. That count is a Trio internal: if a Trio
    # release renamed it, every op would silently take the slow path (or,
    # worse, read a stale zero). Check it exists and tracks deadlines here.
    async def main() -> tuple[int, int, int, int]:
        from trio_uring._core import deadlines as _deadlines

        registry = _deadlines.deadline_registry()
        assert registry is not None
        before = registry._active
        with pipe() as (r, w):
            os.write(w, b"x")
            await read_pipe(r)  # no deadline anywhere: the short path
            unarmed = stats().linked_timeouts_armed
            with trio.move_on_after(60):
                during = registry._active
                os.write(w, b"y")
                await read_pipe(r)  # under a deadline: a timer is linked
        return before, unarmed, during, stats().linked_timeouts_armed - unarmed

    assert trio_uring.run(main) == (0, 0, 1, 1)
