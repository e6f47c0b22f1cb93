"""Receiving ahead: one multishot receive per stream socket, and the bytes it brought.

Why
---

On a busy server almost every ``recv`` finds its data already there, so
the call is a system call of its own (``recv(2)``), plus the scheduler trip
every Trio call makes anyway. On io_uring the kernel can receive for us: one
``IORING_OP_RECV`` with ``IORING_RECV_MULTISHOT`` stays armed and posts a
completion for every chunk that arrives, into a buffer it takes from the
ring's provided buffers (``_core/multishot.py``, ``shim.c``). The tick's one
``io_uring_enter`` reaps those completions for every socket at once, and a
``recv`` finds its bytes queued here: no system call of its own.

How
---

* ``consume`` (run from ``process_events``) copies each chunk out of its
  provided buffer into a ``bytes`` at once, and the buffer goes back when
  the tick's completions are done (``BufferRing.give_lent``), so no
  buffer is ever held by a socket, closed or not, and one busy task cannot
  starve the other sockets of buffers. EOF (a completion of 0 bytes) and
  errors are queued in order behind the data.
* ``recv`` takes from the queue (several chunks joined up to its size, as
  ``recv(2)`` returns what is there), and parks on a ``Waiter`` when it is
  empty. A cancelled wait consumes nothing: the bytes stay queued for the
  next call, so nothing is lost or reordered.
* The multishot receive ends by itself on EOF, on an error, and with
  ``-ENOBUFS`` when the provided buffers ran out between two ticks (it
  then received nothing); it is armed again when a receive needs it.
* **Bounded**: past ``LIMIT`` queued bytes the multishot receive is
  cancelled, so the socket's own kernel buffer fills and TCP's flow control
  reaches the sender; it is armed again once the program has taken the
  queue below half of that.
* **Bulk streams** take another path: a chunk that filled its whole buffer
  with much already queued means data is streaming in faster than it is
  read, and 4 KiB completions would cost more Python than they save
  system calls. The socket then stops receiving ahead and its receives
  wait for readiness and call ``recv(2)`` into the bytes they return
  (``receiving.py``), until a receive is small again.
* Any other receive call (``recv`` with flags, ``recv_into``, ``recvfrom``,
  ``recvmsg``...) first stops receiving ahead (``stop``: cancel, and wait
  for the final completion, so that nothing more is queued), then takes
  what is queued, and only then asks the kernel.
"""

from __future__ import annotations

import errno
import os
from collections import deque
from typing import TYPE_CHECKING, Final

import trio

from .._core.abi import CQE_BUFFER_SHIFT, CQE_F_BUFFER, CQE_F_MORE
from .._core.parking import Waiter
from .counts import COUNTS

if TYPE_CHECKING:
    from .._core.manager import UringIOManager
    from .._core.ops import Op

# What one socket may hold queued before it stops receiving ahead.
LIMIT: Final = 256 * 1024
# A full buffer with at least this much queued: a bulk stream.
BULK_QUEUED: Final = 64 * 1024
_ENOBUFS: Final = -errno.ENOBUFS
_ECANCELED: Final = -errno.ECANCELED


