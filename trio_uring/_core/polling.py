"""Readiness on io_uring: ``wait_readable``, ``wait_writable``, ``notify_closing``.

Each wait is one one-shot ``IORING_OP_POLL_ADD``. A poll consumes nothing,
so cancelling one is instant: the task is released at once
(``Abort.SUCCEEDED``) and the kernel-side request is either turned into a
NOP (still in the SQ) or cancelled with ``IORING_OP_ASYNC_CANCEL``; its late
CQE is recognised and ignored. Unlike epoll there is no interest set to
keep in sync, so a stale fd can never make the loop spin: each poll fires
at most once.

io_uring reports ``POLLRDHUP`` to every poll, whatever was asked: a peer's
shutdown completes a ``POLLOUT`` request too. epoll would not wake a writer
for it, so such a completion is answered with a fresh poll, not a wakeup.
But ``POLLRDHUP`` stays set once the peer has shut down, and a fresh
one-shot poll would complete at once again, forever: the loop would spin.
So the fresh poll is a *multishot* one (``IORING_POLL_ADD_MULTI``): its
first CQE reports the state at arming (``POLLRDHUP`` again, ignored), and
after that it completes only on a new wakeup of the socket, such as room
in the send buffer. Once it wakes its writer it is cancelled.
"""

from __future__ import annotations

import copy
import os
import select
from typing import TYPE_CHECKING, Final

import trio

from . import ops as _ops
from .abi import CQE_F_MORE, OP
from .inflight import InFlight
from .ops import Op
from .parking import current_task, park, poll_abort, wake, wake_error

if TYPE_CHECKING:
    from trio.lowlevel import Task

    from .types import HasFileno

_POLL_ADD: Final = OP["POLL_ADD"]
_POLLIN: Final = select.POLLIN
_POLLOUT: Final = select.POLLOUT
# What wakes a waiter: what epoll would report for EPOLLIN / EPOLLOUT.
_WAKES_READER: Final = (
    select.POLLIN | select.POLLPRI | select.POLLERR | select.POLLHUP | select.POLLNVAL
    | select.POLLRDHUP
)  # fmt: skip
_WAKES_WRITER: Final = select.POLLOUT | select.POLLERR | select.POLLHUP | select.POLLNVAL
POLL_ADD_MULTI: Final = 1  # IORING_POLL_ADD_MULTI (5.13): the poll stays armed


def fileno(fd: int | HasFileno) -> int:
    """The fd number of ``fd``, refusing a negative one with ``select.epoll``'s words."""
    if not isinstance(fd, int):
        fd = fd.fileno()
    if fd < 0:
        # The same words select.epoll uses, so callers see one behaviour.
        raise ValueError(f"file descriptor cannot be a negative integer ({fd})")
    return fd


class Polling(InFlight):
    """The manager's readiness waits (see module doc)."""

    def _init_polling(self) -> None:
        self._readers: dict[int, Op] = {}
        self._writers: dict[int, Op] = {}

    async def wait_readable(self, fd: int | HasFileno) -> None:
        """Block until the kernel reports that ``fd`` is readable.

        ``fd`` is an integer file descriptor or an object with ``fileno()``.

        :raises trio.BusyResourceError: if another task already waits to read it.
        :raises trio.ClosedResourceError: if ``notify_closing`` is called on it meanwhile.
        """
        await self._poll_wait(fileno(fd), self._readers, _ops.POLL_READ, _POLLIN)

    async def wait_writable(self, fd: int | HasFileno) -> None:
        """Block until the kernel reports that ``fd`` is writable.

        :raises trio.BusyResourceError: if another task already waits to write it.
        :raises trio.ClosedResourceError: if ``notify_closing`` is called on it meanwhile.
        """
        await self._poll_wait(fileno(fd), self._writers, _ops.POLL_WRITE, _POLLOUT)

    async def _poll_wait(self, fd: int, waiters: dict[int, Op], kind: int, mask: int) -> None:
        if fd in waiters:
            raise trio.BusyResourceError("another task is already reading / writing this fd")
        ring = self._ring
        ud = ring.next_user_data()
        task = current_task()
        op = Op(ud, kind, fd, _POLL_ADD, task)
        op.index = ring.push_poll(fd, mask, ud)
        self._ops[ud] = op
        waiters[fd] = op
        # Parked on a wait of ours until woken (Trio clears it then): the
        # socket calls' one-waiter rule reads it (_sockets/base.py: _claim).
        task.custom_sleep_data = op
        await park(poll_abort(waiters, fd, self._orphan))

    def _complete_poll(self, op: Op, res: int, cqe_flags: int) -> None:
        """A poll's CQE (``process_events``): wake its task, or poll again."""
        task = op.task
        if task is None:
            return  # orphaned: its task was cancelled or closed out
        reading = op.kind == _ops.POLL_READ
        waiters = self._readers if reading else self._writers
        armed = cqe_flags & CQE_F_MORE
        if res >= 0 and not res & (_WAKES_READER if reading else _WAKES_WRITER):
            # Only bits epoll would not have reported (POLLRDHUP to a
            # writer): nothing to wake for. A multishot poll is still
            # armed; a one-shot one is replaced by a multishot one.
            if not armed:
                self._repoll(op, waiters)
            return
        op.task = None
        if waiters.get(op.fd) is op:
            del waiters[op.fd]
        if armed:
            self._orphan(op)  # the multishot re-poll has done its job
        if res < 0:
            wake_error(task, OSError(-res, os.strerror(-res)))
        else:
            wake(task)

    def _repoll(self, op: Op, waiters: dict[int, Op]) -> None:
        # Same task, same fd, a fresh multishot request (see the module
        # doc). The old record is retired (its final CQE just arrived); the
        # abort callback finds the new one in waiters.
        ring = self._ring
        ud = ring.next_user_data()
        new = Op(ud, op.kind, op.fd, _POLL_ADD, op.task)
        mask = _POLLIN if op.kind == _ops.POLL_READ else _POLLOUT
        new.index = ring.push_poll(op.fd, mask, ud, POLL_ADD_MULTI)
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
                wake_error(task, copy.copy(exc))
        self._cancel_native_on_fd(fd)
        self._close_polls_on_fd(fd)
        # SQPOLL: the caller closes the fd next, so every SQE naming it
        # must have been read by the poller first (see Ring.wait_consumed).
        self._ring.wait_consumed()
        if raise_at_end:
            raise exc
