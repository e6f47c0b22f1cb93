"""What every ``trio_uring.lowlevel`` function does first: find the manager, check the opcode."""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

import trio

from .._core.abi import OP
from .._core.manager import UringIOManager, running_manager

if TYPE_CHECKING:
    from _typeshed import StrOrBytesPath

    from .._core.types import HasFileno

    FileDescriptor = int | HasFileno
    Path = StrOrBytesPath

# The Linux release that added each opcode we use (io_uring_enter(2)); the
# error for a kernel without one names it.
KERNEL_MINIMUM: Final = {
    OP["NOP"]: "5.1",
    OP["READV"]: "5.1",
    OP["WRITEV"]: "5.1",
    OP["FSYNC"]: "5.1",
    OP["POLL_ADD"]: "5.1",
    OP["SENDMSG"]: "5.3",
    OP["RECVMSG"]: "5.3",
    OP["ACCEPT"]: "5.5",
    OP["ASYNC_CANCEL"]: "5.5",
    OP["CONNECT"]: "5.5",
    OP["FALLOCATE"]: "5.6",
    OP["OPENAT"]: "5.6",
    OP["CLOSE"]: "5.6",
    OP["STATX"]: "5.6",
    OP["READ"]: "5.6",
    OP["WRITE"]: "5.6",
    OP["SEND"]: "5.6",
    OP["RECV"]: "5.6",
    OP["SPLICE"]: "5.7",
    OP["SHUTDOWN"]: "5.11",
    OP["RENAMEAT"]: "5.11",
    OP["UNLINKAT"]: "5.11",
    OP["MKDIRAT"]: "5.15",
}
"""Opcode number -> the Linux version that added it."""

_OP_NAME: Final = {number: name for name, number in OP.items()}
U32: Final = 0xFFFF_FFFF


def manager(func: str) -> UringIOManager:
    """The running io_uring manager, or ``RuntimeError`` naming ``func`` and the backend."""
    found = running_manager()
    if found is None:
        backend = getattr(trio.lowlevel.current_statistics().io_statistics, "backend", "?")
        raise RuntimeError(
            f"trio_uring.lowlevel.{func}() needs a Trio run on io_uring "
            f"(trio_uring.run, or trio_uring.install()), but this run uses {backend!r}"
        )
    return found


def require(func: str, opcode: int) -> UringIOManager:
    """The running manager, if its kernel supports ``opcode`` (else ``NotImplementedError``)."""
    found = running_manager()
    if found is not None and found.supports(opcode):
        return found  # every op's path: one check, then go
    found = manager(func)
    if not found.supports(opcode):
        name = f"IORING_OP_{_OP_NAME[opcode]}"
        raise NotImplementedError(
            f"trio_uring.lowlevel.{func}() needs {name} (Linux {KERNEL_MINIMUM[opcode]}+), "
            "which this kernel does not support"
        )
    return found
