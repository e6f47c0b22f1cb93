"""``trio_uring.lowlevel``'s network family: ``socket``'s calls as io_uring ops, on raw fds."""

from __future__ import annotations

import os
import socket
from typing import TYPE_CHECKING, Any, Final

from .._core import args as _args
from .._core import sockaddr as _sa
from .._core import structs as _st
from .._core.abi import OP
from .._core.calls import call, error, socket_family
from ._common import U32 as _U32
from ._common import require

if TYPE_CHECKING:
    from collections.abc import Iterable

    from _typeshed import ReadableBuffer, WriteableBuffer

    from ._common import FileDescriptor

_SENDMSG: Final = OP["SENDMSG"]
_RECVMSG: Final = OP["RECVMSG"]
_ACCEPT: Final = OP["ACCEPT"]
_CONNECT: Final = OP["CONNECT"]
_SEND: Final = OP["SEND"]
_RECV: Final = OP["RECV"]
_SHUTDOWN: Final = OP["SHUTDOWN"]
_ACCEPT_FLAGS: Final = socket.SOCK_NONBLOCK | socket.SOCK_CLOEXEC


async def recv(fd: FileDescriptor, bufsize: int, flags: int = 0) -> bytes:
    """Receive up to ``bufsize`` bytes, as ``socket.recv``.

    ``IORING_OP_RECV``, Linux 5.6. ``b""`` means the peer shut down. The
    kernel waits for data even on a non-blocking socket, unless ``flags``
    has ``MSG_DONTWAIT`` (then ``BlockingIOError``).

    :raises ValueError: ``bufsize`` is negative.
    :raises OSError: what ``socket.recv`` raises (``ENOTSOCK``,
        ``ECONNRESET`` → ``ConnectionResetError``...).
    """
    manager = require("recv", _RECV)
    fdn = _args.fileno(fd)
    count = _args.size(bufsize, "negative buffersize in recv")
    msg_flags = _args.c_int(flags)
    buf = _st.new_uncleared_buffer(count)
    res = await call(
        manager, _RECV, fdn, buf, addr=_st.addr_of(buf), length=min(count, _args.MAX_RW_COUNT),
        op_flags=msg_flags & _U32,
    )  # fmt: skip
    if res < 0:
        raise error(res)
    data: bytes = _st.ffi.unpack(buf, res)  # one copy, no intermediate buffer object
    return data


async def recv_into(
    fd: FileDescriptor, buffer: WriteableBuffer, nbytes: int = 0, flags: int = 0
) -> int:
    """Receive into ``buffer`` (its first ``nbytes``, or all of it for 0), as ``socket.recv_into``.

    ``IORING_OP_RECV``, Linux 5.6. Returns the number of bytes received.

    :raises TypeError: ``buffer`` is not a writable, C-contiguous buffer.
    :raises ValueError: ``nbytes`` is negative or larger than the buffer.
    :raises OSError: as :func:`recv`.
    """
    manager = require("recv_into", _RECV)
    fdn = _args.fileno(fd)
    target = _args.target(buffer, "recv_into", "buffer")
    count = _args.size(nbytes, "negative buffersize in recv_into")
    if count > target.nbytes:
        raise ValueError("buffer too small for requested bytes")
    msg_flags = _args.c_int(flags)
    res = await call(
        manager, _RECV, fdn, target.pins(), addr=target.addr,
        length=min(count or target.nbytes, _args.MAX_RW_COUNT), op_flags=msg_flags & _U32,
    )  # fmt: skip
    if res < 0:
        raise error(res)
    return res


async def send(fd: FileDescriptor, data: ReadableBuffer, flags: int = 0) -> int:
    """Send ``data`` (possibly only part of it), as ``socket.send``; return bytes sent.

    ``IORING_OP_SEND``, Linux 5.6. io_uring always adds ``MSG_NOSIGNAL``: a
    closed peer gives ``BrokenPipeError``, never ``SIGPIPE``.

    :raises TypeError: ``data`` is not bytes-like.
    :raises BufferError: ``data`` is not C-contiguous.
    :raises OSError: what ``socket.send`` raises.
    """
    manager = require("send", _SEND)
    fdn = _args.fileno(fd)
    source = _args.source(data)
    msg_flags = _args.c_int(flags)
    res = await call(
        manager, _SEND, fdn, source.pins(), addr=source.addr,
        length=min(source.nbytes, _args.MAX_RW_COUNT), op_flags=msg_flags & _U32,
    )  # fmt: skip
    if res < 0:
        raise error(res)
    return res


