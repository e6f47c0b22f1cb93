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
from typing import TYPE_CHECKING, Any

from . import ops as _ops
from .inflight import InFlight
from .ops import Op

if TYPE_CHECKING:
    from collections.abc import Callable


class Multishot(InFlight):
    """The manager's multishot ops (see module doc)."""

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