class ReceiveAhead:
    """The receive-ahead state of one stream socket (see module doc)."""

    __slots__ = (
        "buffer_size",
        "bulk",
        "chunks",
        "closed",
        "error",
        "fd",
        "lent",
        "memory",
        "mgr",
        "op",
        "paused",
        "queued",
        "retired",
        "stopping",
        "waiter",
    )

    def __init__(self, mgr: UringIOManager, fd: int) -> None:
        self.mgr = mgr
        self.fd = fd
        # Made only after mgr.receive_buffers() said yes. BufferRing.take,
        # written out in consume (it runs for every chunk received): the
        # buffers' memory and the list of buffers to give back, bound once.
        buffers = mgr._buffers
        assert buffers is not None
        self.memory = buffers.memory
        self.lent = buffers.lent
        self.buffer_size = buffers.size
        self.chunks: deque[bytes] = deque()
        self.queued = 0  # bytes in chunks
        self.op: Op | None = None  # the armed multishot receive
        self.error = 0  # a -errno queued behind the data; 1 for EOF
        self.waiter = Waiter()
        self.paused = False  # stopped at LIMIT, until the queue drains
        self.bulk = False  # stopped for a bulk stream (see module doc)
        self.stopping = False  # stop() waits for the final completion
        self.retired = False  # another receive call came: never again
        self.closed = False

    # -- from process_events ------------------------------------------------

    def consume(self, res: int, cqe_flags: int) -> None:
        """One completion of the multishot receive."""
        if not cqe_flags & CQE_F_MORE:
            self.op = None
        if cqe_flags & CQE_F_BUFFER:
            bid = cqe_flags >> CQE_BUFFER_SHIFT
            start = bid * self.buffer_size
            data = self.memory[start : start + res]
            self.lent.append(bid)  # given back at the end of the tick
            if self.closed:
                return
            self.chunks.append(data)
            self.queued += res
            COUNTS["ahead_chunks"] += 1
            if self.op is not None and not self.stopping:
                if self.queued >= LIMIT:
                    self.paused = True
                    self.mgr.cancel_multishot(self.op)
                elif res >= self.buffer_size and self.queued >= BULK_QUEUED:
                    self.bulk = True
                    self.mgr.cancel_multishot(self.op)
        elif res == 0:
            if not self.error:
                self.error = 1  # EOF: after the queued data, every receive is b""
        elif res < 0 and res != _ENOBUFS and res != _ECANCELED and not self.error:
            self.error = res
        if self.waiter.task is not None:
            self.waiter.wake()

    # -- from the receiving task --------------------------------------------

    def arm(self) -> None:
        """Start the multishot receive unless it runs, or may not run now."""
        if (
            self.op is None
            and not self.error
            and not self.closed
            and not self.paused
            and not self.bulk
            and not self.stopping
            and not self.retired
        ):
            COUNTS["ahead_armed"] += 1
            self.op = self.mgr.start_recv_multishot(self.fd, self.consume)

    def take(self, nbytes: int) -> bytes:
        """Up to ``nbytes`` queued bytes, oldest first (``nbytes`` > 0, the queue not empty)."""
        chunks = self.chunks
        first = chunks[0]
        if len(chunks) == 1 and len(first) <= nbytes:
            # The common case on a request/response stream: one chunk, all of it.
            chunks.clear()
            self.queued -= len(first)
            if self.paused and self.queued <= LIMIT // 2:
                self.paused = False
            return first
        if len(first) >= nbytes:
            if len(first) == nbytes:
                chunks.popleft()
                data = first
            else:
                data = first[:nbytes]
                chunks[0] = first[nbytes:]
        else:
            parts = [chunks.popleft()]
            size = len(first)
            while chunks and size < nbytes:
                part = chunks[0]
                if size + len(part) <= nbytes:
                    parts.append(chunks.popleft())
                    size += len(part)
                else:
                    parts.append(part[: nbytes - size])
                    chunks[0] = part[nbytes - size :]
                    size = nbytes
            data = b"".join(parts)
        self.queued -= len(data)
        if self.paused and self.queued <= LIMIT // 2:
            self.paused = False
        return data

    def take_into(self, view: memoryview) -> int:
        """Copy queued bytes into ``view`` (a flat byte view); return how many."""
        data = self.take(len(view))
        view[: len(data)] = data
        return len(data)

    async def wait(self) -> None:
        """Park until something is queued (data, EOF or an error). Cancelling consumes nothing."""
        await self.waiter.wait()

    async def stop(self) -> None:
        """Stop receiving ahead and wait until nothing more can be queued."""
        self.stopping = True
        try:
            while self.op is not None:
                self.mgr.cancel_multishot(self.op)
                await self.waiter.wait()
        finally:
            self.stopping = False

    def close(self) -> None:
        """The socket closes: cancel the receive, drop what is queued, wake the waiter."""
        self.closed = self.retired = True
        self.chunks.clear()
        self.queued = 0
        if self.op is not None and not self.mgr._closed:
            self.mgr.cancel_multishot(self.op)
        self.waiter.fail(trio.ClosedResourceError("another task closed this fd"))

    def raise_queued_error(self) -> None:
        """Raise the error queued behind the data (once, then EOF), as ``recv(2)`` would."""
        err, self.error = self.error, 1
        raise OSError(-err, os.strerror(-err))
