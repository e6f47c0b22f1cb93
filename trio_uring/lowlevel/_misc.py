"""``trio_uring.lowlevel``'s other ops: readiness, a no-op round trip, cancelling by fd."""

from __future__ import annotations

import errno
import os
import select
from typing import TYPE_CHECKING, Final

from .._core import args as _args
from .._core import structs as _st
from .._core.abi import OP
from .._core.calls import call, error
from .._core.statistics import UringStatistics
from ._common import manager, require

if TYPE_CHECKING:
    from ._common import FileDescriptor

_NOP: Final = OP["NOP"]
_POLL_ADD: Final = OP["POLL_ADD"]
_ASYNC_CANCEL: Final = OP["ASYNC_CANCEL"]
_ALWAYS_REPORTED: Final = select.POLLERR | select.POLLHUP | select.POLLNVAL


async def poll(fd: FileDescriptor, events: int) -> int:
    """Wait until ``fd`` has one of ``events`` (``select.POLL*`` bits); return its revents.

    ``IORING_OP_POLL_ADD`` (one-shot), Linux 5.1. As with poll(2),
    ``POLLERR``, ``POLLHUP`` and ``POLLNVAL`` are reported even when not
    asked for; other bits the kernel adds unasked (io_uring reports
    ``POLLRDHUP`` to any request) are masked off, and a wakeup with nothing
    left is waited out, on a multishot poll (Linux 5.13+), so that such a
    bit, which stays set, cannot make the wait spin.

    :raises OSError: ``EBADF`` for an fd that is not open (where
        ``select.poll`` would report ``POLLNVAL``).
    """
    mgr = require("poll", _POLL_ADD)
    fdn = _args.fileno(fd)
    mask = _args.u32(events, "events")
    res = await call(mgr, _POLL_ADD, fdn, None, op_flags=mask)
    if res < 0:
        raise error(res)
    wanted = res & (mask | _ALWAYS_REPORTED)
    if wanted:
        return wanted
    # Only bits nobody asked for (POLLRDHUP stays set once the peer shut
    # down): a one-shot poll again would complete at once, forever.
    return await mgr.poll_until(fdn, mask, mask | _ALWAYS_REPORTED)


async def nop() -> None:
    """Submit a no-op and wait for its completion: a round trip through the ring.

    ``IORING_OP_NOP``, Linux 5.1. A checkpoint, like ``trio.lowlevel.checkpoint``.
    """
    manager = require("nop", _NOP)
    res = await call(manager, _NOP, -1, None)
    if res < 0:
        raise error(res)


async def cancel_fd(fd: FileDescriptor) -> int:
    """Cancel every io_uring op in flight on ``fd``; return how many were cancelled.

    ``IORING_OP_ASYNC_CANCEL`` with ``IORING_ASYNC_CANCEL_FD |
    IORING_ASYNC_CANCEL_ALL``, Linux 5.19. The tasks whose ops were
    cancelled get ``OSError(ECANCELED)`` (waiters in ``wait_readable`` too);
    an op whose result had already won keeps it. The fd stays open.

    :raises OSError: ``EINVAL`` on a kernel older than 5.19 (which does not
        know these flags).
    """
    manager = require("cancel_fd", _ASYNC_CANCEL)
    fdn = _args.fileno(fd)
    flags = _st.IORING_ASYNC_CANCEL_FD | _st.IORING_ASYNC_CANCEL_ALL
    res = await call(manager, _ASYNC_CANCEL, fdn, None, op_flags=flags)
    if res == -errno.ENOENT:
        return 0  # nothing matched (5.19 kernels said so; newer ones answer 0)
    if res == -errno.EINVAL:
        raise OSError(
            errno.EINVAL,
            f"{os.strerror(errno.EINVAL)}: IORING_ASYNC_CANCEL_FD needs Linux 5.19+",
        )
    if res < 0:
        raise error(res)
    return res


def statistics() -> UringStatistics:
    """The running io_uring manager's counters (as ``current_statistics().io_statistics``).

    :raises RuntimeError: outside a run on io_uring.
    """
    return manager("statistics").statistics()
