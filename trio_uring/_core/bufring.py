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

Buffers are never lent out: ``take`` copies the bytes into a new ``bytes``
and gives the buffer back in the same call, so no socket can hold a
buffer and starve the others.
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

    __slots__ = ("entries", "group", "ring", "size")

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

    def take(self, bid: int, nbytes: int) -> bytes:
        """The ``nbytes`` a completion put in buffer ``bid``; the buffer goes back."""
        c_ring = self.ring._ring
        data: bytes = ffi.unpack(lib.tu_pbuf_addr(c_ring, bid), nbytes)
        lib.tu_pbuf_give(c_ring, bid)
        return data

    def give(self, bid: int) -> None:
        """Give buffer ``bid`` back without reading it."""
        lib.tu_pbuf_give(self.ring._ring, bid)
