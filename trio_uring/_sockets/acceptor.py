"""One multishot accept on a listening socket, and the connections it accepted."""

from __future__ import annotations

import errno
import os
from collections import deque
from typing import TYPE_CHECKING, Any, Final

import trio

from .._core.abi import CQE_F_MORE, OP
from .._core.parking import Waiter
from . import ops
from .counts import COUNTS

if TYPE_CHECKING:
    from .._core.manager import UringIOManager

_ACCEPT: Final = OP["ACCEPT"]
_IORING_ACCEPT_MULTISHOT: Final = 1  # sqe->ioprio flag, Linux 5.19
# Connections the kernel may accept ahead of the program before we pause
# the multishot accept (the kernel's own listen queue takes over then).
ACCEPT_BACKLOG_LIMIT: Final = 128


class Acceptor:
    """One multishot accept on a listening socket, and the connections it accepted.

    The kernel accepts each incoming connection and posts its fd in a CQE;
    the manager hands each CQE to ``consume``. The fds wait in ``backlog``
    until ``accept()`` takes them. This object owns them: closing the
    listener (or the run ending) closes every fd not yet handed out, and a
    CQE that arrives after that is closed on arrival. So no accepted
    connection is ever leaked, and none is left established with nobody to
    serve it.
    """

    def __init__(self, mgr: UringIOManager, fd: int) -> None:
        self.mgr = mgr
        self.fd = fd
        self.backlog: deque[int] = deque()
        self.op: Any = None
        self.error = 0
        self.waiter = Waiter()
        self.closed = False

    def consume(self, res: int, cqe_flags: int) -> None:
        """Called by the manager for each CQE of the multishot op."""
        if not cqe_flags & CQE_F_MORE:
            self.op = None
        if res >= 0:
            if self.closed:
                os.close(res)
                return
            self.backlog.append(res)
            if len(self.backlog) >= ACCEPT_BACKLOG_LIMIT and self.op is not None:
                # Nobody is taking them: stop accepting ahead of the program.
                self.mgr.cancel_multishot(self.op)
        elif res != -errno.ECANCELED:
            self.error = res  # EMFILE and friends: the next accept() raises it
        self.waiter.wake()

    def arm(self) -> None:
        """Start the multishot accept unless it is running."""
        if self.op is None and not self.closed:
            COUNTS["multishot_armed"] += 1
            self.op = self.mgr.start_multishot(
                _ACCEPT, self.fd, None, self.consume,
                op_flags=ops.ACCEPT_FLAGS, ioprio=_IORING_ACCEPT_MULTISHOT,
            )  # fmt: skip

    async def wait(self) -> None:
        """Park until a connection or an error arrives. Cancelling it consumes nothing."""
        await self.waiter.wait()

    def close(self) -> None:
        """Stop accepting, close every connection not handed out, wake the waiter."""
        if self.closed:
            return
        self.closed = True
        if self.op is not None:
            self.mgr.cancel_multishot(self.op)
        while self.backlog:
            os.close(self.backlog.popleft())
        self.waiter.fail(trio.ClosedResourceError("another task closed this fd"))

    def __del__(self) -> None:
        # The listener was dropped without close(): its connections go too.
        while getattr(self, "backlog", None):
            os.close(self.backlog.popleft())
