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

import errno
import os
import select
import socket
from typing import TYPE_CHECKING, Any, Final

import trio

from . import _lowlevel_args as _args
from . import _lowlevel_sockaddr as _sa
from . import _lowlevel_structs as _st
from ._abi import OP
from ._manager import UringIOManager, UringStatistics, running_manager

if TYPE_CHECKING:
    from collections.abc import Iterable

    from _typeshed import ReadableBuffer, StrOrBytesPath, WriteableBuffer

    from ._types import HasFileno

    FileDescriptor = int | HasFileno
    Path = StrOrBytesPath

__all__ = [
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

_NOP: Final = OP["NOP"]
_READV: Final = OP["READV"]
_WRITEV: Final = OP["WRITEV"]
_FSYNC: Final = OP["FSYNC"]
_POLL_ADD: Final = OP["POLL_ADD"]
_SENDMSG: Final = OP["SENDMSG"]
_RECVMSG: Final = OP["RECVMSG"]
_ACCEPT: Final = OP["ACCEPT"]
_ASYNC_CANCEL: Final = OP["ASYNC_CANCEL"]
_CONNECT: Final = OP["CONNECT"]
_FALLOCATE: Final = OP["FALLOCATE"]
_OPENAT: Final = OP["OPENAT"]
_CLOSE: Final = OP["CLOSE"]
_STATX: Final = OP["STATX"]
_READ: Final = OP["READ"]
_WRITE: Final = OP["WRITE"]
_SEND: Final = OP["SEND"]
_RECV: Final = OP["RECV"]
_SPLICE: Final = OP["SPLICE"]
_SHUTDOWN: Final = OP["SHUTDOWN"]
_RENAMEAT: Final = OP["RENAMEAT"]
_UNLINKAT: Final = OP["UNLINKAT"]
_MKDIRAT: Final = OP["MKDIRAT"]

_U32: Final = 0xFFFF_FFFF
_ACCEPT_FLAGS: Final = socket.SOCK_NONBLOCK | socket.SOCK_CLOEXEC
_ALWAYS_REPORTED: Final = select.POLLERR | select.POLLHUP | select.POLLNVAL


def _manager(func: str) -> UringIOManager:
    manager = running_manager()
    if manager is None:
        backend = getattr(trio.lowlevel.current_statistics().io_statistics, "backend", "?")
        raise RuntimeError(
            f"trio_uring.lowlevel.{func}() needs a Trio run on io_uring "
            f"(trio_uring.run, or trio_uring.install()), but this run uses {backend!r}"
        )
    return manager


def _require(func: str, opcode: int) -> UringIOManager:
    """The running manager, if its kernel supports ``opcode``."""
    manager = running_manager()
    if manager is not None and manager.supports(opcode):
        return manager  # every op's path: one check, then go
    manager = _manager(func)
    if not manager.supports(opcode):
        name = f"IORING_OP_{_OP_NAME[opcode]}"
        raise NotImplementedError(
            f"trio_uring.lowlevel.{func}() needs {name} (Linux {KERNEL_MINIMUM[opcode]}+), "
            "which this kernel does not support"
        )
    return manager


def _error(res: int, *filenames: Any) -> OSError:
    """The OSError (subclass chosen by errno) the stdlib raises for ``-res``."""
    code = -res
    if len(filenames) == 2:
        # os.rename's form: both names, "src -> dst".
        return OSError(code, os.strerror(code), filenames[0], None, filenames[1])
    if filenames:
        return OSError(code, os.strerror(code), filenames[0])
    return OSError(code, os.strerror(code))


async def _perform(
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
) -> int:
    try:
        while True:
            res = await manager.perform(opcode, fd, pins, addr, length, off, op_flags, 0, 0,
                                        splice_fd_in)  # fmt: skip
            # PEP 475: the stdlib retries a call a signal interrupted. The op
            # did nothing (a cancel of ours never comes back as -EINTR: the
            # manager raises Cancelled for it).
            if res != -errno.EINTR or not retry_eintr:
                return res
    finally:
        # However perform ended, the kernel is done with these buffers (a
        # parked task is only released by its op's CQE, or at once when the
        # SQE was still ours to turn into a NOP): drop the buffer exports.
        _release_pins(pins)


def _release_pins(pins: Any) -> None:
    # The common shapes first (every op pays for this): nothing pinned, a
    # private C buffer, or exactly one Pinned's own pins() tuple (the view
    # check tells it from a hand-built tuple that could hold more Pinneds).
    if (type(pins) is tuple and len(pins) == 4 and type(pins[3]) is _args.Pinned
            and pins[3].view is pins[1]):  # fmt: skip
        pins[3].release()
        return
    if not isinstance(pins, (tuple, list, _args.Pinned)):
        return
    stack = [pins]
    while stack:
        item = stack.pop()
        if isinstance(item, (tuple, list)):
            stack.extend(item)
        elif isinstance(item, _args.Pinned):
            item.release()


def _socket_family(fd: int) -> int:
    domain = int(_st.lib.tu_ll_socket_domain(fd))
    if domain < 0:
        raise _error(domain)  # EBADF, ENOTSOCK: what connect(2) itself would say
    return domain


# ----------------------------------------------------------------------
# read / write
# ----------------------------------------------------------------------


async def read(fd: FileDescriptor, size: int, offset: int = -1) -> bytes:
    """Read up to ``size`` bytes, as ``os.read`` (offset -1) or ``os.pread`` do.

    ``IORING_OP_READ``, Linux 5.6. ``offset=-1`` reads at the file position
    and advances it; an offset >= 0 reads there and leaves it alone. Returns
    ``b""`` at end of file. Even on a non-blocking fd the kernel waits for
    data rather than failing with ``EAGAIN`` (Linux 5.x/6.x; a kernel that
    does fail raises ``BlockingIOError``, as ``os.read`` would).

    :raises ValueError: ``size`` is negative.
    :raises OSError: what ``os.read``/``os.pread`` raise (``EBADF``,
        ``EISDIR``, ``ESPIPE`` for an offset on a pipe, ``EINVAL`` for an
        offset below -1...).
    """
    manager = _require("read", _READ)
    fdn = _args.fileno(fd)
    count = _args.size(size, "negative value for 'size' not allowed")
    off = _args.file_offset(offset)
    buf = _st.new_uncleared_buffer(count)
    res = await _perform(
        manager, _READ, fdn, buf, addr=_st.addr_of(buf), length=min(count, _args.MAX_RW_COUNT),
        off=off,
    )  # fmt: skip
    if res < 0:
        raise _error(res)
    data: bytes = _st.ffi.unpack(buf, res)  # one copy, no intermediate buffer object
    return data


async def readinto(fd: FileDescriptor, buffer: WriteableBuffer, offset: int = -1) -> int:
    """Read into ``buffer`` (all of it at most); return the number of bytes read.

    ``IORING_OP_READ``, Linux 5.6. ``offset`` as in :func:`read`.
    ``buffer`` stays pinned (a ``bytearray`` cannot be resized) until the
    kernel is done with it, even if the task is cancelled meanwhile.

    :raises TypeError: ``buffer`` is not a writable, C-contiguous buffer.
    :raises OSError: as :func:`read`.
    """
    manager = _require("readinto", _READ)
    fdn = _args.fileno(fd)
    target = _args.target(buffer, "readinto", "buffer")
    off = _args.file_offset(offset)
    res = await _perform(
        manager, _READ, fdn, target.pins(), addr=target.addr,
        length=min(target.nbytes, _args.MAX_RW_COUNT), off=off,
    )  # fmt: skip
    if res < 0:
        raise _error(res)
    return res


async def write(fd: FileDescriptor, data: ReadableBuffer, offset: int = -1) -> int:
    """Write ``data`` (possibly only part of it); return the number of bytes written.

    ``IORING_OP_WRITE``, Linux 5.6. As ``os.write`` (offset -1: at the file
    position, or at the end for ``O_APPEND``) or ``os.pwrite`` (offset >= 0).

    :raises TypeError: ``data`` is not bytes-like.
    :raises BufferError: ``data`` is not C-contiguous.
    :raises OSError: what ``os.write``/``os.pwrite`` raise (``EBADF``,
        ``EPIPE`` → ``BrokenPipeError``, ``ENOSPC``...).
    """
    manager = _require("write", _WRITE)
    fdn = _args.fileno(fd)
    source = _args.source(data)
    off = _args.file_offset(offset)
    res = await _perform(
        manager, _WRITE, fdn, source.pins(), addr=source.addr,
        length=min(source.nbytes, _args.MAX_RW_COUNT), off=off,
    )  # fmt: skip
    if res < 0:
        raise _error(res)
    return res


async def readv(fd: FileDescriptor, buffers: Iterable[WriteableBuffer], offset: int = -1) -> int:
    """Read into several buffers in order (scatter); return the total bytes read.

    ``IORING_OP_READV``, Linux 5.1. As ``os.readv`` (offset -1) or
    ``os.preadv``. Every buffer and the iovec array stay pinned until the
    kernel is done.

    :raises TypeError: ``buffers`` is not a sequence, or one of them is not
        a writable, C-contiguous buffer.
    :raises OSError: as :func:`read`; ``EINVAL`` for more than 1024 buffers.
    """
    manager = _require("readv", _READV)
    fdn = _args.fileno(fd)
    iov = _args.target_iovecs(buffers, "readv")
    off = _args.file_offset(offset)
    res = await _perform(manager, _READV, fdn, iov.pins(), addr=iov.addr, length=iov.count, off=off)
    if res < 0:
        raise _error(res)
    return res


async def writev(fd: FileDescriptor, buffers: Iterable[ReadableBuffer], offset: int = -1) -> int:
    """Write several buffers in order (gather); return the total bytes written.

    ``IORING_OP_WRITEV``, Linux 5.1. As ``os.writev`` (offset -1) or
    ``os.pwritev``.

    :raises TypeError: ``buffers`` is not a sequence of bytes-like objects.
    :raises BufferError: one of them is not C-contiguous.
    :raises OSError: as :func:`write`; ``EINVAL`` for more than 1024 buffers.
    """
    manager = _require("writev", _WRITEV)
    fdn = _args.fileno(fd)
    iov = _args.source_iovecs(buffers, "writev")
    off = _args.file_offset(offset)
    res = await _perform(
        manager, _WRITEV, fdn, iov.pins(), addr=iov.addr, length=iov.count, off=off
    )
    if res < 0:
        raise _error(res)
    return res


# ----------------------------------------------------------------------
# sockets
# ----------------------------------------------------------------------


async def recv(fd: FileDescriptor, bufsize: int, flags: int = 0) -> bytes:
    """Receive up to ``bufsize`` bytes, as ``socket.recv``.

    ``IORING_OP_RECV``, Linux 5.6. ``b""`` means the peer shut down. The
    kernel waits for data even on a non-blocking socket, unless ``flags``
    has ``MSG_DONTWAIT`` (then ``BlockingIOError``).

    :raises ValueError: ``bufsize`` is negative.
    :raises OSError: what ``socket.recv`` raises (``ENOTSOCK``,
        ``ECONNRESET`` → ``ConnectionResetError``...).
    """
    manager = _require("recv", _RECV)
    fdn = _args.fileno(fd)
    count = _args.size(bufsize, "negative buffersize in recv")
    msg_flags = _args.c_int(flags)
    buf = _st.new_uncleared_buffer(count)
    res = await _perform(
        manager, _RECV, fdn, buf, addr=_st.addr_of(buf), length=min(count, _args.MAX_RW_COUNT),
        op_flags=msg_flags & _U32,
    )  # fmt: skip
    if res < 0:
        raise _error(res)
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
    manager = _require("recv_into", _RECV)
    fdn = _args.fileno(fd)
    target = _args.target(buffer, "recv_into", "buffer")
    count = _args.size(nbytes, "negative buffersize in recv_into")
    if count > target.nbytes:
        raise ValueError("buffer too small for requested bytes")
    msg_flags = _args.c_int(flags)
    res = await _perform(
        manager, _RECV, fdn, target.pins(), addr=target.addr,
        length=min(count or target.nbytes, _args.MAX_RW_COUNT), op_flags=msg_flags & _U32,
    )  # fmt: skip
    if res < 0:
        raise _error(res)
    return res


async def send(fd: FileDescriptor, data: ReadableBuffer, flags: int = 0) -> int:
    """Send ``data`` (possibly only part of it), as ``socket.send``; return bytes sent.

    ``IORING_OP_SEND``, Linux 5.6. io_uring always adds ``MSG_NOSIGNAL``: a
    closed peer gives ``BrokenPipeError``, never ``SIGPIPE``.

    :raises TypeError: ``data`` is not bytes-like.
    :raises BufferError: ``data`` is not C-contiguous.
    :raises OSError: what ``socket.send`` raises.
    """
    manager = _require("send", _SEND)
    fdn = _args.fileno(fd)
    source = _args.source(data)
    msg_flags = _args.c_int(flags)
    res = await _perform(
        manager, _SEND, fdn, source.pins(), addr=source.addr,
        length=min(source.nbytes, _args.MAX_RW_COUNT), op_flags=msg_flags & _U32,
    )  # fmt: skip
    if res < 0:
        raise _error(res)
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
    manager = _require("sendmsg", _SENDMSG)
    fdn = _args.fileno(fd)
    iov = _args.source_iovecs(buffers, "sendmsg")
    control = _sa.encode_ancdata(ancdata)
    msg_flags = _args.c_int(flags)
    ffi = _st.ffi
    if address is not None:
        name = await _sa.encode(_socket_family(fdn), address, "sendmsg")
        name_c = ffi.from_buffer(name)
    else:
        name, name_c = b"", ffi.NULL
    control_c = ffi.from_buffer(control) if control else ffi.NULL
    msg = _st.new_msghdr(name_c, len(name), iov.array, iov.count, control_c, len(control))
    pins = (msg, iov.pins(), name, name_c, control, control_c)
    res = await _perform(
        manager, _SENDMSG, fdn, pins, addr=_st.addr_of(msg), length=1, op_flags=msg_flags & _U32
    )
    if res < 0:
        raise _error(res)
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
    manager = _require("recvmsg", _RECVMSG)
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
    res = await _perform(
        manager, _RECVMSG, fdn, pins, addr=_st.addr_of(msg), length=1, op_flags=msg_flags & _U32
    )
    if res < 0:
        raise _error(res)
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
    manager = _require("accept", _ACCEPT)
    fdn = _args.fileno(fd)
    ffi = _st.ffi
    name = ffi.new("struct sockaddr_storage *")
    namelen = ffi.new("unsigned int *", ffi.sizeof(name[0]))
    res = await _perform(
        manager, _ACCEPT, fdn, (name, namelen), addr=_st.addr_of(name),
        off=_st.addr_of(namelen), op_flags=_ACCEPT_FLAGS,
    )  # fmt: skip
    if res < 0:
        raise _error(res)
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
    manager = _require("connect", _CONNECT)
    fdn = _args.fileno(fd)
    raw = await _sa.encode(_socket_family(fdn), address, "connect")
    name = _st.ffi.from_buffer(raw)
    # A connect interrupted by a signal goes on in the background; redoing
    # it would fail EALREADY, so EINTR is not retried here.
    res = await _perform(
        manager, _CONNECT, fdn, (raw, name), retry_eintr=False, addr=_st.addr_of(name),
        off=len(raw),
    )  # fmt: skip
    if res < 0:
        raise _error(res)


async def shutdown(fd: FileDescriptor, how: int) -> None:
    """Shut down one or both directions of a socket, as ``socket.shutdown``.

    ``IORING_OP_SHUTDOWN``, Linux 5.11. ``how`` is ``socket.SHUT_RD``,
    ``SHUT_WR`` or ``SHUT_RDWR``.

    :raises OSError: ``ENOTCONN``, ``ENOTSOCK``, ``EINVAL`` for another ``how``.
    """
    manager = _require("shutdown", _SHUTDOWN)
    fdn = _args.fileno(fd)
    value = _args.c_int(how)
    res = await _perform(manager, _SHUTDOWN, fdn, None, length=value & _U32)
    if res < 0:
        raise _error(res)


async def close(fd: FileDescriptor) -> None:
    """Close a file descriptor, as ``os.close``, waking whoever waits on it first.

    ``IORING_OP_CLOSE``, Linux 5.6. Calls ``trio.lowlevel.notify_closing``
    first: tasks waiting on ``fd`` (``wait_readable``, native ops) get
    ``trio.ClosedResourceError``. Like Trio's ``aclose``, it closes the fd
    even if the task is cancelled, and then raises ``Cancelled``. Never
    retried on ``EINTR`` (Linux has closed the fd anyway).

    :raises OSError: ``EBADF`` if ``fd`` is not open.
    """
    manager = _require("close", _CLOSE)
    fdn = _args.fileno(fd)
    trio.lowlevel.notify_closing(fdn)
    with trio.CancelScope(shield=True):
        res = await _perform(manager, _CLOSE, fdn, None, retry_eintr=False)
    if res < 0:
        raise _error(res)
    await trio.lowlevel.checkpoint_if_cancelled()


# ----------------------------------------------------------------------
# files and paths
# ----------------------------------------------------------------------


async def openat(
    path: Path, flags: int, mode: int = 0o777, *, dir_fd: FileDescriptor | None = None
) -> int:
    """Open a file and return its fd, as ``os.open`` (``O_CLOEXEC`` is always added).

    ``IORING_OP_OPENAT``, Linux 5.6. ``path`` is relative to ``dir_fd``
    (default: the working directory). The path bytes stay pinned until the
    kernel is done. An open that completed is returned even if the task was
    cancelled meanwhile; the fd is the caller's to close.

    :raises TypeError: ``path`` is not str, bytes or ``os.PathLike``.
    :raises ValueError: ``path`` contains a NUL byte.
    :raises OSError: what ``os.open`` raises, with the path as ``filename``
        (``FileNotFoundError``, ``PermissionError``, ``IsADirectoryError``...).
    """
    manager = _require("openat", _OPENAT)
    raw, filename = _args.path(path, "openat")
    open_flags = _args.c_int(flags) | os.O_CLOEXEC
    perm = _args.u32(mode, "mode")
    dirfd = _args.dir_fd(dir_fd)
    cpath = _args.c_string(raw)
    res = await _perform(
        manager, _OPENAT, dirfd, cpath, addr=_st.addr_of(cpath), length=perm,
        op_flags=open_flags & _U32,
    )  # fmt: skip
    if res < 0:
        raise _error(res, filename)
    return res


async def statx(
    path: Path | int,
    *,
    dir_fd: FileDescriptor | None = None,
    follow_symlinks: bool = True,
) -> os.stat_result:
    """Status of a file, equal field by field to ``os.stat`` (``os.lstat`` without following).

    ``IORING_OP_STATX``, Linux 5.6. ``path`` may also be an open fd (an
    int), as ``os.stat`` takes one. Every field matches ``os.stat``'s,
    ``st_*_ns``, ``st_blocks``, ``st_blksize`` and ``st_rdev`` included.
    The path and the ``struct statx`` stay pinned until the kernel is done.

    :raises TypeError, ValueError: a malformed path, as ``os.stat``.
    :raises OSError: what ``os.stat`` raises, with the path as ``filename``.
    """
    manager = _require("statx", _STATX)
    flags = 0 if follow_symlinks else _st.AT_SYMLINK_NOFOLLOW
    if isinstance(path, int):
        # os.stat's checks, fd 0 exempt as there (CPython tests "fd > 0").
        if dir_fd is not None and path > 0:
            raise ValueError("stat: can't specify dir_fd without matching path")
        if not follow_symlinks and path > 0:
            raise ValueError("stat: cannot use fd and follow_symlinks together")
        flags = 0  # fstat: an fd is never a symlink to follow
        dirfd = _args.fileno(path)
        raw = b""
        filename: str | bytes | int = path
        flags |= _st.AT_EMPTY_PATH
    else:
        raw, filename = _args.path(path, "statx")
        dirfd = _args.dir_fd(dir_fd)
    cpath = _args.c_string(raw)
    buf = _st.new_statx()
    res = await _perform(
        manager, _STATX, dirfd, (cpath, buf), addr=_st.addr_of(cpath),
        length=_st.STATX_BASIC_STATS, op_flags=flags, off=_st.addr_of(buf),
    )  # fmt: skip
    if res < 0:
        raise _error(res, filename)
    return _st.stat_result(buf)


async def fsync(fd: FileDescriptor) -> None:
    """Flush a file's data and metadata to disk, as ``os.fsync``.

    ``IORING_OP_FSYNC``, Linux 5.1.

    :raises OSError: ``EBADF``, ``EINVAL`` (an fd that cannot be synced), ``EIO``.
    """
    await _fsync("fsync", fd, 0)


async def fdatasync(fd: FileDescriptor) -> None:
    """Flush a file's data (and the metadata needed to read it), as ``os.fdatasync``.

    ``IORING_OP_FSYNC`` with ``IORING_FSYNC_DATASYNC``, Linux 5.1.

    :raises OSError: as :func:`fsync`.
    """
    await _fsync("fdatasync", fd, _st.IORING_FSYNC_DATASYNC)


async def _fsync(func: str, fd: FileDescriptor, flags: int) -> None:
    manager = _require(func, _FSYNC)
    fdn = _args.fileno(fd)
    res = await _perform(manager, _FSYNC, fdn, None, op_flags=flags)
    if res < 0:
        raise _error(res)


async def fallocate(fd: FileDescriptor, mode: int, offset: int, length: int) -> None:
    """Allocate (or, with ``mode`` flags, punch or zero) a file range, as fallocate(2).

    ``IORING_OP_FALLOCATE``, Linux 5.6. ``mode=0`` is ``os.posix_fallocate``.

    :raises ValueError: ``length`` is negative.
    :raises OSError: ``EINVAL`` for a negative offset or a zero length (as
        ``os.posix_fallocate``), ``EOPNOTSUPP`` for a mode the file system
        lacks, ``ENOSPC``, ``EBADF``...
    """
    manager = _require("fallocate", _FALLOCATE)
    fdn = _args.fileno(fd)
    flags = _args.c_int(mode)
    off = _args.file_offset(offset)
    if off == _args.U64:  # -1 means nothing special here: it is just negative
        raise OSError(errno.EINVAL, os.strerror(errno.EINVAL))
    count = _args.size(length, "negative value for 'length' not allowed")
    res = await _perform(manager, _FALLOCATE, fdn, None, off=off, addr=count, length=flags & _U32)
    if res < 0:
        raise _error(res)


async def unlinkat(
    path: Path, *, dir_fd: FileDescriptor | None = None, rmdir: bool = False
) -> None:
    """Remove a file (``os.unlink``) or, with ``rmdir=True``, an empty directory (``os.rmdir``).

    ``IORING_OP_UNLINKAT``, Linux 5.11.

    :raises OSError: what ``os.unlink``/``os.rmdir`` raise, with the path as
        ``filename`` (``FileNotFoundError``, ``IsADirectoryError``,
        ``NotADirectoryError``, ``OSError(ENOTEMPTY)``...).
    """
    manager = _require("unlinkat", _UNLINKAT)
    raw, filename = _args.path(path, "unlinkat")
    dirfd = _args.dir_fd(dir_fd)
    cpath = _args.c_string(raw)
    flags = _st.AT_REMOVEDIR if rmdir else 0
    res = await _perform(manager, _UNLINKAT, dirfd, cpath, addr=_st.addr_of(cpath), op_flags=flags)
    if res < 0:
        raise _error(res, filename)


async def renameat(
    src: Path,
    dst: Path,
    *,
    src_dir_fd: FileDescriptor | None = None,
    dst_dir_fd: FileDescriptor | None = None,
    flags: int = 0,
) -> None:
    """Rename ``src`` to ``dst``, as ``os.rename`` (renameat2(2) ``flags``).

    ``IORING_OP_RENAMEAT``, Linux 5.11. ``flags`` may hold
    ``RENAME_NOREPLACE`` (1), ``RENAME_EXCHANGE`` (2), ``RENAME_WHITEOUT`` (4).

    :raises OSError: what ``os.rename`` raises, naming both paths
        (``filename`` and ``filename2``).
    """
    manager = _require("renameat", _RENAMEAT)
    raw_src, name_src = _args.path(src, "renameat", "src")
    raw_dst, name_dst = _args.path(dst, "renameat", "dst")
    olddir = _args.dir_fd(src_dir_fd)
    newdir = _args.dir_fd(dst_dir_fd)
    rename_flags = _args.u32(flags, "flags")
    c_src = _args.c_string(raw_src)
    c_dst = _args.c_string(raw_dst)
    res = await _perform(
        manager, _RENAMEAT, olddir, (c_src, c_dst), addr=_st.addr_of(c_src),
        length=newdir & _U32, off=_st.addr_of(c_dst), op_flags=rename_flags,
    )  # fmt: skip
    if res < 0:
        raise _error(res, name_src, name_dst)


async def mkdirat(path: Path, mode: int = 0o777, *, dir_fd: FileDescriptor | None = None) -> None:
    """Create a directory, as ``os.mkdir`` (``mode`` is masked by the umask).

    ``IORING_OP_MKDIRAT``, Linux 5.15.

    :raises OSError: what ``os.mkdir`` raises, with the path as ``filename``
        (``FileExistsError``, ``FileNotFoundError``...).
    """
    manager = _require("mkdirat", _MKDIRAT)
    raw, filename = _args.path(path, "mkdirat")
    perm = _args.u32(mode, "mode")
    dirfd = _args.dir_fd(dir_fd)
    cpath = _args.c_string(raw)
    res = await _perform(manager, _MKDIRAT, dirfd, cpath, addr=_st.addr_of(cpath), length=perm)
    if res < 0:
        raise _error(res, filename)


async def splice(
    fd_in: FileDescriptor,
    off_in: int | None,
    fd_out: FileDescriptor,
    off_out: int | None,
    nbytes: int,
    flags: int = 0,
) -> int:
    """Move up to ``nbytes`` between two fds, one of them a pipe, as ``os.splice``.

    ``IORING_OP_SPLICE``, Linux 5.7. An offset of None uses (and advances)
    that fd's position; a pipe must have None. Returns the bytes moved (0
    at end of input).

    :raises ValueError: ``nbytes`` is negative, or ``flags`` has
        ``SPLICE_F_FD_IN_FIXED`` (io_uring's registered-file flag).
    :raises OSError: what ``os.splice`` raises (``EINVAL`` if neither fd is
        a pipe, ``ESPIPE`` for an offset on a pipe...).
    """
    manager = _require("splice", _SPLICE)
    fdn_in = _args.fileno(fd_in)
    fdn_out = _args.fileno(fd_out)
    o_in = _args.optional_offset(off_in)
    o_out = _args.optional_offset(off_out)
    count = _args.size(nbytes, "negative value for 'nbytes' not allowed")
    splice_flags = _args.u32(flags, "flags")
    if splice_flags & _st.SPLICE_F_FD_IN_FIXED:
        raise ValueError("SPLICE_F_FD_IN_FIXED is not supported (no registered files)")
    res = await _perform(
        manager, _SPLICE, fdn_out, None, addr=o_in, off=o_out,
        length=min(count, _args.MAX_RW_COUNT), op_flags=splice_flags, splice_fd_in=fdn_in,
    )  # fmt: skip
    if res < 0:
        raise _error(res)
    return res


async def poll(fd: FileDescriptor, events: int) -> int:
    """Wait until ``fd`` has one of ``events`` (``select.POLL*`` bits); return its revents.

    ``IORING_OP_POLL_ADD`` (one-shot), Linux 5.1. As with poll(2),
    ``POLLERR``, ``POLLHUP`` and ``POLLNVAL`` are reported even when not
    asked for; other bits the kernel adds unasked (io_uring reports
    ``POLLRDHUP`` to any request) are masked off, and a wakeup with nothing
    left is waited out.

    :raises OSError: ``EBADF`` for an fd that is not open (where
        ``select.poll`` would report ``POLLNVAL``).
    """
    manager = _require("poll", _POLL_ADD)
    fdn = _args.fileno(fd)
    mask = _args.u32(events, "events")
    while True:
        res = await _perform(manager, _POLL_ADD, fdn, None, op_flags=mask)
        if res < 0:
            raise _error(res)
        wanted = res & (mask | _ALWAYS_REPORTED)
        if wanted:
            return wanted


async def nop() -> None:
    """Submit a no-op and wait for its completion: a round trip through the ring.

    ``IORING_OP_NOP``, Linux 5.1. A checkpoint, like ``trio.lowlevel.checkpoint``.
    """
    manager = _require("nop", _NOP)
    res = await _perform(manager, _NOP, -1, None)
    if res < 0:
        raise _error(res)


async def cancel_fd(fd: FileDescriptor) -> int:
    """Cancel every io_uring op in flight on ``fd``; return how many were cancelled.

    ``IORING_OP_ASYNC_CANCEL`` with ``IORING_ASYNC_CANCEL_FD |
    IORING_ASYNC_CANCEL_ALL``, Linux 5.19. The tasks whose ops were
    cancelled get ``OSError(ECANCELED)`` (waiters in ``wait_readable`` too);
    an op whose result had already won keeps it. The fd stays open.

    :raises OSError: ``EINVAL`` on a kernel older than 5.19 (which does not
        know these flags).
    """
    manager = _require("cancel_fd", _ASYNC_CANCEL)
    fdn = _args.fileno(fd)
    flags = _st.IORING_ASYNC_CANCEL_FD | _st.IORING_ASYNC_CANCEL_ALL
    res = await _perform(manager, _ASYNC_CANCEL, fdn, None, op_flags=flags)
    if res == -errno.ENOENT:
        return 0  # nothing matched (5.19 kernels said so; newer ones answer 0)
    if res == -errno.EINVAL:
        raise OSError(
            errno.EINVAL,
            f"{os.strerror(errno.EINVAL)}: IORING_ASYNC_CANCEL_FD needs Linux 5.19+",
        )
    if res < 0:
        raise _error(res)
    return res


def statistics() -> UringStatistics:
    """The running io_uring manager's counters (as ``current_statistics().io_statistics``).

    :raises RuntimeError: outside a run on io_uring.
    """
    return _manager("statistics").statistics()
