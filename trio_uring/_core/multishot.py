"""Multishot native ops: one SQE, many CQEs, each handed to a consumer.

``IORING_ACCEPT_MULTISHOT`` (and, later, multishot receives) keep
completing while no task waits: the kernel posts a CQE per result with
``IORING_CQE_F_MORE`` set while more will follow. No task parks on such an
op; its consumer runs on the Trio thread from ``process_events`` and queues
the result for whoever asks (see ``_sockets/acceptor.py``), waking a
``parking.Waiter``. The record, with its pins, stays in the table until the
CQE without ``F_MORE``.
"""

from __future__ import annotations

import errno
import os
from typing import TYPE_CHECKING, Any, Final

import trio

from . import ops as _ops
from .abi import OP
from .inflight import InFlight
from .ops import Op
from .parking import Waiter

if TYPE_CHECKING:
    from collections.abc import Callable

_POLL_ADD: Final = OP["POLL_ADD"]
_POLL_ADD_MULTI: Final = 1  # IORING_POLL_ADD_MULTI (5.13)


class Multishot(InFlight):
    """The manager's multishot ops (see module doc)."""

    def _init_multishot(self) -> None:
        # fd -> the waiters of poll_until on it, each woken with an error
        # by notify_closing (a poll holds the file, so closing the fd alone
        # would never complete it).
        self._polls_on_fd: dict[int, list[Callable[[BaseException], None]]] = {}

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

    async def poll_until(self, fd: int, mask: int, wanted: int) -> int:
        """Wait until a poll of ``fd`` for ``mask`` reports a bit of ``wanted``; return those bits.

        For a wait whose one-shot poll completed with only bits nobody asked
        for (``POLLRDHUP``, which io_uring reports to every poll and which
        stays set): a multishot poll reports the state at arming once, then
        only new wakeups, so it never spins. Cancelling the wait cancels the
        poll (a poll consumes nothing). ``notify_closing`` on ``fd`` ends it
        with ``trio.ClosedResourceError``; a failed poll raises ``OSError``.
        """
        waiter = Waiter()
        outcome: list[int | BaseException] = []
        current: list[Op] = []

        def consume(res: int, more: bool) -> None:
            if not more:
                current.clear()
            if outcome:
                return
            if (res >= 0 and res & wanted) or (res < 0 and res != -errno.ECANCELED):
                outcome.append(res)
                waiter.wake()
            elif not more and not self._closed:
                arm()  # ended with nothing we want (CQ overflow ends multishots): again

        def closing(exc: BaseException) -> None:
            if not outcome:
                outcome.append(exc)
                waiter.wake()

        def arm() -> None:
            current.append(self.start_multishot(
                _POLL_ADD, fd, None, consume, length=_POLL_ADD_MULTI, op_flags=mask
            ))  # fmt: skip

        hooks = self._polls_on_fd.setdefault(fd, [])
        hooks.append(closing)
        arm()
        try:
            while not outcome:
                await waiter.wait()
        finally:
            hooks.remove(closing)
            if not hooks:
                del self._polls_on_fd[fd]
            for op in current:
                self.cancel_multishot(op)
        result = outcome[0]
        if isinstance(result, BaseException):
            raise result
        if result < 0:
            raise OSError(-result, os.strerror(-result))
        return result & wanted

    def _close_polls_on_fd(self, fd: int) -> None:
        """``notify_closing``: every ``poll_until`` on ``fd`` ends with ``ClosedResourceError``."""
        for closing in list(self._polls_on_fd.get(fd, ())):
            closing(trio.ClosedResourceError("another task closed this fd"))
