"""Where trio_uring meets Trio's scheduler: parking a task, waking it, abort callbacks.

This is the one module that imports Trio's scheduling primitives
(``wait_task_rescheduled``, ``reschedule``, ``Abort``): every other module
parks and wakes tasks through the names below, so how an op's completion
reaches a task, and how a cancel reaches an op, can be read in one place.

How Trio parks a task
---------------------

``await wait_task_rescheduled(abort_fn)`` suspends the current task until
somebody calls ``reschedule(task, outcome)``; the task then resumes with
that outcome's value (or exception). If the task is cancelled meanwhile,
Trio calls ``abort_fn(raise_cancel)`` and the answer decides what happens:

* ``Abort.SUCCEEDED``: the task wakes at once with ``Cancelled``. Right only
  when nothing of the wait can still happen: a poll (which consumes
  nothing), or an op the kernel has not seen yet (turned into a NOP).
* ``Abort.FAILED``: the task stays parked, and whoever holds it must
  reschedule it later. For an op the kernel holds: we ask the kernel to
  cancel it (``IORING_OP_ASYNC_CANCEL``) and wait for the op's own CQE,
  which says whether the cancel or the result won (``native.py``). Keeping
  ``raise_cancel`` lets us raise Trio's own ``Cancelled`` then.

Three kinds of waits use this: native ops (``native_abort``), polls
(``poll_abort``), and a task waiting for something a multishot op delivers,
such as an accepted connection (``Waiter``).
"""

from __future__ import annotations

import types
from typing import TYPE_CHECKING, Any

import outcome
from trio._core import _traps
from trio.lowlevel import (
    Abort,
    cancel_shielded_checkpoint,
    checkpoint_if_cancelled,
    current_task,
    reschedule,
    wait_task_rescheduled,
)

from .compat import trio_run_module

if TYPE_CHECKING:
    from collections.abc import Callable

    from trio.lowlevel import Task

    from .ops import Op
    from .ring import Ring

__all__ = [
    "Abort",
    "Waiter",
    "cancel_shielded_checkpoint",
    "checkpoint_if_cancelled",
    "current_task",
    "native_abort",
    "park",
    "pass_schedule_point",
    "poll_abort",
    "uncancelled",
    "wake",
    "wake_error",
]

# -- the two halves of a checkpoint, for the hot paths ------------------------
#
# Every Trio I/O call is a checkpoint: ``checkpoint_if_cancelled()`` (raise
# Cancelled if the task is cancelled, else count a cancel point) and, once
# the call is done, ``cancel_shielded_checkpoint()`` (one yield to the
# scheduler). Each is a coroutine of its own, and the second awaits a
# generator: three frames per call, on a path (an echo round trip) that
# passes two calls. ``uncancelled()`` is the first half's test and count as
# a plain call; the caller awaits Trio's own ``checkpoint_if_cancelled()``
# only when it says False (Trio's then passes the schedule point and
# raises). ``pass_schedule_point()`` is the second half as one generator.
# Both read Trio internals; where these are not what we mirror, they fall
# back to Trio's own functions (always correct, only slower).

_RUN_CONTEXT: Any = trio_run_module().GLOBAL_RUN_CONTEXT
_SHIELDED: Any = getattr(_traps, "CancelShieldedCheckpoint", None)


def _mirrors_trio() -> bool:
    if_cancelled: Any = checkpoint_if_cancelled
    shielded: Any = cancel_shielded_checkpoint
    return (
        _SHIELDED is not None
        and {"_cancel_status", "effectively_cancelled", "main_task", "ki_pending", "_cancel_points"}
        <= set(if_cancelled.__code__.co_names)
        and {"_async_yield", "CancelShieldedCheckpoint", "unwrap"}
        <= set(shielded.__code__.co_names)
    )


MIRRORS_TRIO_CHECKPOINTS: bool = _mirrors_trio()
"""Whether ``uncancelled`` and ``pass_schedule_point`` are the fast ones here."""


