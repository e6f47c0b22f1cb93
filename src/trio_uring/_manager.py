"""``UringIOManager``: Trio's I/O-manager contract, fulfilled on io_uring.

How Trio drives an I/O manager
------------------------------

Trio's run loop builds one manager per run (``TheIOManager()`` in
``trio._core._run``) and, once per scheduler tick, calls
``get_events(timeout)``: block until something happens or ``timeout``
expires, returning a falsy value *only* in the latter case. Whatever it
returns goes to ``process_events(events)`` on the Trio thread, which wakes
the tasks whose I/O finished. In guest mode ``get_events`` runs in a worker
thread while the Trio thread runs nothing, so the two never touch the ring
at the same time; ``force_wakeup`` is the one method called concurrently
(from other threads and from signal handlers).

How we map that onto io_uring
-----------------------------

* Every task that waits gets an SQE queued in the SQ (no syscall); the next
  ``get_events`` submits the whole batch and waits in the *same*
  ``io_uring_enter``. One syscall per tick, however many tasks started
  waiting.
* ``wait_readable``/``wait_writable`` are one-shot ``IORING_OP_POLL_ADD``
  requests. A poll consumes nothing, so cancelling one is instant: the task
  is released at once (``Abort.SUCCEEDED``) and the kernel-side request is
  either turned into a NOP (still in the SQ) or cancelled with
  ``IORING_OP_ASYNC_CANCEL``. Its late CQE is recognised and ignored.
  Unlike epoll there is no interest set to keep in sync, so a stale fd can
  never make the loop spin: each poll fires at most once.
* ``force_wakeup`` writes to an eventfd that a multishot poll watches.
* Native operations (``trio_uring.lowlevel``) go through ``perform``: the
  op's pins stay in the op record until its own CQE arrives, and a cancel is
  a request to the kernel, answered by that CQE (see ``_ops.py``).
* ``close()`` cancels every op the kernel still holds and reaps until the
  table is empty before the ring's memory is unmapped.
"""

from __future__ import annotations

import contextlib
import copy
import errno
import os
import select
import time
from typing import TYPE_CHECKING, Any

import attrs
import outcome
import trio
from trio.lowlevel import Abort, current_task, reschedule, wait_task_rescheduled

from . import _deadlines, _ops
from ._abi import CQE_F_MORE, IOSQE_IO_LINK, OP
from ._availability import open_ring
from ._config import Settings, current_settings
from ._ops import Op

if TYPE_CHECKING:
    from collections.abc import Callable

    from trio.lowlevel import Task

    from ._types import HasFileno

_POLL_ADD = OP["POLL_ADD"]
_ASYNC_CANCEL = OP["ASYNC_CANCEL"]
_LINK_TIMEOUT = OP["LINK_TIMEOUT"]
_POLLIN = select.POLLIN
_POLLOUT = select.POLLOUT
# What wakes a waiter: what epoll would report for EPOLLIN / EPOLLOUT.
_WAKES_READER = select.POLLIN | select.POLLPRI | select.POLLERR | select.POLLHUP | select.POLLNVAL
_WAKES_READER |= select.POLLRDHUP
_WAKES_WRITER = select.POLLOUT | select.POLLERR | select.POLLHUP | select.POLLNVAL
_POLL_ADD_MULTI = 1  # IORING_POLL_ADD_MULTI, 5.13
_INF = float("inf")

EventResult = tuple[()] | tuple[list[int], list[int], list[int]]

# Op tables whose drain was interrupted at close(): kept alive for the life of
# the process, because the kernel may still write into what they pin.
_UNREAPED: list[dict[int, Op]] = []


