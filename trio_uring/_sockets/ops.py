"""Socket operations as io_uring ops, on raw fds: the private engine of ``NativeSocket``.

Each is a thin layer over ``UringIOManager.perform`` (which gives
result-wins cancellation and keeps every buffer pinned until the op's
completion). ``trio_uring.lowlevel`` offers the same operations publicly,
with its own argument checks; these skip them, for the reason below.

Every function here is called only after a non-blocking attempt of the same
call already failed with ``BlockingIOError`` (see ``base.py``), so the
arguments have been checked by the stdlib itself: these helpers only
translate them for the kernel and turn a negative result into the
``OSError`` the stdlib would raise.

A kernel that still answers ``-EAGAIN`` (the caller passed
``MSG_DONTWAIT``, or a socket timeout is set) gets Trio's own treatment:
wait for readiness, then try the op again.
"""

from __future__ import annotations

import errno
import os
import socket
from typing import TYPE_CHECKING, Any, Final

from .._core.abi import OP
from .._core.args import source, target
from .._core.sockaddr import SOCKADDR_STORAGE_SIZE, decode, decode_ancdata
from .._core.structs import new_uncleared_buffer

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Sequence

    from .._core.manager import UringIOManager

_RECV: Final = OP["RECV"]
_SEND: Final = OP["SEND"]
_RECVMSG: Final = OP["RECVMSG"]
_SENDMSG: Final = OP["SENDMSG"]
_ACCEPT: Final = OP["ACCEPT"]

SOCKADDR_SIZE: Final = SOCKADDR_STORAGE_SIZE
ACCEPT_FLAGS: Final = socket.SOCK_NONBLOCK | socket.SOCK_CLOEXEC


def _ffi() -> Any:
    # Imported late: the C extension is needed only once an op really runs.
    from .._core.ring import ffi

    return ffi


def raise_errno(res: int) -> None:
    """Raise what the stdlib raises for ``-res``: ``OSError(errno, strerror)``.

    ``OSError``'s constructor picks the subclass (``ConnectionResetError``...).
    """
    if res < 0:
        err = -res
        raise OSError(err, os.strerror(err))


async def _retrying(
    mgr: UringIOManager, fd: int, readable: bool, submit: Callable[[], Awaitable[int]]
) -> int:
    """Run ``submit`` until the kernel stops answering ``-EAGAIN``; raise on an error."""
    while True:
        res = await submit()
        if res != -errno.EAGAIN:
            raise_errno(res)
            return res
        # The kernel would not wait (MSG_DONTWAIT, SO_RCVTIMEO/SO_SNDTIMEO):
        # wait for readiness as Trio would, then ask again.
        if readable:
            await mgr.wait_readable(fd)
        else:
            await mgr.wait_writable(fd)


_EAGAIN: Final = -errno.EAGAIN


def _address_of(cdata: Any) -> int:
    return int(_ffi().cast("uintptr_t", cdata))


# What the kernel reads or writes stays pinned by the op record until its
# CQE. A buffer the caller passed is pinned in place (``Pinned``: a buffer
# export, so a bytearray cannot be resized or an mmap closed under the
# kernel); sending 1 MiB then costs no copy. The export is dropped in a
# ``finally`` once the op is over: perform() only returns once the op's CQE
# has arrived, or at once when the SQE never reached the kernel (turned
# into a NOP), so the kernel is done with the memory by then. ``recv``
# returns new bytes, so it receives into a private C buffer and copies out
# once. Addresses and ancillary data are encoded and decoded by
# ``_core/sockaddr.py``, as for ``trio_uring.lowlevel``.


async def recv(mgr: UringIOManager, fd: int, bufsize: int, flags: int) -> bytes:
    """``IORING_OP_RECV`` of up to ``bufsize`` bytes."""
    ffi = _ffi()
    target = new_uncleared_buffer(max(bufsize, 1))
    address = _address_of(target)
    # _retrying written out: every receive that waits is parked here, and a
    # frame and a closure less are a tenth of what a waiting task holds.
    while True:
        res = await mgr.perform(_RECV, fd, target, address, bufsize, 0, flags)
        if res != _EAGAIN:
            break
        await mgr.wait_readable(fd)  # the kernel would not wait: as Trio would
    raise_errno(res)
    data: bytes = ffi.unpack(target, res)  # one copy, no intermediate buffer object
    return data


async def recv_into(mgr: UringIOManager, fd: int, view: memoryview, flags: int) -> int:
    """``IORING_OP_RECV`` into ``view`` (a writable byte view, already sized); bytes received.

    The kernel writes straight into the caller's buffer, pinned.
    """
    pinned = target(view, "recv_into", "buffer")
    pins = pinned.pins()

    def submit() -> Awaitable[int]:
        return mgr.perform(_RECV, fd, pins, pinned.addr, pinned.nbytes, 0, flags)

    try:
        return await _retrying(mgr, fd, True, submit)
    finally:
        pinned.release()


