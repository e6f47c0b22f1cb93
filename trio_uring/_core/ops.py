"""Op records: what the manager remembers about every SQE until its CQE.

The life of an op (the same state machine tokio-uring uses to make dropping
a future safe makes a Trio cancel safe here)::

    QUEUED ──enter──▶ IN_KERNEL ──CQE──▶ (removed: result delivered, pins released)
       │                  │
       │ abort            │ abort: ASYNC_CANCEL queued, task stays parked
       ▼                  ▼
    NOP'd (task freed)  CANCELLING ──CQE──▶ result wins, or Cancelled
                          │
                          │ task gone (poll abort, notify_closing, close)
                          ▼
                       ORPHANED ──CQE──▶ (removed; pins released only now)

The record, not the task, owns ``pins``: every object whose memory the kernel
may read or write (buffers, iovec arrays, sockaddrs, timespecs, path bytes).
It stays in the manager's table until the op's own CQE arrives, whatever
happened to the task, so the kernel never touches freed memory.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from trio.lowlevel import Task

# What kind of op: decides how process_events treats its CQE.
POLL_READ: Final = 0  # wait_readable
POLL_WRITE: Final = 1  # wait_writable
NATIVE: Final = 2  # a native operation whose result a task awaits
WAKEUP: Final = 3  # multishot poll on the manager's eventfd
INTERNAL: Final = 4  # ASYNC_CANCEL, LINK_TIMEOUT: nobody waits on these
MULTISHOT: Final = 5  # one SQE, many CQEs, each handed to a consumer callback

KIND_NAMES: Final = {
    POLL_READ: "poll-read",
    POLL_WRITE: "poll-write",
    NATIVE: "native",
    WAKEUP: "wakeup",
    INTERNAL: "internal",
    MULTISHOT: "multishot",
}


class Op:
    """One submitted SQE, from queueing until its (final) CQE."""

    __slots__ = (
        "cancel_requested",
        "fd",
        "index",
        "kind",
        "linked",
        "neutralized",
        "opcode",
        "parked",
        "pins",
        "raise_cancel",
        "result",
        "task",
        "user_data",
    )

    def __init__(self, user_data: int, kind: int, fd: int, opcode: int, task: Task | None) -> None:
        self.user_data = user_data
        self.kind = kind
        self.fd = fd
        self.opcode = opcode
        # The parked task, or None once nobody waits for the result.
        self.task = task
        # The SQ index it was queued at: lets an abort turn it into a NOP
        # while the kernel has not yet seen it.
        self.index = -1
        # Everything the kernel may touch. Dropped only with the record.
        self.pins: Any = None
        # Set by the abort callback: how to raise Cancelled when the
        # kernel confirms the cancel.
        self.raise_cancel: Callable[[], Any] | None = None
        self.cancel_requested = False
        # Set when notify_closing turned the still-queued SQE into a NOP.
        self.neutralized = False
        # The LINK_TIMEOUT op paired with this one, if any.
        self.linked: Op | None = None
        # False while the task that awaits the result is not parked on it
        # but passing a checkpoint (see native.py, "The checkpoint is the
        # submission point"): the CQE then leaves its res in ``result``
        # instead of waking the task.
        self.parked = True
        self.result: int | None = None

    def __repr__(self) -> str:
        state = "waited" if self.task is not None else "orphaned"
        return (
            f"<Op {KIND_NAMES.get(self.kind, self.kind)} op={self.opcode} fd={self.fd} "
            f"ud={self.user_data:#x} {state}>"
        )
