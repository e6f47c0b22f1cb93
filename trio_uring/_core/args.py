"""Argument checks for the native ops: nothing bad ever reaches the kernel.

``trio_uring.lowlevel`` (and the files layer, where ``os`` is its model)
calls these before it builds an SQE. They turn Python arguments into the
exact integers and pinned C memory the kernel will see,
and refuse everything else with the exception (type and words) the
equivalent ``os``/``socket`` call raises, so callers can swap one for the
other. The one place we are stricter than the stdlib is a read-only
*target* buffer (``bytes`` handed to ``readv``): it is always a
``TypeError`` here, as ``socket.recv_into`` does.

Why each check matters for memory safety: the kernel writes ``length``
bytes at ``addr`` some time later, from another context. A length larger
than the buffer, a non-contiguous view (whose bytes are not one block) or a
read-only object (``bytes`` may be shared, interned, cached) would let it
write where Python does not expect. ``ffi.from_buffer`` keeps a buffer
export on the object for as long as the cdata lives, and the cdata lives in
the op record until the CQE: a pinned ``bytearray`` cannot even be resized
meanwhile (Python raises ``BufferError``).
"""

from __future__ import annotations

import errno
import operator
import os
from typing import TYPE_CHECKING, Any, Final

from .structs import AT_FDCWD, addr_of, ffi

if TYPE_CHECKING:
    from .types import HasFileno

U64: Final = 2**64 - 1
"""``(u64)-1``: "no offset" / "the file position" in an SQE's ``off`` field."""
_I64_MAX: Final = 2**63 - 1
_INT_MAX: Final = 2**31 - 1
_U32_MAX: Final = 2**32 - 1
# Linux clamps every read/write/send/recv/splice to MAX_RW_COUNT
# (INT_MAX rounded down to a page). Clamping here keeps a huge size from
# wrapping the 32-bit ``len`` field of the SQE into a small one.
MAX_RW_COUNT: Final = _INT_MAX & ~4095
# Linux's UIO_MAXIOV: more iovecs than this and readv/writev fail EINVAL.
IOV_MAX: Final = 1024


def as_int(value: Any) -> int:
    """``value`` as an int, with the stdlib's TypeError for floats, strings..."""
    # operator.index is what the os/socket argument parsers use, so the
    # message is theirs: "'float' object cannot be interpreted as an integer".
    return operator.index(value)


def fileno(fd: int | HasFileno) -> int:
    """A file descriptor from an int or an object with ``fileno()``, as ``os.fsync`` takes it.

    :raises TypeError: neither an int nor an object with ``fileno()``.
    :raises ValueError: a negative number (a closed ``socket.socket`` says -1).
    :raises OverflowError: larger than a C int.
    """
    if type(fd) is int and 0 <= fd <= _INT_MAX:
        return fd  # the common case, on every op's path
    if isinstance(fd, int):
        value = int(fd)
    else:
        method = getattr(fd, "fileno", None)
        if method is None:
            raise TypeError("argument must be an int, or have a fileno() method.")
        value = method()
        if not isinstance(value, int):
            raise TypeError("fileno() returned a non-integer")
        value = int(value)
    if value < 0:
        # The words of os.fsync / select.epoll for the same mistake.
        raise ValueError(f"file descriptor cannot be a negative integer ({value})")
    if value > _INT_MAX:
        raise OverflowError("Python int too large to convert to C int")
    return value


def os_fd(fd: int | HasFileno) -> int:
    """An fd as ``os.read``/``os.pread``/``os.close`` take it: a negative int is ``EBADF``.

    Those parse the fd as a plain C int and let the kernel refuse a
    negative one; objects with ``fileno()`` are checked as :func:`fileno`.
    """
    if type(fd) is int and 0 <= fd <= _INT_MAX:
        return fd
    if isinstance(fd, int) and -_INT_MAX - 1 <= fd < 0:
        raise OSError(errno.EBADF, os.strerror(errno.EBADF))
    return fileno(fd)


def dir_fd(value: int | HasFileno | None) -> int:
    """The ``dirfd`` of an ``*at`` op: ``AT_FDCWD`` for None, else a checked fd.

    An int goes to the kernel as it is, as ``os.open(dir_fd=...)`` passes it
    (a negative one is harmless: ``EBADF``, or ignored for an absolute path).
    """
    if value is None:
        return AT_FDCWD
    if isinstance(value, int):
        return c_int(value)
    return fileno(value)


