"""The provided-buffer ring: receive buffers the kernel picks from, and we give back.

A multishot receive cannot name a buffer in its SQE: it will complete many
times, and each time the kernel takes the next free buffer from a *buffer
ring* we registered (``IORING_REGISTER_PBUF_RING``, 5.19) and reports its
id in the CQE's flags (``IORING_CQE_F_BUFFER``, the id in the upper 16
bits). The ring is shared memory like the SQ: giving a buffer back is a
store and a tail bump, no system call. The C shim (``tu_pbuf_*``) owns the
memory; this class is its Python face on one ``Ring``, which releases it
when it closes (or, after a close that could not see every receive end,
leaves it mapped for the life of the process).

Buffers are never held by a socket: ``take`` copies the bytes into a new
``bytes`` at once (a slice of ``memory``, the buffers' memory as one Python
buffer: no cffi call per completion) and notes the buffer in ``lent``;
``process_events`` gives every buffer of its tick back in one call
(``give_lent``) when it is done with the tick's completions. So no socket
can hold a buffer and starve the others, and a buffer goes back to the
kernel only after its bytes were copied out.

``memory`` is valid while the ring's buffers are mapped: only the
manager's dispatch, on a live ring, slices it.
"""

from __future__ import annotations

import errno
import os
import resource
from typing import Final

from .ring import Ring, enter_error, ffi, lib

_EOWNERDEAD: Final = errno.EOWNERDEAD


class BufferRing:
    """``entries`` provided buffers of ``size`` bytes, registered on ``ring`` as ``group``."""

    __slots__ = ("entries", "group", "lent", "memory", "ring", "size")

    def __init__(self, ring: Ring, entries: int, size: int, group: int = 0) -> None:
        """Register the buffers on ``ring``; they live until the ring closes.

        :raises OSError: the kernel refused (``EINVAL`` before 5.19; ``ENOMEM``
            when the pinned ring pages exceed ``RLIMIT_MEMLOCK``).
        :raises RingForkedError: this process is a child of the ring's owner.
        """
        ret = lib.tu_pbuf_setup(ring._ring, entries, size, group)
        if ret < 0:
            if ret == -_EOWNERDEAD:
                raise enter_error(ret)
            message = f"io_uring_register(PBUF_RING): {os.strerror(-ret)}"
            if ret == -errno.ENOMEM:  # name the usual cause, as availability does for the ring
                soft = resource.getrlimit(resource.RLIMIT_MEMLOCK)[0]
                limit = "unlimited" if soft == resource.RLIM_INFINITY else f"{soft} bytes"
                message += f" (its pinned pages are charged to RLIMIT_MEMLOCK, now {limit})"
            raise OSError(-ret, message)
        self.ring = ring
        self.entries = entries
        self.size = size
        self.group = group
        self.memory = ffi.buffer(lib.tu_pbuf_addr(ring._ring, 0), entries * size)
        # Buffers copied out and not yet given back (the same list for the
        # ring's life: ReceiveAhead binds it once).
        self.lent: list[int] = []

    def take(self, bid: int, nbytes: int) -> bytes:
        """The ``nbytes`` a completion put in buffer ``bid`` (it goes back with ``give_lent``)."""
        start = bid * self.size
        data: bytes = self.memory[start : start + nbytes]
        self.lent.append(bid)
        return data

    def give_lent(self) -> None:
        """Give back every buffer ``take`` copied out since the last call (one C call)."""
        lent = self.lent
        if lent:
            lib.tu_pbuf_give_many(self.ring._ring, lent, len(lent))
            lent.clear()
