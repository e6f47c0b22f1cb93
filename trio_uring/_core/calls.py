"""One native op on behalf of a caller: ``perform`` with the stdlib's habits.

``UringIOManager.perform`` runs an op and returns its raw ``res``. The
primitives (files, paths) and ``trio_uring.lowlevel`` all want the same
three things around it, which live here once:

* **PEP 475**: the stdlib retries a call a signal interrupted, so an op
  that came back ``-EINTR`` is submitted again (it did nothing: a cancel of
  ours never comes back as ``-EINTR``, the manager raises ``Cancelled`` for
  it). Ops that must not be redone (``close``, ``connect``) say so.
* **Buffer exports dropped** once the kernel is done: however ``perform``
  ended, a parked task is only released by its op's CQE (or at once when the
  SQE was still ours to turn into a NOP), so the ``Pinned`` buffers in the
  pins can be released in a ``finally``.
* **The stdlib's exception** for ``-errno``: ``OSError``'s constructor picks
  the subclass (``FileNotFoundError``...), with the file names in the
  stdlib's form.
"""

from __future__ import annotations

import errno
import os
from typing import TYPE_CHECKING, Any

from .args import Pinned
from .structs import lib

if TYPE_CHECKING:
    from .manager import UringIOManager

_EINTR = -errno.EINTR


def error(res: int, *filenames: Any) -> OSError:
    """The OSError (subclass chosen by errno) the stdlib raises for ``-res``."""
    code = -res
    if len(filenames) == 2:
        # os.rename's form: both names, "src -> dst".
        return OSError(code, os.strerror(code), filenames[0], None, filenames[1])
    if filenames:
        return OSError(code, os.strerror(code), filenames[0])
    return OSError(code, os.strerror(code))


async def call(
    manager: UringIOManager,
    opcode: int,
    fd: int,
    pins: Any,
    addr: int = 0,
    length: int = 0,
    off: int = 0,
    op_flags: int = 0,
    splice_fd_in: int = 0,
    *,
    retry_eintr: bool = True,
    resubmittable: bool = True,
) -> int:
    """``manager.perform`` retried on ``-EINTR``; every ``Pinned`` in ``pins`` released after.

    ``retry_eintr=False`` and ``resubmittable=False`` are for ops that must
    not be done twice (``close``; ``connect``, see ``UringIOManager.perform``).
    """
    try:
        while True:
            res = await manager.perform(opcode, fd, pins, addr, length, off, op_flags, 0, 0,
                                        splice_fd_in, resubmittable=resubmittable)  # fmt: skip
            if res != _EINTR or not retry_eintr:
                return res
    finally:
        release_pins(pins)


def release_pins(pins: Any) -> None:
    """Drop the buffer export of every ``Pinned`` in ``pins`` (nested tuples and lists)."""
    # The common shapes first (every op pays for this): nothing pinned, a
    # private C buffer, or exactly one Pinned's own pins() tuple (the view
    # check tells it from a hand-built tuple that could hold more Pinneds).
    if (type(pins) is tuple and len(pins) == 4 and type(pins[3]) is Pinned
            and pins[3].view is pins[1]):  # fmt: skip
        pins[3].release()
        return
    if not isinstance(pins, (tuple, list, Pinned)):
        return
    stack = [pins]
    while stack:
        item = stack.pop()
        if isinstance(item, (tuple, list)):
            stack.extend(item)
        elif isinstance(item, Pinned):
            item.release()


def socket_family(fd: int) -> int:
    """The address family of socket ``fd`` (``SO_DOMAIN``), without wrapping the fd."""
    domain = int(lib.tu_ll_socket_domain(fd))
    if domain < 0:
        raise error(domain)  # EBADF, ENOTSOCK: what connect(2) itself would say
    return domain