async def sendmsg(
    fd: FileDescriptor,
    buffers: Iterable[ReadableBuffer],
    ancdata: Iterable[tuple[int, int, ReadableBuffer]] = (),
    flags: int = 0,
    address: Any = None,
) -> int:
    """Send the buffers' bytes as one message with ancillary data, as ``socket.sendmsg``.

    ``IORING_OP_SENDMSG``, Linux 5.3. ``ancdata`` is ``(level, type,
    data)`` items (e.g. ``SCM_RIGHTS`` with packed fds); ``address`` (for
    unconnected datagram sockets) is an ``AF_INET``/``AF_INET6``/``AF_UNIX``
    address as ``socket`` takes it; names are resolved with Trio's resolver.
    The buffers, iovecs, control buffer, sockaddr and msghdr stay pinned
    until the kernel is done.

    :raises TypeError, BufferError, OverflowError: malformed buffers,
        ancillary data or address, as ``socket.sendmsg``.
    :raises OSError: what ``socket.sendmsg`` raises.
    """
    manager = require("sendmsg", _SENDMSG)
    fdn = _args.fileno(fd)
    iov = _args.source_iovecs(buffers, "sendmsg")
    control = _sa.encode_ancdata(ancdata)
    msg_flags = _args.c_int(flags)
    ffi = _st.ffi
    if address is not None:
        name = await _sa.encode(socket_family(fdn), address, "sendmsg")
        name_c = ffi.from_buffer(name)
    else:
        name, name_c = b"", ffi.NULL
    control_c = ffi.from_buffer(control) if control else ffi.NULL
    msg = _st.new_msghdr(name_c, len(name), iov.array, iov.count, control_c, len(control))
    pins = (msg, iov.pins(), name, name_c, control, control_c)
    res = await call(
        manager, _SENDMSG, fdn, pins, addr=_st.addr_of(msg), length=1, op_flags=msg_flags & _U32
    )
    if res < 0:
        raise error(res)
    return res


async def recvmsg(
    fd: FileDescriptor, bufsize: int, ancbufsize: int = 0, flags: int = 0
) -> tuple[bytes, list[tuple[int, int, bytes]], int, Any]:
    """Receive a message with ancillary data, as ``socket.recvmsg``.

    ``IORING_OP_RECVMSG``, Linux 5.3. Returns ``(data, ancdata, msg_flags,
    address)``: ``ancdata`` a list of ``(level, type, data)``, ``msg_flags``
    the kernel's (``MSG_TRUNC``, ``MSG_CTRUNC``...), ``address`` the
    sender's as ``socket`` returns it (None when the socket has no peer
    address to report). File descriptors received with ``SCM_RIGHTS`` are
    the caller's to close, including when the result won over a cancel.

    :raises ValueError: ``bufsize`` or ``ancbufsize`` is negative.
    :raises OSError: what ``socket.recvmsg`` raises.
    """
    manager = require("recvmsg", _RECVMSG)
    fdn = _args.fileno(fd)
    count = _args.size(bufsize, "negative buffer size in recvmsg()")
    ancsize = _args.size(ancbufsize, "invalid ancillary data buffer length")
    msg_flags = _args.c_int(flags)
    ffi = _st.ffi
    data = _st.new_uncleared_buffer(count)
    iov = ffi.new("struct iovec *")
    iov.iov_base = data
    iov.iov_len = min(count, _args.MAX_RW_COUNT)
    name = ffi.new("struct sockaddr_storage *")
    control = ffi.new("char[]", ancsize) if ancsize else ffi.NULL
    msg = _st.new_msghdr(name, ffi.sizeof(name[0]), iov, 1, control, ancsize)
    pins = (msg, data, iov, name, control)
    res = await call(
        manager, _RECVMSG, fdn, pins, addr=_st.addr_of(msg), length=1, op_flags=msg_flags & _U32
    )
    if res < 0:
        raise error(res)
    # The kernel wrote the lengths and flags back into our msghdr, as
    # recvmsg(2) does.
    controllen = int(msg.msg_controllen) if ancsize else 0
    ancdata = _sa.decode_ancdata(ffi.buffer(control, controllen), controllen) if ancsize else []
    address = _sa.decode(ffi.buffer(name), int(msg.msg_namelen))
    return bytes(ffi.buffer(data, res)), ancdata, int(msg.msg_flags), address


