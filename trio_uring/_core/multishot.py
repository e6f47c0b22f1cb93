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
from .abi import CQE_F_MORE, OP
from .inflight import InFlight
from .ops import Op
from .parking import Waiter

if TYPE_CHECKING:
    from collections.abc import Callable

    from .bufring import BufferRing

_POLL_ADD: Final = OP["POLL_ADD"]
_RECV: Final = OP["RECV"]
_POLL_ADD_MULTI: Final = 1  # IORING_POLL_ADD_MULTI (5.13)

# The provided buffers multishot receives fill (see shim.c): 1024 of 4 KiB,
# 4 MiB of address space whose pages are touched only as data arrives. A
# receive completion is copied out and its buffer given back in the same
# tick (process_events), so buffers run short only when more than this
# many completions land between two ticks; the receive then ends with ENOBUFS, having taken
# nothing, and is armed again.
RECEIVE_BUFFERS: Final = 1024
RECEIVE_BUFFER_SIZE: Final = 4096


class Multishot(InFlight):
    """The manager's multishot ops (see module doc)."""

    def _init_multishot(self) -> None:
        # None until the first multishot receive asks; then True, or the
        # OSError that says why the kernel refused the buffer ring.
        self._receive_buffers: bool | OSError | None = None
        self._buffers: BufferRing | None = None
        # fd -> the waiters of poll_until on it, each woken with an error
        # by notify_closing (a poll holds the file, so closing the fd alone
        # would never complete it).
        self._polls_on_fd: dict[int, list[Callable[[BaseException], None]]] = {}

    def start_multishot(
        self,
        opcode: int,
        fd: int,
        pins: Any,
        consumer: Callable[[int, int], None],
        *,
        addr: int = 0,
        length: int = 0,
        off: int = 0,
        op_flags: int = 0,
        ioprio: int = 0,
    ) -> Op:
        """Queue a multishot op whose every CQE is handed to ``consumer(res, cqe_flags)``.

        No task waits on it: ``consumer`` runs on the Trio thread from
        ``process_events`` (and from ``close()``'s drain, where it must
        only release what the result owns, e.g. close an accepted fd or give
        back a provided buffer). ``cqe_flags`` lacks ``IORING_CQE_F_MORE`` on
        the op's final CQE; ``res`` is ``-errno`` on an error. ``pins`` live
        in the record until that final CQE.
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
            consumer(-errno.ECANCELED, 0)
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

        def consume(res: int, cqe_flags: int) -> None:
            more = cqe_flags & CQE_F_MORE
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

    def receive_buffers(self) -> bool:
        """Whether multishot receives can run here: the provided-buffer ring, set up once.

        Needs ``IORING_REGISTER_PBUF_RING`` (5.19) and multishot receives
        (6.0). When the kernel refuses (an older kernel, ``ENOMEM`` from
        ``RLIMIT_MEMLOCK`` for the ring's pinned pages), the reason is kept
        in ``receive_buffers_error`` and native sockets receive without
        receiving ahead, as before.
        """
        state = self._receive_buffers
        if state is None:
            if _RECV not in self.opcodes or not _kernel_has_multishot_recv():
                state = OSError(errno.ENOSYS, "multishot receives need Linux 6.0")
            else:
                try:
                    # Here, not at the top: bufring loads the C extension, and
                    # `import trio_uring` must work (and say why) without it.
                    from .bufring import BufferRing

                    self._buffers = BufferRing(self._ring, RECEIVE_BUFFERS, RECEIVE_BUFFER_SIZE)
                    state = True
                except OSError as exc:
                    state = exc
            self._receive_buffers = state
        return state is True

    @property
    def receive_buffers_error(self) -> OSError | None:
        """Why multishot receives are off in this run (None if they are on, or not tried yet)."""
        state = self._receive_buffers
        return state if isinstance(state, OSError) else None

    def start_recv_multishot(self, fd: int, consumer: Callable[[int, int], None]) -> Op:
        """Arm a multishot ``IORING_OP_RECV`` into the provided buffers; CQEs go to ``consumer``.

        Only after ``receive_buffers()`` said yes. Each data CQE carries
        ``IORING_CQE_F_BUFFER`` and the buffer id in its upper 16 bits: the
        consumer copies the data out at once (``BufferRing.take``) and
        ``process_events`` gives the tick's buffers back when it is done, so
        no buffer is ever held by a socket.
        """
        ring = self._ring
        ud = ring.next_user_data()
        op = Op(ud, _ops.MULTISHOT, fd, _RECV, None)
        op.pins = (None, consumer)
        op.index = ring.push_recv_multishot(fd, ud)
        self._ops[ud] = op
        return op


def _kernel_has_multishot_recv() -> bool:
    try:
        major, minor = os.uname().release.split(".")[:2]
        return (int(major), int(minor.split("-")[0])) >= (6, 0)
    except ValueError:
        return False