def size(value: Any, message: str) -> int:
    """A byte count: an int >= 0 (``ValueError(message)`` if negative)."""
    if type(value) is int and 0 <= value <= _I64_MAX:
        return value
    number = as_int(value)
    if not -_I64_MAX - 1 <= number <= _I64_MAX:
        raise OverflowError("Python int too large to convert to C ssize_t")
    if number < 0:
        raise ValueError(message)
    return number


def file_offset(value: Any) -> int:
    """An ``offset`` argument for read/write: -1 (file position) or a position >= 0.

    Returned as the u64 the SQE carries. Other negatives fail like
    ``os.pread`` does (``EINVAL``); too large fails like it too.
    """
    if type(value) is int and 0 <= value <= _I64_MAX:
        return value
    number = as_int(value)
    if number == -1:
        return U64
    if not -_I64_MAX - 1 <= number <= _I64_MAX:
        raise OverflowError("Python int too large to convert to C long")
    if number < 0:
        raise OSError(errno.EINVAL, os.strerror(errno.EINVAL))
    return number


def optional_offset(value: Any) -> int:
    """An offset of ``splice``: None means "no offset" (the SQE's -1)."""
    if value is None:
        return U64
    number = as_int(value)
    if number < -_I64_MAX - 1:
        raise OverflowError("Python int too large to convert to C long")
    if number < 0:
        # os.splice hands a negative offset to the kernel, which says EINVAL;
        # here -1 would mean "no offset", so it must be refused ourselves.
        raise OSError(errno.EINVAL, os.strerror(errno.EINVAL))
    if number > _I64_MAX:
        raise OverflowError("Python int too large to convert to C long")
    return number


def u32(value: Any, what: str) -> int:
    """An int that must fit the SQE's unsigned 32-bit field ``what``.

    Refused in the words of the stdlib's ``unsigned int`` converter (what
    ``os.splice`` says of its ``flags``, ``select.poll`` of its events).
    """
    number = as_int(value)
    if number < 0:
        raise ValueError(f"value must be positive ({what}: {number})")
    if number > _U32_MAX:
        raise OverflowError(f"Python int too large for C unsigned int ({what})")
    return number


def mode(value: Any) -> int:
    """A permission ``mode``, as ``os.open``/``os.mkdir`` parse it: any C int (masked by Linux)."""
    return c_int(value) & _U32_MAX


def c_int(value: Any) -> int:
    """An int that must fit a C ``int`` (flags, modes), as the stdlib parses them."""
    number = as_int(value)
    if not -_INT_MAX - 1 <= number <= _INT_MAX:
        raise OverflowError("Python int too large to convert to C int")
    return number


class Pinned:
    """One buffer made ready for the kernel: the object, its view, the cdata, the address.

    The object, the view, the cdata and the ``Pinned`` itself go into the
    op's pins; ``addr`` and ``nbytes`` go into the SQE.

    The cdata holds a buffer export on the view until it is released. The
    export must not outlive the op: CPython's collector cannot clear a
    memoryview that still has an export, and when such a view and the cdata
    holding the export end up in the same cyclic garbage (frames of a
    finished task, a traceback stored in a local), freeing them crashed the
    interpreter. So ``release()`` drops the export as soon as the kernel is
    done (``lowlevel`` calls it once the op's CQE has arrived), and the
    finalizer does it for a ``Pinned`` that never reached the kernel. The
    finalizer is safe: while an op is in flight its record holds this
    object, so it cannot be garbage; and the collector runs finalizers
    before it clears anything.
    """

    __slots__ = ("addr", "cdata", "nbytes", "obj", "view")

    def __init__(self, obj: Any, view: memoryview, cdata: Any) -> None:
        self.obj = obj
        self.view = view
        self.cdata = cdata
        self.nbytes = view.nbytes
        self.addr = addr_of(cdata)

    def pins(self) -> tuple[Any, memoryview, Any, Pinned]:
        """What the op record must hold until the CQE."""
        return (self.obj, self.view, self.cdata, self)

    def release(self) -> None:
        """Drop the buffer export (idempotent). Only once the kernel is done with it."""
        cdata, self.cdata = self.cdata, None
        if cdata is not None:
            ffi.release(cdata)
            self.view.release()

    def __del__(self) -> None:
        self.release()