async def accept(fd: FileDescriptor) -> tuple[int, Any]:
    """Accept a connection: return ``(new_fd, address)``, as ``socket.accept`` (raw fd).

    ``IORING_OP_ACCEPT``, Linux 5.5. The new fd is non-blocking and
    close-on-exec (``accept4(SOCK_NONBLOCK | SOCK_CLOEXEC)``) and is the
    caller's to close. If the connection was accepted, the fd is returned
    even when the task was cancelled meanwhile (the ``Cancelled`` comes at
    the next checkpoint): no connection is ever lost or leaked.

    :raises OSError: what ``socket.accept`` raises (``EINVAL`` if not
        listening, ``ENOTSOCK``, ``EMFILE``...).
    """
    manager = require("accept", _ACCEPT)
    fdn = _args.fileno(fd)
    ffi = _st.ffi
    name = ffi.new("struct sockaddr_storage *")
    namelen = ffi.new("unsigned int *", ffi.sizeof(name[0]))
    res = await call(
        manager, _ACCEPT, fdn, (name, namelen), addr=_st.addr_of(name),
        off=_st.addr_of(namelen), op_flags=_ACCEPT_FLAGS,
    )  # fmt: skip
    if res < 0:
        raise error(res)
    try:
        address = _sa.decode(ffi.buffer(name), int(namelen[0]))
    except BaseException:
        os.close(res)  # nobody else will ever learn this fd
        raise
    return res, address


async def connect(fd: FileDescriptor, address: Any) -> None:
    """Connect a socket, as ``socket.connect`` on a blocking socket.

    ``IORING_OP_CONNECT``, Linux 5.5. ``address`` as ``socket`` takes it for
    the socket's family (``AF_INET``, ``AF_INET6``, ``AF_UNIX``); host names
    are resolved with Trio's resolver first. Returns when connected. If a
    cancel wins, the socket may be left half-connected: close it.

    :raises TypeError, OverflowError: a malformed address, as ``socket.connect``.
    :raises OSError: ``ConnectionRefusedError``, ``EBADF``, ``ENOTSOCK``,
        ``socket.gaierror``...
    """
    manager = require("connect", _CONNECT)
    fdn = _args.fileno(fd)
    raw = await _sa.encode(socket_family(fdn), address, "connect")
    name = _st.ffi.from_buffer(raw)
    # A connect interrupted (by a signal, or a kernel timer) goes on in the
    # background; redoing it would fail EALREADY: it is done once, EINTR is
    # not retried, and no kernel timer is linked to it.
    res = await call(
        manager, _CONNECT, fdn, (raw, name), retry_eintr=False, resubmittable=False,
        addr=_st.addr_of(name), off=len(raw),
    )  # fmt: skip
    if res < 0:
        raise error(res)


async def shutdown(fd: FileDescriptor, how: int) -> None:
    """Shut down one or both directions of a socket, as ``socket.shutdown``.

    ``IORING_OP_SHUTDOWN``, Linux 5.11. ``how`` is ``socket.SHUT_RD``,
    ``SHUT_WR`` or ``SHUT_RDWR``.

    :raises OSError: ``ENOTCONN``, ``ENOTSOCK``, ``EINVAL`` for another ``how``.
    """
    manager = require("shutdown", _SHUTDOWN)
    fdn = _args.fileno(fd)
    value = _args.c_int(how)
    res = await call(manager, _SHUTDOWN, fdn, None, length=value & _U32)
    if res < 0:
        raise error(res)