async def send(mgr: UringIOManager, fd: int, data: Any, flags: int) -> int:
    """``IORING_OP_SEND`` of ``data`` (a contiguous buffer, pinned); bytes sent (maybe partial)."""
    pinned = source(data)
    pins = pinned.pins()

    def submit() -> Awaitable[int]:
        return mgr.perform(_SEND, fd, pins, pinned.addr, pinned.nbytes, 0, flags)

    try:
        return await _retrying(mgr, fd, False, submit)
    finally:
        pinned.release()


class _MsgHdr:
    """A ``struct msghdr``: the caller's buffers pinned in place, our name and control blocks."""

    def __init__(
        self, views: Sequence[Any], receive: bool, name: bytes | None, name_room: int, control: Any
    ) -> None:
        ffi = _ffi()
        # The stdlib call tried first has checked them (writable to receive).
        self.pinned = [
            target(v, "recvmsg_into", "buffers") if receive else source(v) for v in views
        ]
        self.iov = ffi.new("struct iovec[]", max(1, len(self.pinned)))
        for i, pinned in enumerate(self.pinned):
            self.iov[i].iov_base = pinned.cdata
            self.iov[i].iov_len = pinned.nbytes
        self.msg = ffi.new("struct msghdr *")
        self.msg.msg_iov = self.iov
        self.msg.msg_iovlen = len(self.pinned)
        self.name: Any = None
        if name is not None:
            self.name = ffi.new("char[]", name)
            self.msg.msg_name = self.name
            self.msg.msg_namelen = len(name)
        elif name_room:
            self.name = ffi.new("char[]", name_room)
            self.msg.msg_name = self.name
            self.msg.msg_namelen = name_room
        self.control: Any = None
        if control is not None and len(control):
            self.control = ffi.new("char[]", control) if isinstance(control, bytes) else control
            self.msg.msg_control = self.control
            self.msg.msg_controllen = len(self.control)

    def release(self) -> None:
        """Drop the exports on the caller's buffers: only once the op is over."""
        for pinned in self.pinned:
            pinned.release()


async def recvmsg_into(
    mgr: UringIOManager, fd: int, views: Sequence[memoryview], ancbufsize: int, flags: int
) -> tuple[int, list[tuple[int, int, bytes]], int, Any]:
    """``IORING_OP_RECVMSG``: ``(nbytes, ancdata, msg_flags, address)`` as the stdlib returns."""
    ffi = _ffi()
    control = ffi.new("char[]", ancbufsize) if ancbufsize > 0 else None
    hdr = _MsgHdr(views, True, None, SOCKADDR_SIZE, control)
    address = _address_of(hdr.msg)

    def submit() -> Awaitable[int]:
        # A retry after -EAGAIN must start from the full sizes again.
        hdr.msg.msg_namelen = SOCKADDR_SIZE
        hdr.msg.msg_controllen = ancbufsize if control is not None else 0
        return mgr.perform(_RECVMSG, fd, hdr, addr=address, length=1, op_flags=flags)

    try:
        nbytes = await _retrying(mgr, fd, True, submit)
    finally:
        hdr.release()
    msg = hdr.msg
    controllen = int(msg.msg_controllen)
    anc = decode_ancdata(ffi.buffer(control, controllen), controllen) if control is not None else []
    name = ffi.buffer(hdr.name, SOCKADDR_SIZE)
    return nbytes, anc, int(msg.msg_flags), decode(name, int(msg.msg_namelen))


async def sendmsg(
    mgr: UringIOManager,
    fd: int,
    views: Sequence[Any],
    control: bytes,
    flags: int,
    name: bytes | None,
) -> int:
    """``IORING_OP_SENDMSG``; bytes sent."""
    hdr = _MsgHdr(views, False, name, 0, control)
    address = _address_of(hdr.msg)

    def submit() -> Awaitable[int]:
        return mgr.perform(_SENDMSG, fd, hdr, addr=address, length=1, op_flags=flags)

    try:
        return await _retrying(mgr, fd, False, submit)
    finally:
        hdr.release()


async def accept(mgr: UringIOManager, fd: int) -> tuple[int, bytes, int]:
    """``IORING_OP_ACCEPT`` (non-blocking, close-on-exec): ``(newfd, sockaddr, addrlen)``."""
    ffi = _ffi()
    name = ffi.new("char[]", SOCKADDR_SIZE)
    namelen = ffi.new("unsigned int *", SOCKADDR_SIZE)
    pins = (name, namelen)
    name_address = _address_of(name)
    len_address = _address_of(namelen)

    def submit() -> Awaitable[int]:
        namelen[0] = SOCKADDR_SIZE
        return mgr.perform(
            _ACCEPT, fd, pins, addr=name_address, off=len_address, op_flags=ACCEPT_FLAGS
        )

    newfd = await _retrying(mgr, fd, True, submit)
    return newfd, bytes(ffi.buffer(name, SOCKADDR_SIZE)), int(namelen[0])


def natively_decodable(family: int) -> bool:
    """Whether the socket path decodes this family's addresses natively (else: Trio's path)."""
    return family in (socket.AF_INET, socket.AF_INET6, socket.AF_UNIX)
