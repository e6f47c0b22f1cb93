"""Socket operations as io_uring ops, on raw fds: the private engine of ``NativeSocket``.

``trio_uring.lowlevel`` (being written on its own branch) will offer the
same operations publicly. Until it lands, ``_socket.py`` needs only the
handful below, each a thin layer over ``UringIOManager.perform`` (which
gives result-wins cancellation and keeps every buffer pinned until the
op's completion).

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
import struct
from typing import TYPE_CHECKING, Any, Final

from ._abi import OP
from ._lowlevel_structs import new_receive_buffer

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Sequence

    from ._manager import UringIOManager

_RECV: Final = OP["RECV"]
_SEND: Final = OP["SEND"]
_RECVMSG: Final = OP["RECVMSG"]
_SENDMSG: Final = OP["SENDMSG"]
_ACCEPT: Final = OP["ACCEPT"]
_CONNECT: Final = OP["CONNECT"]

SOCKADDR_SIZE: Final = 128  # sizeof(struct sockaddr_storage)
_SUN_PATH_OFFSET: Final = 2
_SUN_PATH_MAX: Final = 108
_IN4: Final = struct.Struct("=H2s4s8x")  # family, port (network order), address, zero pad
_IN6: Final = struct.Struct("=H2s4s16sI")  # family, port, flowinfo (network order), addr, scope
_CMSG_HDR: Final = struct.Struct("@Nii")  # cmsg_len (size_t), cmsg_level, cmsg_type
_CMSG_ALIGN: Final = struct.calcsize("N")
_CMSG_HDR_LEN: Final = socket.CMSG_LEN(0)
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
# nothing extra). These helpers predate ``trio_uring.lowlevel`` and overlap
# it (address and ancillary-data encoding); folding them into it is
# pending, after measuring its buffer pinning against this copy.


async def recv(mgr: UringIOManager, fd: int, bufsize: int, flags: int) -> bytes:
    """``IORING_OP_RECV`` of up to ``bufsize`` bytes."""
    ffi = _ffi()
    target = new_receive_buffer(max(bufsize, 1))
    address = _address_of(target)

    def submit() -> Awaitable[int]:
        return mgr.perform(_RECV, fd, target, addr=address, length=bufsize, op_flags=flags)

    n = await _retrying(mgr, fd, True, submit)
    return bytes(ffi.buffer(target, n))


async def recv_into(mgr: UringIOManager, fd: int, view: memoryview, flags: int) -> int:
    """``IORING_OP_RECV`` into ``view`` (a writable byte view, already sized); bytes received."""
    ffi = _ffi()
    length = len(view)
    target = new_receive_buffer(max(length, 1))
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
        source = ffi.new("char[]", max(n, 1))
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
            self.buffers = [new_receive_buffer(max(len(v), 1)) for v in views]
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
    anc = decode_ancdata(ffi.buffer(control, msg.msg_controllen)) if control is not None else []
    name = ffi.buffer(hdr.name, SOCKADDR_SIZE)
    return nbytes, anc, int(msg.msg_flags), decode_sockaddr(bytes(name), int(msg.msg_namelen))


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


# ----------------------------------------------------------------------
# Addresses and ancillary data, byte for byte as CPython's socket module
# ----------------------------------------------------------------------


def encode_sockaddr(family: int, address: Any) -> bytes | None:
    """A ``struct sockaddr`` for an address Trio has already resolved, or None.

    None means "not a form we are sure to encode exactly as the stdlib
    would": the caller then takes Trio's own path, which raises whatever
    the stdlib raises.
    """
    try:
        if family == socket.AF_INET:
            host, port = address
            if type(port) is not int or not 0 <= port <= 0xFFFF or not isinstance(host, str):
                return None
            return _IN4.pack(family, port.to_bytes(2, "big"), socket.inet_pton(family, host))
        if family == socket.AF_INET6:
            if not isinstance(address, tuple) or not 2 <= len(address) <= 4:
                return None
            host, port, flowinfo, scope_id = (*address, 0, 0)[:4]
            ints = (port, flowinfo, scope_id)
            if not isinstance(host, str) or "%" in host or any(type(n) is not int for n in ints):
                return None
            if not (0 <= port <= 0xFFFF and 0 <= flowinfo <= 0xFFFFF and 0 <= scope_id < 2**32):
                return None
            packed = socket.inet_pton(family, host)
            flow = flowinfo.to_bytes(4, "big")
            return _IN6.pack(family, port.to_bytes(2, "big"), flow, packed, scope_id)
        if family == socket.AF_UNIX:
            if isinstance(address, str):
                raw = os.fsencode(address)
            elif isinstance(address, bytes):
                raw = address
            else:
                return None
            head = struct.pack("=H", family)
            if raw.startswith(b"\0"):
                # Linux's abstract namespace: no terminator, the length says it all.
                return head + raw if len(raw) <= _SUN_PATH_MAX else None
            return head + raw + b"\0" if 0 < len(raw) < _SUN_PATH_MAX else None
    except (ValueError, TypeError, OSError, UnicodeError):
        return None
    return None


def decode_sockaddr(data: bytes, length: int) -> Any:
    """The Python address for a ``struct sockaddr`` of ``length`` bytes, as ``makesockaddr``."""
    if length <= 0:
        return None  # CPython's answer when the kernel reports no address
    (family,) = struct.unpack_from("=H", data)
    if family == socket.AF_INET:
        _, port, ip = _IN4.unpack_from(data)
        return (socket.inet_ntop(family, ip), int.from_bytes(port, "big"))
    if family == socket.AF_INET6:
        _, port, flow, ip, scope = _IN6.unpack_from(data)
        return (socket.inet_ntop(family, ip), int.from_bytes(port, "big"),
                int.from_bytes(flow, "big"), scope)  # fmt: skip
    if family == socket.AF_UNIX:
        path = data[_SUN_PATH_OFFSET : max(length, _SUN_PATH_OFFSET)]
        if path[:1] == b"\0":
            return path  # abstract: every byte up to the length counts
        return os.fsdecode(data[_SUN_PATH_OFFSET:].split(b"\0", 1)[0])
    # Families we do not decode are never handed to the native path.
    raise ValueError(f"address family {family} is not decoded natively")


def natively_decodable(family: int) -> bool:
    """Whether ``decode_sockaddr`` knows this family's addresses."""
    return family in (socket.AF_INET, socket.AF_INET6, socket.AF_UNIX)


