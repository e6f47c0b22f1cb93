"""Socket operations as io_uring ops, on raw fds: the private engine of ``NativeSocket``.

Each is a thin layer over ``UringIOManager.perform`` (which gives
result-wins cancellation and keeps every buffer pinned until the op's
completion). ``trio_uring.lowlevel`` offers the same operations publicly,
with its own argument checks; these skip them, for the reason below, and
copy through private C buffers instead of pinning the caller's.

Every function here is called only after a non-blocking attempt of the same
call already failed with ``BlockingIOError`` (see ``_socket.py``), so the
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

from ._abi import OP
from ._lowlevel_sockaddr import SOCKADDR_STORAGE_SIZE, decode, decode_ancdata
from ._lowlevel_structs import new_uncleared_buffer

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Sequence

    from ._manager import UringIOManager

_RECV: Final = OP["RECV"]
_SEND: Final = OP["SEND"]
_RECVMSG: Final = OP["RECVMSG"]
_SENDMSG: Final = OP["SENDMSG"]
_ACCEPT: Final = OP["ACCEPT"]
_CONNECT: Final = OP["CONNECT"]

SOCKADDR_SIZE: Final = SOCKADDR_STORAGE_SIZE
ACCEPT_FLAGS: Final = socket.SOCK_NONBLOCK | socket.SOCK_CLOEXEC


def _ffi() -> Any:
    # Imported late: the C extension is needed only once an op really runs.
    from ._ring import ffi

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


def _address_of(cdata: Any) -> int:
    return int(_ffi().cast("uintptr_t", cdata))


# Memory the kernel writes to or reads from is always ours: a C buffer made
# by ``ffi.new`` and pinned by the op record until its CQE. The price is one
# copy on the op path only (the direct system call tried first copies
# nothing extra). Addresses and ancillary data are encoded and decoded by
# ``_lowlevel_sockaddr``, as for ``trio_uring.lowlevel``.


async def recv(mgr: UringIOManager, fd: int, bufsize: int, flags: int) -> bytes:
    """``IORING_OP_RECV`` of up to ``bufsize`` bytes."""
    ffi = _ffi()
    target = new_uncleared_buffer(max(bufsize, 1))
    address = _address_of(target)

    def submit() -> Awaitable[int]:
        return mgr.perform(_RECV, fd, target, addr=address, length=bufsize, op_flags=flags)

    n = await _retrying(mgr, fd, True, submit)
    data: bytes = ffi.unpack(target, n)  # one copy, no intermediate buffer object
    return data


async def recv_into(mgr: UringIOManager, fd: int, view: memoryview, flags: int) -> int:
    """``IORING_OP_RECV`` into ``view`` (a writable byte view, already sized); bytes received."""
    ffi = _ffi()
    length = len(view)
    target = new_uncleared_buffer(max(length, 1))
    address = _address_of(target)

    def submit() -> Awaitable[int]:
        return mgr.perform(_RECV, fd, target, addr=address, length=length, op_flags=flags)

    n = await _retrying(mgr, fd, True, submit)
    view[:n] = ffi.buffer(target, n)
    return n


def _copy_in(data: Any) -> tuple[Any, int]:
    ffi = _ffi()
    view = memoryview(data).cast("B")
    try:
        n = len(view)
        # Not zeroed first: the copy below fills every byte the kernel reads.
        source = new_uncleared_buffer(max(n, 1))
        ffi.memmove(source, view, n)
    finally:
        view.release()
    return source, n


async def send(mgr: UringIOManager, fd: int, data: Any, flags: int) -> int:
    """``IORING_OP_SEND`` of ``data`` (any contiguous buffer); bytes sent (may be partial)."""
    source, length = _copy_in(data)
    address = _address_of(source)

    def submit() -> Awaitable[int]:
        return mgr.perform(_SEND, fd, source, addr=address, length=length, op_flags=flags)

    return await _retrying(mgr, fd, False, submit)


class _MsgHdr:
    """A ``struct msghdr`` and everything it points at, pinned together (all ours)."""

    def __init__(
        self, views: Sequence[Any], receive: bool, name: bytes | None, name_room: int, control: Any
    ) -> None:
        ffi = _ffi()
        if receive:
            self.buffers = [new_uncleared_buffer(max(len(v), 1)) for v in views]
            self.lengths = [len(v) for v in views]
        else:
            copied = [_copy_in(v) for v in views]
            self.buffers = [buf for buf, _ in copied]
            self.lengths = [n for _, n in copied]
        self.iov = ffi.new("struct iovec[]", max(1, len(self.buffers)))
        for i, (buf, n) in enumerate(zip(self.buffers, self.lengths, strict=True)):
            self.iov[i].iov_base = buf
            self.iov[i].iov_len = n
        self.msg = ffi.new("struct msghdr *")
        self.msg.msg_iov = self.iov
        self.msg.msg_iovlen = len(self.buffers)
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

    def scatter(self, views: Sequence[memoryview], nbytes: int) -> None:
        """Copy ``nbytes`` received into our buffers out to the caller's views, in order."""
        ffi = _ffi()
        for view, buf, n in zip(views, self.buffers, self.lengths, strict=True):
            if nbytes <= 0:
                break
            take = min(n, nbytes)
            view[:take] = ffi.buffer(buf, take)
            nbytes -= take


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

    nbytes = await _retrying(mgr, fd, True, submit)
    hdr.scatter(views, nbytes)
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

    return await _retrying(mgr, fd, False, submit)


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


async def connect(mgr: UringIOManager, fd: int, sockaddr: bytes) -> int:
    """``IORING_OP_CONNECT``; the raw result (0 or ``-errno``): the caller words the error."""
    ffi = _ffi()
    name = ffi.new("char[]", sockaddr)
    return await mgr.perform(_CONNECT, fd, name, addr=_address_of(name), off=len(sockaddr))


def natively_decodable(family: int) -> bool:
    """Whether the socket path decodes this family's addresses natively (else: Trio's path)."""
    return family in (socket.AF_INET, socket.AF_INET6, socket.AF_UNIX)
