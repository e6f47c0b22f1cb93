"""The state every job of the manager shares: the ring, the op table, the counters.

``UringIOManager`` is put together from one class per job (``polling.py``,
``native.py``, ``multishot.py``, and ``manager.py`` for Trio's contract
itself). Each of them subclasses ``InFlight``, which owns what they all
touch:

* ``_ring``: the io_uring instance (``ring.py``);
* ``_ops``: ``user_data -> Op`` for every SQE whose final CQE has not
  arrived. An op's record, with its pins, leaves this table only when that
  CQE is processed (or, for the drain at close, reaped): this table is what
  keeps memory alive while the kernel may touch it.
* the cancellation counters, and the two ways to make the kernel drop an
  op: ``_queue_cancel`` (``IORING_OP_ASYNC_CANCEL`` by ``user_data``, with
  no record of its own) and
  ``_orphan`` (nobody waits any more: NOP it if still queued, else cancel).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .ops import Op

if TYPE_CHECKING:
    from .ring import Ring
    from .settings import Settings


class InFlight:
    """The ring, the table of ops in flight, and the counters (see module doc)."""

    _ring: Ring
    _settings: Settings
    _closed: bool
    opcodes: frozenset[int]

    def _init_in_flight(self) -> None:
        self._ops: dict[int, Op] = {}
        self._cancels_requested = 0
        self._cancels_lost = 0
        self._timeouts_armed = 0
        self._timeouts_fired = 0
        self._resubmitted = 0

    def _orphan(self, op: Op) -> None:
        """Nobody waits for ``op`` any more; make the kernel drop it soon."""
        op.task = None
        if not self._ring.neutralize(op.index, op.user_data):
            self._queue_cancel(op.user_data)

    def _queue_cancel(self, target_ud: int) -> int:
        """Queue an ``ASYNC_CANCEL`` of ``target_ud``; return the cancel's own ``user_data``.

        The cancel pins nothing (its target is a number in the SQE), so it
        needs no record: its CQE finds none and is dropped. (The drain at
        close, which reads the cancels' answers, records its own.)
        """
        ring = self._ring
        ud = ring._ud_base | next(ring._ud_counter)
        ring.push_cancel(target_ud, ud)
        return ud

    def _request_cancel(self, op: Op) -> None:
        """A Trio cancel of a task parked on native ``op``: ask the kernel (counted)."""
        self._cancels_requested += 1
        self._queue_cancel(op.user_data)

    # Hooks the manager's process_events calls, by op kind; each job's class
    # defines its own.
    def _complete_poll(self, op: Op, res: int, cqe_flags: int) -> None:
        raise NotImplementedError

    def _complete_native(self, op: Op, res: int) -> None:
        raise NotImplementedError

    def _cancel_native_on_fd(self, fd: int) -> None:
        raise NotImplementedError

    def _close_polls_on_fd(self, fd: int) -> None:
        raise NotImplementedError
