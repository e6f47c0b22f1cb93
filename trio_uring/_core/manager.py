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
* The manager is one class per job, put together here: readiness waits
  (``polling.py``), native ops with result-wins cancellation
  (``native.py``), multishot ops (``multishot.py``), on the shared ring and
  op table (``inflight.py``). Parking and waking tasks is ``parking.py``'s.
* ``process_events`` hands each CQE to the job its op kind names.
* ``force_wakeup`` writes to an eventfd that a multishot poll watches.
* ``close()`` cancels every op the kernel still holds and reaps until the
  table is empty before the ring's memory is unmapped.
"""

from __future__ import annotations

import contextlib
import errno
import os
import select
import time
from typing import Any, Final

from . import ops as _ops
from .abi import CQE_F_MORE, OP
from .availability import open_ring
from .multishot import Multishot
from .native import NativeOps
from .ops import Op
from .polling import POLL_ADD_MULTI, Polling
from .settings import Settings, current_settings
from .statistics import UringStatistics

_POLL_ADD: Final = OP["POLL_ADD"]
_ASYNC_CANCEL: Final = OP["ASYNC_CANCEL"]
_LINK_TIMEOUT: Final = OP["LINK_TIMEOUT"]
_POLLIN: Final = select.POLLIN
_NATIVE: Final = _ops.NATIVE
_POLL_READ: Final = _ops.POLL_READ
_POLL_WRITE: Final = _ops.POLL_WRITE
_MULTISHOT: Final = _ops.MULTISHOT
_WAKEUP: Final = _ops.WAKEUP

EventResult = tuple[()] | tuple[list[int], list[int], list[int]]

# Op tables whose drain was interrupted or timed out at close(): kept alive
# for the life of the process, because the kernel may still write into what
# they pin.
_UNREAPED: list[dict[int, Op]] = []
# How long close() waits for the kernel to give back the ops it still holds
# before it leaks them instead: closing a manager is bounded, whatever state
# the run was left in.
DRAIN_TIMEOUT: Final = 5.0

__all__ = ["UringIOManager", "UringStatistics", "running_manager"]


_run_context: Any = None


def running_manager() -> UringIOManager | None:
    """The current run's manager if it is ours, else None (stock Trio, a fallback).

    On every native operation's path, so the checked Trio internals are
    looked up once per process rather than once per call.

    :raises RuntimeError: outside a Trio run.
    """
    global _run_context
    if _run_context is None:
        from .compat import trio_run_module

        _run_context = trio_run_module().GLOBAL_RUN_CONTEXT
    try:
        runner = _run_context.runner
    except AttributeError:
        raise RuntimeError("must be called from inside a Trio run") from None
    io = runner.io_manager
    return io if isinstance(io, UringIOManager) else None


class UringIOManager(Polling, NativeOps, Multishot):
    """Trio's I/O manager on io_uring. Built by Trio, one per run."""

    def __init__(self, settings: Settings | None = None) -> None:
        self._closed = True  # until the ring exists, close() has nothing to do
        self._settings = settings if settings is not None else current_settings()
        # The switch opens the ring in __new__ (to fall back if it can't).
        ring = self.__dict__.pop("_pending_ring", None)
        self._ring = ring if ring is not None else open_ring(self._settings)
        self._init_in_flight()
        self._init_polling()
        self._init_native()
        self._init_multishot()
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
            mode="sqpoll" if self._ring.sqpoll else "interrupt",
            sq_wakeups=self._ring.sq_wakeups,
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
            if kind == _NATIVE:
                self._complete_native(op, res)
            elif kind in (_POLL_READ, _POLL_WRITE):
                self._complete_poll(op, res, cqe_flags)
            elif kind == _MULTISHOT:
                op.pins[1](res, cqe_flags)
            elif kind == _WAKEUP:
                self._drain_wakeup()
                if not cqe_flags & CQE_F_MORE and not self._closed:
                    self._arm_wakeup()
            elif res == -errno.ETIME and op.opcode == _LINK_TIMEOUT:
                self._timeouts_fired += 1
            # Anything else is INTERNAL (ASYNC_CANCEL, LINK_TIMEOUT): nobody
            # waits for it; retiring the record above released its pins.
        buffers = self._buffers
        if buffers is not None:
            # The receive completions above copied their bytes out: their
            # provided buffers go back to the kernel together.
            buffers.give_lent()

    def close(self) -> None:
        """Cancel and reap every op in flight, then release the ring.

        Ops that cannot be cancelled once started are waited for, up to
        ``DRAIN_TIMEOUT`` seconds; whatever the kernel still holds then is
        leaked (kept referenced for the life of the process), never freed.
        """
        if self._closed:
            return
        self._closed = True
        try:
            if self._ring.forked:
                # A child of fork(): the ops are the parent's, in the
                # parent's kernel context, which writes only into the
                # parent's memory. Nothing to cancel from here (the parent's
                # ring must not be touched); this process's copies of the
                # pins may simply go.
                self._ops.clear()
            else:
                self._drain_all()
        finally:
            drained = not self._ops
            if not drained:
                # The drain was interrupted (KeyboardInterrupt, an enter
                # error) or timed out: the kernel may still write into what
                # these ops pin, and into the provided buffers. Leaking them
                # is safe; freeing them is a use-after-free.
                _UNREAPED.append(self._ops)
            self._ops = {}
            self._native_by_fd.clear()
            self._readers.clear()
            self._writers.clear()
            self._ring.close(release_buffers=drained)
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
    # Internals
    # ------------------------------------------------------------------

    def _arm_wakeup(self) -> None:
        ring = self._ring
        ud = ring.next_user_data()
        op = Op(ud, _ops.WAKEUP, self._wakeup_fd, _POLL_ADD, None)
        op.index = ring.push_poll(self._wakeup_fd, _POLLIN, ud, POLL_ADD_MULTI)
        self._ops[ud] = op

    def _drain_wakeup(self) -> None:
        with contextlib.suppress(BlockingIOError, OSError):
            os.eventfd_read(self._wakeup_fd)

    def _drain_all(self) -> None:
        """Cancel everything the kernel holds and reap until nothing is left, or time is up.

        Wake nobody: the run is over. Each op gets its own ASYNC_CANCEL by
        user_data (5.5+, unlike CANCEL_ANY's 5.19), sent again every second
        while ops linger: an op the kernel cannot cancel once started (a
        disk read in flight) finishes on its own and is reaped then.

        A cancel answered ``-ENOENT`` proves the kernel holds no op with
        that user_data: it completed, and its CQE was reaped but never
        processed (a run abandoned between get_events and process_events,
        e.g. by an exception from a signal handler), or it never reached the
        kernel. Nothing of it is in flight, so its record is retired then.

        And the drain is bounded (``DRAIN_TIMEOUT``): what is still in the
        table after that is left to ``close()``, which leaks it for the life
        of the process rather than free memory the kernel may still write.
        """
        ring = self._ring
        ops = self._ops
        if not ops:
            return
        cancel_of: dict[int, int] = {}  # ASYNC_CANCEL's user_data -> its target's
        give_up = time.monotonic() + DRAIN_TIMEOUT
        rounds = 0
        while ops and time.monotonic() < give_up:
            if rounds % 20 == 0:
                for ud in [ud for ud, op in ops.items() if op.opcode != _ASYNC_CANCEL]:
                    cancel_of[self._queue_cancel(ud)] = ud
            rounds += 1
            ring.wait(0.05)
            uds, results, flags = ring.reap()
            for ud, res, cqe_flags in zip(uds, results, flags, strict=True):
                target = cancel_of.pop(ud, None)
                if target is not None:
                    # A cancel's answer (a successful one may post none:
                    # CQE_SKIP_SUCCESS). -ENOENT: its target is not in flight.
                    if res == -errno.ENOENT:
                        lost = ops.pop(target, None)
                        if lost is not None and lost.kind == _MULTISHOT:
                            lost.pins[1](-errno.ECANCELED, 0)
                    continue
                more = bool(cqe_flags & CQE_F_MORE)
                op = ops.get(ud) if more else ops.pop(ud, None)
                if op is None:
                    continue
                if op.kind == _MULTISHOT:
                    # A multishot CQE reaped at close still carries a result
                    # its consumer owns (an accepted fd): hand it over, so
                    # the consumer can close it rather than leak it.
                    op.pins[1](res, cqe_flags)
            if self._buffers is not None:
                self._buffers.give_lent()