def uncancelled() -> bool:
    """``checkpoint_if_cancelled``'s test and count, without its coroutine frame.

    True (the cancel point counted, as Trio counts it) when the task may go
    on; False when it is cancelled (or this Trio is not the one mirrored):
    the caller then awaits Trio's ``checkpoint_if_cancelled()``.
    """
    if not MIRRORS_TRIO_CHECKPOINTS:
        return False
    task = _RUN_CONTEXT.task
    if task._cancel_status.effectively_cancelled or (
        task is task._runner.main_task and task._runner.ki_pending
    ):
        return False
    task._cancel_points += 1
    return True


@types.coroutine
def _shielded_yield() -> Any:
    (yield _SHIELDED).unwrap()


pass_schedule_point: Any = (
    _shielded_yield if MIRRORS_TRIO_CHECKPOINTS else cancel_shielded_checkpoint
)
"""``await pass_schedule_point()``: Trio's ``cancel_shielded_checkpoint()``, one frame deep."""

park = wait_task_rescheduled
"""``await park(abort_fn)``: suspend the current task (Trio's ``wait_task_rescheduled``)."""

wake = reschedule
"""``wake(task, outcome)``: resume a parked task (Trio's ``reschedule``; no outcome: ``None``)."""


def wake_error(task: Task, exc: BaseException) -> None:
    """Resume a parked task by raising ``exc`` in it."""
    reschedule(task, outcome.Error(exc))


def native_abort(
    ring: Ring, op: Op, request_cancel: Callable[[Op], None]
) -> Callable[[Callable[[], Any]], Abort]:
    """The abort callback for a task parked on native ``op`` (see ``native.py``).

    An op still in the SQ becomes a NOP and the task is freed at once; one
    the kernel holds gets ``request_cancel(op)`` (once) and the task waits
    for the op's CQE: the result wins if it came first.
    """

    def abort(raise_cancel: Callable[[], Any]) -> Abort:
        if ring.neutralize(op.index, op.user_data):
            # The kernel never saw it; the NOP's CQE retires the record.
            op.task = None
            return Abort.SUCCEEDED
        op.raise_cancel = raise_cancel
        if not op.cancel_requested:
            op.cancel_requested = True
            request_cancel(op)
        return Abort.FAILED

    return abort


def poll_abort(
    waiters: dict[int, Op], fd: int, orphan: Callable[[Op], None]
) -> Callable[[Callable[[], Any]], Abort]:
    """The abort callback for a task parked in ``wait_readable``/``wait_writable``.

    A poll consumes nothing, so the task is released now; the kernel-side
    request goes away (``orphan``) and its late CQE is ignored. The request
    may have been renewed while the task waited: the current one is in
    ``waiters``.
    """

    def abort(_: Callable[[], Any]) -> Abort:
        op = waiters.pop(fd, None)
        if op is not None:  # None: the manager closed under a crashing run
            orphan(op)
        return Abort.SUCCEEDED

    return abort


class Waiter:
    """One task at a time parked until something arrives (a multishot op's delivery).

    Cancelling the wait consumes nothing (what arrives stays queued where it
    was delivered), so the abort always succeeds.
    """

    __slots__ = ("abort", "task")

    def __init__(self) -> None:
        self.task: Task | None = None
        # Trio's abort callback, bound once: a wait costs no closure.
        self.abort: Callable[[Callable[[], Any]], Abort] = self._abort

    def _abort(self, _: Callable[[], Any]) -> Abort:
        self.task = None
        return Abort.SUCCEEDED

    async def wait(self) -> None:
        """Park until ``wake`` or ``fail``; a cancel just stops waiting."""
        self.task = current_task()
        await wait_task_rescheduled(self.abort)

    def wake(self) -> None:
        """Resume the parked task, if any."""
        task, self.task = self.task, None
        if task is not None:
            reschedule(task)

    def fail(self, exc: BaseException) -> None:
        """Resume the parked task, if any, by raising ``exc`` in it."""
        task, self.task = self.task, None
        if task is not None:
            reschedule(task, outcome.Error(exc))