def _align(n: int) -> int:
    return (n + _CMSG_ALIGN - 1) & ~(_CMSG_ALIGN - 1)


def encode_ancdata(ancdata: Sequence[tuple[int, int, Any]]) -> bytes:
    """A control buffer of ``cmsghdr`` records (each ``CMSG_SPACE`` long), as CPython builds it.

    Called only after the stdlib accepted the same ``ancdata``.
    """
    out = bytearray()
    for level, kind, data in ancdata:
        payload = memoryview(data).tobytes()
        record = _CMSG_HDR.pack(socket.CMSG_LEN(len(payload)), level, kind)
        out += record.ljust(_CMSG_HDR_LEN, b"\0") + payload
        out += bytes(socket.CMSG_SPACE(len(payload)) - _CMSG_HDR_LEN - len(payload))
    return bytes(out)


def decode_ancdata(control: Any) -> list[tuple[int, int, bytes]]:
    """The ``(level, type, data)`` list ``socket.recvmsg`` makes of a control buffer.

    A record the kernel truncated (``MSG_CTRUNC``) keeps the data that is there.
    """
    buf = bytes(control)
    items: list[tuple[int, int, bytes]] = []
    pos = 0
    while pos + _CMSG_HDR_LEN <= len(buf):
        cmsg_len, level, kind = _CMSG_HDR.unpack_from(buf, pos)
        if cmsg_len < _CMSG_HDR_LEN:
            break
        end = min(pos + cmsg_len, len(buf))
        items.append((level, kind, buf[pos + _CMSG_HDR_LEN : end]))
        pos += _align(cmsg_len)
    return items