@attrs.frozen(eq=False)
class UringStatistics:
    """What ``trio.lowlevel.current_statistics().io_statistics`` reports on io_uring."""

    tasks_waiting_read: int
    """Tasks blocked in ``wait_readable``."""
    tasks_waiting_write: int
    """Tasks blocked in ``wait_writable``."""
    ops_in_flight: int
    """SQEs handed out whose final CQE has not arrived (internal ones included)."""
    sqes_submitted: int
    """SQEs queued since the run started."""
    enter_calls: int
    """``io_uring_enter`` system calls since the run started."""
    cancels_requested: int
    """``IORING_OP_ASYNC_CANCEL`` requests made for native ops."""
    cancels_lost_to_result: int
    """Cancelled native ops whose real result won and was delivered."""
    linked_timeouts_armed: int
    """``IORING_OP_LINK_TIMEOUT`` requests linked to native ops."""
    linked_timeouts_fired: int
    """Kernel-linked timeouts that fired (their CQE said ``-ETIME``)."""
    ops_resubmitted: int
    """Native ops submitted again because their kernel timeout fired while
    Trio's deadline had moved later."""
    ring_entries: int
    """SQ size of the ring."""
    backend: str = attrs.field(init=False, default="io_uring")
    """Always ``"io_uring"``."""

    @property
    def sqes_per_enter(self) -> float:
        """Average batch size: SQEs queued per ``io_uring_enter``."""
        return self.sqes_submitted / self.enter_calls if self.enter_calls else 0.0


_run_context: Any = None


def running_manager() -> UringIOManager | None:
    """The current run's manager if it is ours, else None (stock Trio, a fallback).

    On every native operation's path, so the checked Trio internals are
    looked up once per process rather than once per call.

    :raises RuntimeError: outside a Trio run.
    """
    global _run_context
    if _run_context is None:
        from ._compat import trio_run_module

        _run_context = trio_run_module().GLOBAL_RUN_CONTEXT
    try:
        runner = _run_context.runner
    except AttributeError:
        raise RuntimeError("must be called from inside a Trio run") from None
    io = runner.io_manager
    return io if isinstance(io, UringIOManager) else None


def _fileno(fd: int | HasFileno) -> int:
    if not isinstance(fd, int):
        fd = fd.fileno()
    if fd < 0:
        # The same words select.epoll uses, so callers see one behaviour.
        raise ValueError(f"file descriptor cannot be a negative integer ({fd})")
    return fd


