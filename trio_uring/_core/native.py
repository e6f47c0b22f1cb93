"""Native operations: one SQE a task awaits, with result-wins cancellation.

The op core. Every native operation (``trio_uring.lowlevel``, the native
files and sockets) goes through ``perform``:

1. A cancelled task never submits: ``checkpoint_if_cancelled`` first, as
   Trio's own I/O does.
2. The SQE is queued (no system call) and its pins, everything the kernel
   may touch, go into the op record in the manager's table (``inflight.py``).
   Under Trio's ``SystemClock`` a finite deadline becomes a kernel timer
   linked to the op (``IORING_OP_LINK_TIMEOUT``, see ``deadlines.py``).
3. The task parks (``parking.py``) until the op's own CQE, which the next
   tick's ``io_uring_enter`` reaps and ``process_events`` hands to
   ``_complete_native``.
4. A Trio cancel meanwhile asks the kernel to cancel (``ASYNC_CANCEL``) and
   keeps waiting: ``-ECANCELED`` raises ``Cancelled``, a real result wins
   and is returned, and the cancellation lands at the next checkpoint. An
   op still in the SQ is turned into a NOP and released at once.

The op record, not the task, owns the pins: it leaves the table only with
the op's final CQE, whatever happened to the task (``ops.py``).
"""

from __future__ import annotations

import errno
import time
from typing import Any, Final

import trio
from outcome import Value

from . import deadlines as _deadlines
from . import ops as _ops
from .abi import IOSQE_IO_LINK, OP
from .args import source
from .inflight import InFlight
from .ops import Op
from .parking import current_task, native_abort, park, pass_schedule_point, wake
from .structs import ffi as _ffi

_LINK_TIMEOUT: Final = OP["LINK_TIMEOUT"]
_SEND: Final = OP["SEND"]
_READ: Final = OP["READ"]
_NATIVE: Final = _ops.NATIVE
_INF: Final = float("inf")

# The batched path's sends leave for the kernel once this many SQEs are
# queued, not only at the tick's io_uring_enter. Held to the tick's end, a
# busy tick's sends all reach the peer at once, after every task has run:
# the peer then idles while we serve, and we idle while it answers (echo,
# 64 B x 50 connections: 0.79x stock). Started early, the two overlap.
# Measured on 2 cores, one round each (benchmarks/bench_echo.py): started
# at 2, 4, 8 and 16 queued, 1.24x, 1.22x, 1.31x and 1.29x stock, and 0.29
# (at 4) and 0.21 (at 8) system calls per round trip. docs/batched.md.
EARLY_SUBMIT: Final = 8


def _addr_of(cdata: Any) -> int:
    return int(_ffi.cast("uintptr_t", cdata))


