"""Native io_uring operations on raw file descriptors, as async functions.

Each function here is one io_uring opcode, shaped like the ``os`` or
``socket`` call it replaces (same arguments where they exist, same return
value, same exceptions), that suspends only the calling task::

    import trio_uring
    from trio_uring import lowlevel

    async def main() -> None:
        fd = await lowlevel.openat("/etc/hostname", os.O_RDONLY)
        try:
            print(await lowlevel.read(fd, 4096))
        finally:
            await lowlevel.close(fd)

    trio_uring.run(main)

They need a run on io_uring (``trio_uring.run``, or any run after
``trio_uring.install()``); on stock Trio or a fallback run they raise
``RuntimeError``. Each docstring names the Linux version that added the
opcode; on an older kernel the call raises ``NotImplementedError`` (the
ring's probe decides, before anything is submitted).

Cancellation follows the op core (``UringIOManager.perform``): a task
already cancelled submits nothing; otherwise the cancel is a request to the
kernel and **the result wins**: if the kernel finished the op first, the
call returns its result (the bytes read, the accepted fd) and the
``Cancelled`` arrives at the task's next checkpoint. Every buffer, iovec,
sockaddr, msghdr and path the kernel may touch stays referenced by the op
record until the op's own completion, whatever happens to the task. See
``docs/lowlevel.md``.
"""

from __future__ import annotations

from ._common import KERNEL_MINIMUM
from ._fs import (
    close,
    fallocate,
    fdatasync,
    fsync,
    mkdirat,
    openat,
    read,
    readinto,
    readv,
    renameat,
    splice,
    statx,
    unlinkat,
    write,
    writev,
)
from ._misc import cancel_fd, nop, poll, statistics
from ._net import accept, connect, recv, recv_into, recvmsg, send, sendmsg, shutdown

__all__ = [
    "KERNEL_MINIMUM",
    "accept",
    "cancel_fd",
    "close",
    "connect",
    "fallocate",
    "fdatasync",
    "fsync",
    "mkdirat",
    "nop",
    "openat",
    "poll",
    "read",
    "readinto",
    "readv",
    "recv",
    "recv_into",
    "recvmsg",
    "renameat",
    "send",
    "sendmsg",
    "shutdown",
    "splice",
    "statistics",
    "statx",
    "unlinkat",
    "write",
    "writev",
]