class UringIOManager:
    """Trio's I/O manager on io_uring. Built by Trio, one per run."""

    def __init__(self, settings: Settings | None = None) -> None:
        self._closed = True  # until the ring exists, close() has nothing to do
        self._settings = settings if settings is not None else current_settings()
        # The switch opens the ring in __new__ (to fall back if it can't).
        ring = self.__dict__.pop("_pending_ring", None)
        self._ring = ring if ring is not None else open_ring(self._settings)
        self._ops: dict[int, Op] = {}
        self._readers: dict[int, Op] = {}
        self._writers: dict[int, Op] = {}
        self._cancels_requested = 0
        self._cancels_lost = 0
        self._timeouts_armed = 0
        self._timeouts_fired = 0
        self._resubmitted = 0
        # Trio's clock minus CLOCK_MONOTONIC, looked up at the first native
        # op (the runner's clock is not known at construction); None: never
        # link kernel timeouts in this run.
        self._clock_offset: float | None = None
        self._clock_checked = not self._settings.linked_timeouts
        # Trio's count of finite deadlines in this run (see _deadlines.py),
        # or None: consult current_effective_deadline() on every op.
        self._deadlines: Any = None
        # The probe, once per run: every native op checks its opcode.
        self.opcodes: frozenset[int] = self._ring.probe()
        # fd -> {user_data: op} for native ops still owed a CQE, so that
        # notify_closing (called on every socket close) finds them directly.
        self._native_by_fd: dict[int, dict[int, Op]] = {}
        try:
            self._wakeup_fd = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
        except BaseException:
            self._ring.close()
            raise
        self._closed = False
        self._arm_wakeup()

    # ------------------------------------------------------------------
    # Trio's contract
    # ------------------------------------------------------------------

    def statistics(self) -> UringStatistics:
        """Counters for ``trio.lowlevel.current_statistics()``."""
        return UringStatistics(
            tasks_waiting_read=len(self._readers),
            tasks_waiting_write=len(self._writers),
            ops_in_flight=len(self._ops),
            sqes_submitted=self._ring.sqes_queued,
            enter_calls=self._ring.enter_calls,
            cancels_requested=self._cancels_requested,
            cancels_lost_to_result=self._cancels_lost,
            linked_timeouts_armed=self._timeouts_armed,
            linked_timeouts_fired=self._timeouts_fired,
            ops_resubmitted=self._resubmitted,
            ring_entries=self._ring.sq_entries,
        )

    def force_wakeup(self) -> None:
        """Make a blocked ``get_events`` return. Thread- and signal-safe."""
        fd = self._wakeup_fd
        if fd < 0:
            return  # closed: nothing left to wake
        try:
            os.eventfd_write(fd, 1)
        except BlockingIOError:
            # The counter is saturated: a wakeup is already pending.
            pass
        except OSError:
            # Closed under us at the end of a run: nothing left to wake.
            pass

    def get_events(self, timeout: float) -> EventResult:
        """Submit what is queued and wait up to ``timeout`` s: one ``io_uring_enter``.

        Returns ``()`` (falsy) if and only if the timeout expired with nothing.
        """
        return self._ring.get_events(timeout) or ()

    def process_events(self, events: EventResult) -> None:
        """Wake the tasks whose operations completed (on the Trio thread)."""
        if not events:
            return
        uds, results, flags = events
        ops = self._ops
        for ud, res, cqe_flags in zip(uds, results, flags, strict=False):
            op = ops.get(ud)
            if op is None:
                # Not ours any more (cannot happen unless the kernel
                # misbehaves); nothing references memory for it.
                continue
            if not cqe_flags & CQE_F_MORE:
                del ops[ud]
            kind = op.kind
            if kind == _ops.POLL_READ or kind == _ops.POLL_WRITE:
                task = op.task
                if task is None:
                    continue
                waiters = self._readers if kind == _ops.POLL_READ else self._writers
                if res >= 0 and not res & (
                    _WAKES_READER if kind == _ops.POLL_READ else _WAKES_WRITER
                ):
                    # io_uring always reports EPOLLRDHUP, even to a POLLOUT
                    # request: a peer's shutdown is no reason to wake a
                    # writer. epoll would not have reported it; poll again.
                    self._repoll(op, waiters)
                    continue
                op.task = None
                if waiters.get(op.fd) is op:
                    del waiters[op.fd]
                if res < 0:
                    reschedule(task, outcome.Error(OSError(-res, os.strerror(-res))))
                else:
                    reschedule(task)
            elif kind == _ops.NATIVE:
                self._complete_native(op, res)
            elif kind == _ops.MULTISHOT:
                op.pins[1](res, bool(cqe_flags & CQE_F_MORE))
            elif kind == _ops.WAKEUP:
                self._drain_wakeup()
                if not cqe_flags & CQE_F_MORE and not self._closed:
                    self._arm_wakeup()
            elif res == -errno.ETIME and op.opcode == _LINK_TIMEOUT:
                self._timeouts_fired += 1
            # Anything else is INTERNAL (ASYNC_CANCEL, LINK_TIMEOUT): nobody
            # waits for it; retiring the record above released its pins.

    def close(self) -> None:
        """Cancel and reap every op in flight, then release the ring.

        Does not return while the kernel may still write into memory an op
        pins: ops that cannot be cancelled once started are waited for.
        """
        if self._closed:
            return
        self._closed = True
        try:
            self._drain_all()
        finally:
            if self._ops:
                # The drain was interrupted (KeyboardInterrupt, an enter
                # error): the kernel may still write into what these ops pin.
                # Leaking them is safe; freeing them is a use-after-free.
                _UNREAPED.append(self._ops)
            self._ops = {}
            self._native_by_fd.clear()
            self._readers.clear()
            self._writers.clear()
            self._ring.close()
            fd, self._wakeup_fd = self._wakeup_fd, -1
            # From now on force_wakeup writes to -1 (EBADF, ignored), never
            # to an unrelated file that reused this number.
            os.close(fd)

    def __del__(self) -> None:
        # Trio always calls close(); this is the safety net for a manager
        # built and dropped by hand, so the kernel never outlives its pins.
        if not getattr(self, "_closed", True):
            self.close()

    # ------------------------------------------------------------------
    # Readiness: wait_readable / wait_writable / notify_closing
    # ------------------------------------------------------------------

    async def wait_readable(self, fd: int | HasFileno) -> None:
        """Block until the kernel reports that ``fd`` is readable.

        ``fd`` is an integer file descriptor or an object with ``fileno()``.

        :raises trio.BusyResourceError: if another task already waits to read it.
        :raises trio.ClosedResourceError: if ``notify_closing`` is called on it meanwhile.
        """
        await self._poll_wait(_fileno(fd), self._readers, _ops.POLL_READ, _POLLIN)

    async def wait_writable(self, fd: int | HasFileno) -> None:
        """Block until the kernel reports that ``fd`` is writable.

        :raises trio.BusyResourceError: if another task already waits to write it.
        :raises trio.ClosedResourceError: if ``notify_closing`` is called on it meanwhile.
        """
        await self._poll_wait(_fileno(fd), self._writers, _ops.POLL_WRITE, _POLLOUT)

    async def _poll_wait(self, fd: int, waiters: dict[int, Op], kind: int, mask: int) -> None:
        if fd in waiters:
            raise trio.BusyResourceError("another task is already reading / writing this fd")
        ring = self._ring
        ud = ring.next_user_data()
        op = Op(ud, kind, fd, _POLL_ADD, current_task())
        op.index = ring.push_poll(fd, mask, ud)
        self._ops[ud] = op
        waiters[fd] = op

        def abort(_: Callable[[], Any]) -> Abort:
            # A poll consumes nothing: release the task now and make sure the
            # kernel-side request goes away; its CQE will be ignored. (The
            # request may have been renewed since: take the current one.)
            self._orphan(waiters.pop(fd))
            return Abort.SUCCEEDED

        await wait_task_rescheduled(abort)

    def _repoll(self, op: Op, waiters: dict[int, Op]) -> None:
        # Same task, same fd, a fresh request. The old record is retired (its
        # CQE just arrived); the abort callback finds the new one in waiters.
        ring = self._ring
        ud = ring.next_user_data()
        new = Op(ud, op.kind, op.fd, _POLL_ADD, op.task)
        mask = _POLLIN if op.kind == _ops.POLL_READ else _POLLOUT
        new.index = ring.push_poll(op.fd, mask, ud)
        op.task = None
        self._ops[ud] = new
        waiters[op.fd] = new

    def notify_closing(self, fd: int | HasFileno) -> None:
        """Wake every task waiting on ``fd`` with ``trio.ClosedResourceError``.

        Call it before closing the fd. Native ops in flight on the fd are
        cancelled too.
        """
        if not isinstance(fd, int):
            fd = fd.fileno()
        exc = trio.ClosedResourceError("another task closed this fd")
        try:
            me: Task | None = current_task()
        except RuntimeError:
            me = None
        raise_at_end = False
        for waiters in (self._readers, self._writers):
            op = waiters.pop(fd, None)
            if op is None:
                continue
            task = op.task
            self._orphan(op)
            if task is me:
                raise_at_end = True
            elif task is not None:
                reschedule(task, outcome.Error(copy.copy(exc)))
        self._cancel_native_on_fd(fd)
        if raise_at_end:
            raise exc

    # ------------------------------------------------------------------
    # Native operations (the op core; see _ops.py for the lifecycle)
    # ------------------------------------------------------------------

    def supports(self, opcode: int) -> bool:
        """Whether this kernel supports io_uring ``opcode`` (the ring's probe, cached)."""
        return opcode in self.opcodes

    async def perform(
        self,
        opcode: int,
        fd: int,
        pins: Any,
        addr: int = 0,
        length: int = 0,
        off: int = 0,
        op_flags: int = 0,
        ioprio: int = 0,
        buf_index: int = 0,
        splice_fd_in: int = 0,
        addr3: int = 0,
    ) -> int:
        """Run one native op for the current task; return its CQE's ``res``.

        The path every ``trio_uring.lowlevel`` operation takes: a cancelled
        task never submits (``checkpoint_if_cancelled`` first, as Trio's own
        I/O does); ``pins`` (everything the kernel may touch) stay in the op
        record until the op's own CQE; cancellation follows ``wait_op``
        (result wins). Under Trio's ``SystemClock`` a finite deadline is
        linked to the op as a kernel timeout (see ``_deadlines.py``). If that
        timer fires while Trio has not cancelled the task (the deadline moved
        later), the op did nothing and is submitted again.

        A negative result is ``-errno``; turning it into the exception the
        stdlib call would raise is the caller's job.
        """
        await trio.lowlevel.checkpoint_if_cancelled()
        if not self._clock_checked:
            self._clock_checked = True
            self._clock_offset = _deadlines.kernel_clock_offset()
            self._deadlines = _deadlines.deadline_registry()
        registry = self._deadlines
        if self._clock_offset is None or (registry is not None and not registry._active):
            # The common case, kept short (it is every op's cost): no kernel
            # timer can apply, so one SQE and one wait.
            op = self._queue_native(
                opcode, fd, pins, addr, length, off, op_flags, 0, ioprio, buf_index,
                splice_fd_in, addr3,
            )  # fmt: skip
            # wait_op, inlined: one coroutine frame less per op.
            res: int = await wait_task_rescheduled(self._abort_callback(op))
            return self._settle_cancelled(op, res) if op.cancel_requested else res
        while True:
            timeout_ts = None
            kernel_deadline = 0
            offset = self._clock_offset
            if offset is not None:
                deadline = trio.current_effective_deadline()
                if deadline != _INF:
                    kernel_deadline = _deadlines.deadline_ns(deadline, offset)
                    # A deadline already past needs no timer: Trio cancels
                    # the task at this tick anyway.
                    if kernel_deadline > time.monotonic_ns():
                        from ._ring import ffi

                        timeout_ts = _deadlines.make_timespec(ffi, kernel_deadline)
            op = self.prepare(
                opcode, fd, pins, addr=addr, length=length, off=off, op_flags=op_flags,
                ioprio=ioprio, buf_index=buf_index, splice_fd_in=splice_fd_in, addr3=addr3,
                timeout_ts=timeout_ts,
            )  # fmt: skip
            res = await self.wait_op(op)
            if timeout_ts is None or (res != -errno.ECANCELED and res != -errno.EINTR):
                return res
            if time.monotonic_ns() < kernel_deadline:
                # Cancelled before our timer could fire: by somebody else
                # (a cancel_fd from another task), so it is the result.
                return res
            # Our kernel timer fired, so the op did nothing. If Trio's
            # deadline is still the one we linked, the task is cancelled now.
            await trio.lowlevel.checkpoint_if_cancelled()
            # It moved later (or went away): submit the op again.
            self._resubmitted += 1

    def prepare(
        self,
        opcode: int,
        fd: int,
        pins: Any,
        *,
        addr: int = 0,
        length: int = 0,
        off: int = 0,
        op_flags: int = 0,
        ioprio: int = 0,
        buf_index: int = 0,
        splice_fd_in: int = 0,
        addr3: int = 0,
        timeout_ts: Any = None,
    ) -> Op:
        """Queue a native op for the current task; its pins live in the record.

        ``timeout_ts``, when given, is a pinned ``struct __kernel_timespec``
        holding an absolute CLOCK_MONOTONIC deadline: a ``LINK_TIMEOUT`` is
        queued right behind the op, in the same submission.
        """
        ring = self._ring
        sqe_flags = 0
        if timeout_ts is not None:
            ring.reserve(2)
            sqe_flags = IOSQE_IO_LINK
        op = self._queue_native(
            opcode, fd, pins, addr, length, off, op_flags, sqe_flags, ioprio, buf_index,
            splice_fd_in, addr3,
        )  # fmt: skip
        if timeout_ts is not None:
            tud = ring.next_user_data()
            top = Op(tud, _ops.INTERNAL, -1, _LINK_TIMEOUT, None)
            top.pins = timeout_ts
            top.linked = op
            op.linked = top
            from ._ring import ffi

            # IORING_TIMEOUT_ABS: the deadline is absolute on CLOCK_MONOTONIC.
            top.index = ring.push(
                _LINK_TIMEOUT, -1, tud, addr=int(ffi.cast("uintptr_t", timeout_ts)),
                length=1, op_flags=1,
            )  # fmt: skip
            self._ops[tud] = top
            self._timeouts_armed += 1
        return op

    def _queue_native(
        self,
        opcode: int,
        fd: int,
        pins: Any,
        addr: int,
        length: int,
        off: int,
        op_flags: int,
        sqe_flags: int,
        ioprio: int,
        buf_index: int,
        splice_fd_in: int,
        addr3: int,
    ) -> Op:
        # prepare() without the timer, every field positional: each op's cost.
        ring = self._ring
        ud = ring.next_user_data()
        op = Op(ud, _ops.NATIVE, fd, opcode, current_task())
        op.pins = pins
        op.index = ring.push_sqe(
            opcode, fd, ud, addr, length, off, op_flags, sqe_flags, ioprio, buf_index,
            splice_fd_in, addr3,
        )  # fmt: skip
        self._ops[ud] = op
        same_fd = self._native_by_fd.get(fd)
        if same_fd is None:
            self._native_by_fd[fd] = {ud: op}
        else:
            same_fd[ud] = op
        return op

    async def wait_op(self, op: Op) -> int:
        """Park until ``op``'s CQE arrives; return its ``res`` (negative = -errno).

        A Trio cancel requests ``ASYNC_CANCEL`` and keeps waiting; if the
        kernel confirms it (``-ECANCELED``, or ``-EINTR`` after our cancel)
        ``Cancelled`` is raised, otherwise the real result wins and is
        returned: the cancellation then lands at the next checkpoint. An op
        still in the SQ is turned into a NOP and cancelled on the spot.
        """

        res: int = await wait_task_rescheduled(self._abort_callback(op))
        return self._settle_cancelled(op, res) if op.cancel_requested else res

    def _abort_callback(self, op: Op) -> Callable[[Callable[[], Any]], Abort]:
        """Trio's abort function for a task parked on native ``op`` (see ``wait_op``)."""

        def abort(raise_cancel: Callable[[], Any]) -> Abort:
            if self._ring.neutralize(op.index, op.user_data):
                # The kernel never saw it; the NOP's CQE retires the record.
                op.task = None
                return Abort.SUCCEEDED
            op.raise_cancel = raise_cancel
            if not op.cancel_requested:
                op.cancel_requested = True
                self._cancels_requested += 1
                self._queue_cancel(op.user_data)
            return Abort.FAILED

        return abort

    def _settle_cancelled(self, op: Op, res: int) -> int:
        """The CQE of an op we asked to cancel: raise if the cancel won, else count the loss."""
        if res == -errno.ECANCELED or res == -errno.EINTR:
            if op.raise_cancel is not None:
                op.raise_cancel()
            # Not a Trio cancel: notify_closing asked for it.
            raise trio.ClosedResourceError("another task closed this fd")
        self._cancels_lost += 1
        return res

    def _complete_native(self, op: Op, res: int) -> None:
        same_fd = self._native_by_fd.get(op.fd)
        if same_fd is not None:
            same_fd.pop(op.user_data, None)
            if not same_fd:
                del self._native_by_fd[op.fd]
        if op.neutralized:
            res = -errno.ECANCELED  # the NOP that replaced it: nothing happened
        linked = op.linked
        if linked is not None:
            # Op and timer records point at each other: break the cycle so
            # both are freed by refcount, not left for the cycle collector.
            op.linked = linked.linked = None
        task = op.task
        if task is not None:
            op.task = None
            reschedule(task, outcome.Value(res))

    def _cancel_native_on_fd(self, fd: int) -> None:
        for op in self._native_by_fd.get(fd, {}).values():
            if op.task is not None and not op.cancel_requested:
                op.cancel_requested = True
                self._cancels_requested += 1
                if self._ring.neutralize(op.index, op.user_data):
                    # Still in the SQ: the kernel must never see it, since
                    # the fd number may be reused before the next submit and
                    # the op would then act on an unrelated file. Its NOP
                    # completion stands for a cancel.
                    op.neutralized = True
                else:
                    self._queue_cancel(op.user_data)

    # ------------------------------------------------------------------
    # Multishot native ops (one SQE, many CQEs: IORING_ACCEPT_MULTISHOT)
    # ------------------------------------------------------------------

    def start_multishot(
        self,
        opcode: int,
        fd: int,
        pins: Any,
        consumer: Callable[[int, bool], None],
        *,
        addr: int = 0,
        length: int = 0,
        off: int = 0,
        op_flags: int = 0,
        ioprio: int = 0,
    ) -> Op:
        """Queue a multishot op whose every CQE is handed to ``consumer(res, more)``.

        No task waits on it: ``consumer`` runs on the Trio thread from
        ``process_events`` (and from ``close()``'s drain, where it must
        only release what the result owns, e.g. close an accepted fd).
        ``more`` is False on the op's final CQE; ``res`` is ``-errno`` on an
        error. ``pins`` live in the record until that final CQE.
        """
        ring = self._ring
        ud = ring.next_user_data()
        op = Op(ud, _ops.MULTISHOT, fd, opcode, None)
        op.pins = (pins, consumer)
        op.index = ring.push(
            opcode, fd, ud, addr=addr, length=length, off=off, op_flags=op_flags, ioprio=ioprio
        )
        self._ops[ud] = op
        return op

    def cancel_multishot(self, op: Op) -> None:
        """Ask the kernel to stop ``op``; its consumer still sees every CQE until the last.

        An op the kernel has not seen yet becomes a NOP, and the consumer
        gets its final ``-ECANCELED`` at once.
        """
        if op.cancel_requested or self._ops.get(op.user_data) is not op:
            return
        op.cancel_requested = True
        if self._ring.neutralize(op.index, op.user_data):
            # The NOP's CQE (res 0) must not be read as a result: retire
            # the record as internal and tell the consumer now.
            consumer = op.pins[1]
            op.kind = _ops.INTERNAL
            consumer(-errno.ECANCELED, False)
        else:
            self._queue_cancel(op.user_data)

    # ------------------------------------------------------------------
    # Internals
    # ------------------------------------------------------------------

    def _orphan(self, op: Op) -> None:
        """Nobody waits for ``op`` any more; make the kernel drop it soon."""
        op.task = None
        if not self._ring.neutralize(op.index, op.user_data):
            self._queue_cancel(op.user_data)

    def _queue_cancel(self, target_ud: int) -> None:
        ring = self._ring
        ud = ring.next_user_data()
        self._ops[ud] = Op(ud, _ops.INTERNAL, -1, _ASYNC_CANCEL, None)
        ring.push(_ASYNC_CANCEL, -1, ud, addr=target_ud)

    def _arm_wakeup(self) -> None:
        ring = self._ring
        ud = ring.next_user_data()
        op = Op(ud, _ops.WAKEUP, self._wakeup_fd, _POLL_ADD, None)
        op.index = ring.push_poll(self._wakeup_fd, _POLLIN, ud, _POLL_ADD_MULTI)
        self._ops[ud] = op

    def _drain_wakeup(self) -> None:
        with contextlib.suppress(BlockingIOError, OSError):
            os.eventfd_read(self._wakeup_fd)

    def _drain_all(self) -> None:
        """Cancel everything the kernel holds and reap until nothing is left."""
        ring = self._ring
        ops = self._ops
        if not ops:
            return
        # Wake nobody: the run is over. Each op gets its own ASYNC_CANCEL by
        # user_data (5.5+, unlike CANCEL_ANY's 5.19). The requests are sent
        # again every second while ops linger: an op the kernel cannot cancel
        # once started (a disk read in flight) finishes on its own and is
        # reaped then. We never give up early, since unmapping while the
        # kernel holds a pin is a use-after-free.
        rounds = 0
        while ops:
            if rounds % 20 == 0:
                for ud in [ud for ud, op in ops.items() if op.opcode != _ASYNC_CANCEL]:
                    self._queue_cancel(ud)
            rounds += 1
            ring.wait(0.05)
            uds, results, flags = ring.reap()
            for ud, res, cqe_flags in zip(uds, results, flags, strict=True):
                more = bool(cqe_flags & CQE_F_MORE)
                op = ops.get(ud) if more else ops.pop(ud, None)
                if op is not None and op.kind == _ops.MULTISHOT:
                    # A multishot CQE reaped at close still carries a result
                    # its consumer owns (an accepted fd): hand it over, so
                    # the consumer can close it rather than leak it.
                    op.pins[1](res, more)