class NativeOps(InFlight):
    """The manager's native ops (see module doc)."""

    def _init_native(self) -> None:
        # Trio's clock minus CLOCK_MONOTONIC, looked up at the first native
        # op (the runner's clock is not known at construction); None: never
        # link kernel timeouts in this run.
        self._clock_offset: float | None = None
        self._clock_checked = not self._settings.linked_timeouts
        # Trio's count of finite deadlines in this run (see deadlines.py),
        # or None: consult current_effective_deadline() on every op.
        self._deadlines: Any = None
        # The probe, once per run: every native op checks its opcode.
        self.opcodes: frozenset[int] = self._ring.probe()
        # fd -> the native op still owed a CQE on it, or {user_data: op}
        # when there are several, so that notify_closing (called on every
        # socket close) finds them directly. One op per fd is the common
        # case, and costs no dict of its own.
        self._native_by_fd: dict[int, Op | dict[int, Op]] = {}

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
        *,
        resubmittable: bool = True,
    ) -> int:
        """Run one native op for the current task; return its CQE's ``res``.

        The path every ``trio_uring.lowlevel`` operation takes: a cancelled
        task never submits (``checkpoint_if_cancelled`` first, as Trio's own
        I/O does); ``pins`` (everything the kernel may touch) stay in the op
        record until the op's own CQE; cancellation follows ``wait_op``
        (result wins). Under Trio's ``SystemClock`` a finite deadline is
        linked to the op as a kernel timeout (see ``deadlines.py``). If that
        timer fires while Trio has not cancelled the task (the deadline moved
        later), the op did nothing and is submitted again.

        Whether an op may be submitted again is its own property:
        ``resubmittable=False`` (a connect, which a cancel can leave half
        done: the next one would fail ``EALREADY``) links no kernel timer;
        Trio's deadline then cancels it through ``ASYNC_CANCEL``, as any
        other cancel. Nor is a timer linked on a ring too small to hold an
        op and its timer together (one SQ entry).

        A negative result is ``-errno``; turning it into the exception the
        stdlib call would raise is the caller's job.
        """
        await trio.lowlevel.checkpoint_if_cancelled()
        if not self._clock_checked:
            self._clock_checked = True
            self._clock_offset = _deadlines.kernel_clock_offset()
            self._deadlines = _deadlines.deadline_registry()
        registry = self._deadlines
        if (
            self._clock_offset is None
            or (registry is not None and not registry._active)
            or not resubmittable
        ):
            # The common case, kept short (it is every op's cost): no kernel
            # timer can apply, so one SQE and one wait.
            op = self._queue_native(
                opcode, fd, pins, addr, length, off, op_flags, 0, ioprio, buf_index,
                splice_fd_in, addr3,
            )  # fmt: skip
            # wait_op, inlined: one coroutine frame less per op.
            op.task.custom_sleep_data = op  # type: ignore[union-attr]  # parked on op (wait_op)
            res: int = await park(native_abort(self._ring, op, self._request_cancel))
            return self._settle_cancelled(op, res) if op.cancel_requested else res
        while True:
            timeout_ts = None
            kernel_deadline = 0
            offset = self._clock_offset
            if offset is not None and self._ring.sq_entries >= 2:
                deadline = trio.current_effective_deadline()
                at = None if deadline == _INF else _deadlines.deadline_ns(deadline, offset)
                # A deadline already past needs no timer: Trio cancels the
                # task at this tick anyway. Nor does one too far away.
                if at is not None and at > time.monotonic_ns():
                    kernel_deadline = at
                    timeout_ts = _deadlines.make_timespec(kernel_deadline)
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
        if timeout_ts is None:
            return self._queue_native(
                opcode, fd, pins, addr, length, off, op_flags, 0, ioprio, buf_index,
                splice_fd_in, addr3,
            )  # fmt: skip
        ring.reserve(2)
        ring.begin_chain()  # an SQPOLL poller must see both SQEs at once
        try:
            op = self._queue_native(
                opcode, fd, pins, addr, length, off, op_flags, IOSQE_IO_LINK, ioprio,
                buf_index, splice_fd_in, addr3,
            )  # fmt: skip
            tud = ring.next_user_data()
            top = Op(tud, _ops.INTERNAL, -1, _LINK_TIMEOUT, None)
            top.pins = timeout_ts
            top.linked = op
            op.linked = top
            # IORING_TIMEOUT_ABS: the deadline is absolute on CLOCK_MONOTONIC.
            top.index = ring.push(
                _LINK_TIMEOUT, -1, tud, addr=_addr_of(timeout_ts),
                length=1, op_flags=1,
            )  # fmt: skip
        finally:
            ring.end_chain()
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
        self._index_by_fd(op)
        return op

    def _index_by_fd(self, op: Op) -> None:
        by_fd = self._native_by_fd
        fd = op.fd
        same = by_fd.get(fd)
        if same is None:
            by_fd[fd] = op
        elif isinstance(same, dict):
            same[op.user_data] = op
        else:
            by_fd[fd] = {same.user_data: same, op.user_data: op}

    def _unindex_by_fd(self, op: Op) -> None:
        by_fd = self._native_by_fd
        same = by_fd.get(op.fd)
        if same is op:
            del by_fd[op.fd]
        elif isinstance(same, dict):
            same.pop(op.user_data, None)
            if not same:
                del by_fd[op.fd]

    async def read_op(self, fd: int, buf: Any, count: int, off: int) -> int:
        """``IORING_OP_READ`` of up to ``count`` bytes into ``buf`` (a C buffer the caller owns).

        The files' hot path, one frame deep: the caller passed Trio's
        ``checkpoint_if_cancelled`` and keeps ``buf`` referenced; the op's
        record pins it too, until the CQE. ``off`` is the SQE's field
        (``(u64)-1``: the file position). Under a finite deadline it takes
        ``perform``'s general path. Returns ``res`` (negative: -errno).
        """
        registry = self._deadlines
        if not self._clock_checked or (
            self._clock_offset is not None and (registry is None or registry._active)
        ):
            return await self.perform(_READ, fd, buf, _addr_of(buf), count, off)
        ring = self._ring
        ud = ring._ud_base | next(ring._ud_counter)
        op = Op(ud, _NATIVE, fd, _READ, current_task())
        op.pins = buf
        op.index = ring.push_read(fd, buf, count, off, ud)
        self._ops[ud] = op
        self._index_by_fd(op)
        return await self.at_checkpoint(op)

    def queue_send(self, fd: int, data: Any, msg_flags: int) -> Op | None:
        """Queue an ``IORING_OP_SEND`` of ``data`` (pinned in place) for the current task.

        The batched data path's send: returns the record for
        ``at_checkpoint(op, release=True)``, or None where a finite
        deadline may apply (a kernel timer to link): ``send_op`` then.
        """
        registry = self._deadlines
        if not self._clock_checked or (
            self._clock_offset is not None and (registry is None or registry._active)
        ):
            return None
        cdata = _ffi.from_buffer(data)  # holds a buffer export until released
        ring = self._ring
        ud = ring._ud_base | next(ring._ud_counter)
        op = Op(ud, _NATIVE, fd, _SEND, current_task())
        op.pins = cdata
        op.index = ring.push_send(fd, cdata, len(cdata), msg_flags, ud)
        self._ops[ud] = op
        by_fd = self._native_by_fd
        if fd in by_fd:
            self._index_by_fd(op)
        else:
            by_fd[fd] = op  # _index_by_fd's common case, written out
        # Recorded, so the kernel may have it: start the queue early if it
        # is long enough (EARLY_SUBMIT).
        ring.submit_early(EARLY_SUBMIT)
        return op

    async def send_op(self, fd: int, data: Any, msg_flags: int) -> int:
        """``IORING_OP_SEND`` of ``data``; the CQE's ``res`` (negative: -errno).

        ``queue_send`` and ``at_checkpoint`` in one call; under a finite
        deadline, ``perform``'s general path (with its kernel timer).
        """
        op = self.queue_send(fd, data, msg_flags)
        if op is not None:
            return await self.at_checkpoint(op, release=True)
        pinned = source(data)
        try:
            return await self.perform(
                _SEND, fd, pinned.pins(), pinned.addr, pinned.nbytes, 0, msg_flags
            )
        finally:
            pinned.release()

    async def at_checkpoint(self, op: Op, *, release: bool = False) -> int:
        """``op``'s result, just queued for this task: the checkpoint is the submission point.

        Every Trio I/O call passes a schedule point anyway. Here that one
        yield (a cancel-shielded checkpoint, as after Trio's direct attempt)
        also carries the op: the next tick's ``io_uring_enter`` submits it,
        a loopback send or a page-cache read completes inline there, and
        ``process_events`` leaves its ``res`` in the record
        (``_complete_native``) before the task runs again. So in the common
        case the task neither parks on the op nor is woken by it: no abort
        callback, no reschedule of ours. Only an op that did not complete
        in that tick parks, cancellably (``wait_op``'s result-wins rules).

        ``release``: the pins are a cffi buffer export (``queue_send``),
        let go of once the kernel is done with it, so that the caller's
        ``bytearray`` is free again even while a traceback keeps this frame.

        An exception out of the checkpoint itself (nothing Trio raises
        there) leaves the op to the kernel, orphaned: its record keeps the
        pins until the CQE, and the caller must not free them.
        """
        op.parked = False
        try:
            await pass_schedule_point()  # cancel_shielded_checkpoint(), one frame deep
        except BaseException:
            self._orphan(op)
            raise
        res = op.result
        try:
            if res is None:
                op.parked = True
                op.task.custom_sleep_data = op  # type: ignore[union-attr]  # (wait_op)
                res = await park(native_abort(self._ring, op, self._request_cancel))
            return self._settle_cancelled(op, res) if op.cancel_requested else res
        finally:
            # Here the CQE has arrived, or the SQE was turned into a NOP
            # before the kernel saw it (native_abort): nothing reads the pins.
            if release:
                _ffi.release(op.pins)

    async def wait_op(self, op: Op) -> int:
        """Park until ``op``'s CQE arrives; return its ``res`` (negative = -errno).

        A Trio cancel requests ``ASYNC_CANCEL`` and keeps waiting; if the
        kernel confirms it (``-ECANCELED``, or ``-EINTR`` after our cancel)
        ``Cancelled`` is raised, otherwise the real result wins and is
        returned: the cancellation then lands at the next checkpoint. An op
        still in the SQ is turned into a NOP and cancelled on the spot.
        """

        # The task is parked on this op until its completion (or a granted
        # abort) wakes it: Trio clears custom_sleep_data then. Socket
        # calls read it for Trio's one-waiter rule (_sockets/base.py).
        if op.task is not None:
            op.task.custom_sleep_data = op
        res: int = await park(native_abort(self._ring, op, self._request_cancel))
        return self._settle_cancelled(op, res) if op.cancel_requested else res

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
        by_fd = self._native_by_fd
        if by_fd.get(op.fd) is op:
            del by_fd[op.fd]  # _unindex_by_fd's common case, written out
        else:
            self._unindex_by_fd(op)
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
            if op.parked:
                wake(task, Value(res))
            else:
                # Its task is passing the checkpoint that submitted it
                # (at_checkpoint) and reads the result when it runs.
                op.result = res

    def native_ops_on(self, fd: int) -> list[Op]:
        """The native ops still owed a CQE on ``fd``."""
        same = self._native_by_fd.get(fd)
        if same is None:
            return []
        return list(same.values()) if isinstance(same, dict) else [same]

    def _cancel_native_on_fd(self, fd: int) -> None:
        for op in self.native_ops_on(fd):
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
