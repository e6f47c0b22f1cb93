"""Kernel structs and constants for the native ops (files, sockets, ``lowlevel``).

The struct layouts (``struct statx``, ``msghdr``, ``iovec``, ``cmsghdr``,
``sockaddr_storage``) are declared in ``_ffi_build.py``'s CDEF: cffi checks
each named field against the system headers at build time, so Python never
guesses an offset.

The integer constants are defined here in Python, because they are the
kernel's stable ABI and importing this module must not require the C
extension (``tests/test_lowlevel.py`` checks them against the headers).
"""

from __future__ import annotations

import os
from typing import Any, Final

ffi: Any
lib: Any
try:
    from . import _uring

    ffi = _uring.ffi
    lib = _uring.lib
except ImportError:  # pragma: no cover - the shim is always built by `make install`
    # Without the shim there is no ring, so no op can ever run: every op
    # stops earlier, at "this run is not on io_uring".
    ffi = lib = None

# <fcntl.h> / <linux/fcntl.h>
AT_FDCWD: Final = -100
AT_SYMLINK_NOFOLLOW: Final = 0x100
AT_REMOVEDIR: Final = 0x200
AT_EMPTY_PATH: Final = 0x1000
# <linux/stat.h>: type, mode, nlink, uid, gid, atime, mtime, ctime, ino,
# size, blocks — every field os.stat reports.
STATX_BASIC_STATS: Final = 0x7FF
# <linux/io_uring.h>
IORING_FSYNC_DATASYNC: Final = 1 << 0
IORING_ASYNC_CANCEL_ALL: Final = 1 << 0  # 5.19
IORING_ASYNC_CANCEL_FD: Final = 1 << 1  # 5.19
# splice(2) flag of io_uring only: "fd_in is a registered-file index". We
# register no files, so a caller setting it would name an arbitrary file.
SPLICE_F_FD_IN_FIXED: Final = 1 << 31


def new_uncleared_buffer(size: int) -> Any:
    """A ``char[size]`` C buffer, not zeroed first.

    Only for buffers whose every byte that is read is first written: a
    receive buffer of which we copy out exactly what the kernel reports
    writing. Zeroing a 64 KiB receive buffer (``ffi.new``'s default) costs
    more than the receive itself.
    """
    return _new_uncleared("char[]", size)


_new_uncleared: Any = ffi.new_allocator(should_clear_after_alloc=False) if ffi else None


def addr_of(cdata: Any) -> int:
    """The address of a cdata pointer or array, as the SQE's u64 fields take it."""
    return int(ffi.cast("uintptr_t", cdata))


def new_statx() -> Any:
    """A zeroed ``struct statx`` for the kernel to fill."""
    return ffi.new("struct statx *")


def _times(ts: Any) -> tuple[int, float, int]:
    sec = int(ts.tv_sec)
    nsec = int(ts.tv_nsec)
    # The same double arithmetic CPython's fill_time() does, so the float
    # fields compare equal to os.stat's, not merely close.
    return sec, sec + nsec * 1e-9, sec * 1_000_000_000 + nsec


def stat_result(stx: Any) -> os.stat_result:
    """An ``os.stat_result`` equal, field by field, to what ``os.stat`` returns."""
    a_int, a_float, a_ns = _times(stx.stx_atime)
    m_int, m_float, m_ns = _times(stx.stx_mtime)
    c_int, c_float, c_ns = _times(stx.stx_ctime)
    visible = (
        int(stx.stx_mode),
        int(stx.stx_ino),
        os.makedev(stx.stx_dev_major, stx.stx_dev_minor),
        int(stx.stx_nlink),
        int(stx.stx_uid),
        int(stx.stx_gid),
        int(stx.stx_size),
        a_int,
        m_int,
        c_int,
    )
    # The named-only fields go in by name: their positions differ between
    # Python versions, and a field this Python lacks is simply not there.
    hidden = {
        "st_atime": a_float,
        "st_mtime": m_float,
        "st_ctime": c_float,
        "st_atime_ns": a_ns,
        "st_mtime_ns": m_ns,
        "st_ctime_ns": c_ns,
        "st_blksize": int(stx.stx_blksize),
        "st_blocks": int(stx.stx_blocks),
        "st_rdev": os.makedev(stx.stx_rdev_major, stx.stx_rdev_minor),
    }
    return os.stat_result(visible, hidden)


def new_msghdr(
    name: Any, namelen: int, iov: Any, iovlen: int, control: Any, controllen: int
) -> Any:
    """A ``struct msghdr`` pointing at memory the caller pins alongside it.

    ``name`` and ``control`` may be ``ffi.NULL`` (with a zero length).
    """
    msg = ffi.new("struct msghdr *")
    msg.msg_name = name
    msg.msg_namelen = namelen
    msg.msg_iov = iov
    msg.msg_iovlen = iovlen
    msg.msg_control = control
    msg.msg_controllen = controllen
    return msg