def source(data: Any) -> Pinned:
    """A buffer the kernel will read (write/send): any C-contiguous bytes-like object.

    :raises TypeError: not bytes-like (the stdlib's words).
    :raises BufferError: not C-contiguous (the stdlib's words).
    """
    try:
        view = memoryview(data)
    except TypeError:
        raise TypeError(f"a bytes-like object is required, not '{type(data).__name__}'") from None
    if not view.c_contiguous:
        raise BufferError("memoryview: underlying buffer is not C-contiguous")
    return Pinned(data, view, ffi.from_buffer(view))


def target(buffer: Any, func: str, arg: str) -> Pinned:
    """A buffer the kernel will write (readinto/recv_into): writable and C-contiguous.

    :raises TypeError: read-only (``bytes``), not a buffer, or not
        C-contiguous, with the words ``socket.recv_into`` uses.
    """
    try:
        view = memoryview(buffer)
    except TypeError:
        view = None
    except ValueError:
        # A released memoryview: socket.recv_into calls it the wrong type,
        # os.readv lets memoryview's own ValueError through.
        if not func.startswith("recv"):
            raise
        view = None
    if view is None or view.readonly or not view.c_contiguous:
        raise TypeError(
            f"{func}() argument '{arg}' must be read-write bytes-like object, "
            f"not {type(buffer).__name__}"
        )
    return Pinned(buffer, view, ffi.from_buffer(view, require_writable=True))


class IovecArray:
    """A ``struct iovec[]`` over a list of buffers, with everything it points into."""

    __slots__ = ("addr", "array", "buffers", "count", "nbytes")

    def __init__(self, buffers: list[Pinned]) -> None:
        self.buffers = buffers
        self.count = len(buffers)
        # ffi.new never returns NULL; for zero buffers a 1-slot array keeps
        # the address valid (the kernel reads none of it).
        self.array = ffi.new("struct iovec[]", max(1, self.count))
        total = 0
        for i, buf in enumerate(buffers):
            self.array[i].iov_base = buf.cdata
            self.array[i].iov_len = buf.nbytes
            total += buf.nbytes
        self.nbytes = total
        self.addr = addr_of(self.array)

    def pins(self) -> tuple[Any, list[tuple[Any, memoryview, Any, Pinned]]]:
        """The iovec array and every buffer it points into."""
        return (self.array, [b.pins() for b in self.buffers])


def _buffer_sequence(buffers: Any, func: str) -> list[Any]:
    # A single buffer is a sequence (of ints) too; refusing it here gives a
    # clear message instead of "a bytes-like object is required, not 'int'".
    if isinstance(buffers, (str, bytes, bytearray, memoryview)):
        raise TypeError(
            f"{func}() argument 'buffers' must be a sequence of buffers (bytes-like objects), "
            f"not {type(buffers).__name__}"
        )
    try:
        items = list(buffers)
    except TypeError:
        raise TypeError(f"{func}() argument 'buffers' must be a sequence") from None
    if len(items) > IOV_MAX:
        # What the kernel answers for more than UIO_MAXIOV (and os.readv with it).
        raise OSError(errno.EINVAL, os.strerror(errno.EINVAL))
    return items


def source_iovecs(buffers: Any, func: str) -> IovecArray:
    """iovecs over buffers the kernel will read (writev, sendmsg)."""
    return IovecArray([source(b) for b in _buffer_sequence(buffers, func)])


def target_iovecs(buffers: Any, func: str) -> IovecArray:
    """iovecs over buffers the kernel will write (readv): each writable, contiguous."""
    return IovecArray([target(b, func, "buffers") for b in _buffer_sequence(buffers, func)])


def path(value: Any, func: str, arg: str = "path") -> tuple[bytes, str | bytes]:
    """A path as ``os`` functions take it: str, bytes or ``os.PathLike``.

    Returns the encoded bytes (no NUL yet) and what error messages name
    (``os.fspath`` of it, as ``os.open`` reports it).

    :raises TypeError: another type (``bytearray`` included).
    :raises ValueError: an embedded NUL byte.
    """
    try:
        name = os.fspath(value)
    except TypeError:
        raise TypeError(
            f"{func}: path should be string, bytes or os.PathLike, not {type(value).__name__}"
        ) from None
    encoded = os.fsencode(name)
    if b"\0" in encoded:
        # The stdlib's two messages: str paths fail in the encoder, bytes
        # paths in the argument parser, which names the function.
        if isinstance(name, str):
            raise ValueError("embedded null byte")
        raise ValueError(f"{func}: embedded null character in {arg}")
    return encoded, name


def c_string(data: bytes) -> Any:
    """A NUL-terminated ``char[]`` holding ``data``, for the op's pins."""
    return ffi.new("char[]", data)
