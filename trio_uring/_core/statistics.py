"""``UringStatistics``: what ``trio.lowlevel.current_statistics().io_statistics`` reports."""

from __future__ import annotations

import attrs


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
    mode: str = "interrupt"
    """``"sqpoll"`` when a kernel thread submits (``Settings.mode``), else ``"interrupt"``."""
    sq_wakeups: int = 0
    """SQPOLL: submissions that found the kernel thread asleep and woke it
    (each one ``io_uring_enter``)."""
    backend: str = attrs.field(init=False, default="io_uring")
    """Always ``"io_uring"``."""

    @property
    def sqes_per_enter(self) -> float:
        """Average batch size: SQEs queued per ``io_uring_enter``."""
        return self.sqes_submitted / self.enter_calls if self.enter_calls else 0.0
