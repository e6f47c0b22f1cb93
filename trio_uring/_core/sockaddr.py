"""Socket addresses and ancillary data, encoded and decoded as the stdlib does.

``socket.socket`` turns Python addresses into ``struct sockaddr`` bytes
(``getsockaddrarg``) and back (``makesockaddr``), and ancillary data into a
control buffer of ``cmsghdr`` records and back. ``trio_uring.lowlevel`` works
on raw fds, so it does the same here, byte for byte, for the families the
lowlevel ops support: ``AF_INET``, ``AF_INET6``, ``AF_UNIX`` (and, decoding
only, ``AF_NETLINK`` and a generic ``(family, bytes)`` fallback as CPython
returns for families it does not know).

Layouts (Linux, every architecture): the family is a native-endian u16 at
offset 0; ports and IPv4/IPv6 addresses and the IPv6 flow label are in
network byte order; the IPv6 scope id is native-endian.
"""

from __future__ import annotations

import os
import socket
import struct
import warnings
from typing import Any, Final

import trio

from .args import as_int, c_int, path, source

SOCKADDR_STORAGE_SIZE: Final = 128
_SUN_PATH_OFFSET: Final = 2
_SUN_PATH_SIZE: Final = 108
_IN4: Final = struct.Struct("=H2s4s8x")  # family, port (BE bytes), address
_IN6: Final = struct.Struct("=H2s4s16sI")  # family, port, flowinfo (BE), address, scope id
_NL: Final = struct.Struct("=HxxII")  # family, pad, pid, groups
_CMSG_HDR: Final = struct.Struct("@Nii")  # cmsg_len (size_t), level, type
_CMSG_ALIGN: Final = struct.calcsize("N")  # CMSG_ALIGN rounds to sizeof(size_t)
CMSG_HDR_LEN: Final = socket.CMSG_LEN(0)


def _port(value: Any, func: str) -> int:
    port = as_int(value)
    if not 0 <= port <= 0xFFFF:
        raise OverflowError(f"{func}(): port must be 0-65535.")
    return port


def _host(value: Any) -> str:
    # CPython's idna_converter: str, bytes or bytearray.
    if isinstance(value, str):
        return value
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).decode("ascii")
    raise TypeError(f"str, bytes or bytearray expected, not {type(value).__name__}")


async def _ip_bytes(host: str, family: int) -> bytes:
    """The packed address for ``host``: numeric at once, names through Trio's resolver."""
    if host == "":
        return bytes(4 if family == socket.AF_INET else 16)  # INADDR_ANY / in6addr_any
    if family == socket.AF_INET and host in ("<broadcast>", "255.255.255.255"):
        return b"\xff\xff\xff\xff"
    try:
        return socket.inet_pton(family, host)
    except OSError:
        pass
    # A name (or a scoped IPv6 literal): resolve off the Trio thread, as
    # trio.socket does. gaierror propagates, as from socket.connect.
    infos = await trio.socket.getaddrinfo(host, None, family)
    return socket.inet_pton(family, str(infos[0][4][0]).split("%")[0])


async def encode(family: int, address: Any, func: str) -> bytes:
    """``address`` as a ``struct sockaddr`` of ``family`` (the bytes the kernel reads).

    :raises TypeError, OverflowError, OSError: as ``socket.socket.connect``
        raises them for the same address.
    """
    if family == socket.AF_INET:
        if not isinstance(address, tuple):
            raise TypeError(
                f"{func}(): AF_INET address must be tuple, not {type(address).__name__}"
            )
        if len(address) != 2:
            raise TypeError("AF_INET address must be a pair (host, port)")
        host = _host(address[0])
        port = _port(address[1], func)
        ip = await _ip_bytes(host, family)
        return _IN4.pack(family, port.to_bytes(2, "big"), ip)
    if family == socket.AF_INET6:
        if not isinstance(address, tuple):
            raise TypeError(
                f"{func}(): AF_INET6 address must be tuple, not {type(address).__name__}"
            )
        if not 2 <= len(address) <= 4:
            raise TypeError("AF_INET6 address must be a tuple (host, port[, flowinfo[, scopeid]])")
        host = _host(address[0])
        port = _port(address[1], func)
        flowinfo = as_int(address[2]) if len(address) > 2 else 0
        scope_id = as_int(address[3]) if len(address) > 3 else 0
        if not 0 <= flowinfo <= 0xFFFFF:
            raise OverflowError(f"{func}(): flowinfo must be 0-1048575.")
        if not 0 <= scope_id <= 0xFFFFFFFF:
            raise OverflowError("Python int too large to convert to C unsigned int")
        ip = await _ip_bytes(host, family)
        # As CPython does: the tuple's scope id wins over one in the host.
        return _IN6.pack(family, port.to_bytes(2, "big"), flowinfo.to_bytes(4, "big"), ip, scope_id)
    if family == socket.AF_UNIX:
        if isinstance(address, (bytes, bytearray, memoryview)):
            raw = bytes(address)
        else:
            raw, _ = path(address, func)
        if raw.startswith(b"\0"):
            # Linux abstract namespace: no terminating NUL, length says it all.
            if len(raw) > _SUN_PATH_SIZE:
                raise OSError("AF_UNIX path too long")
            return struct.pack("=H", family) + raw
        if len(raw) >= _SUN_PATH_SIZE:
            raise OSError("AF_UNIX path too long")
        return struct.pack("=H", family) + raw + b"\0"
    raise OSError(f"{func}(): address family {family} is not supported by trio_uring.lowlevel")


def encode_resolved(family: int, address: Any) -> bytes | None:
    """A ``struct sockaddr`` for an address Trio has already resolved, or None.

    The socket path's encoder (``NativeSocket``): synchronous and strict,
    where :func:`encode` resolves names and raises. None means "not a form
    we are sure to encode exactly as the stdlib would": the caller then
    takes Trio's own path, which raises whatever the stdlib raises.
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
                return head + raw if len(raw) <= _SUN_PATH_SIZE else None
            return head + raw + b"\0" if 0 < len(raw) < _SUN_PATH_SIZE else None
    except (ValueError, TypeError, OSError, UnicodeError):
        return None
    return None


def decode(buf: Any, length: int) -> Any:
    """The Python address for the first ``length`` bytes of a sockaddr, as ``makesockaddr``.

    ``None`` for an empty address (a connected peer that has none).
    """
    if length <= 0:
        return None
    data = bytes(buf[0 : min(length, SOCKADDR_STORAGE_SIZE)])
    (family,) = struct.unpack_from("=H", data)
    if family == socket.AF_INET:
        _, port, ip = _IN4.unpack_from(data.ljust(_IN4.size, b"\0"))
        return (socket.inet_ntop(family, ip), int.from_bytes(port, "big"))
    if family == socket.AF_INET6:
        _, port, flow, ip, scope = _IN6.unpack_from(data.ljust(_IN6.size, b"\0"))
        return (
            socket.inet_ntop(family, ip),
            int.from_bytes(port, "big"),
            int.from_bytes(flow, "big"),
            scope,
        )
    if family == socket.AF_UNIX:
        sun_path = data[_SUN_PATH_OFFSET:]
        if sun_path[:1] == b"\0":
            return sun_path  # abstract: every byte counts
        # A regular path: up to the first NUL, decoded as CPython does.
        return os.fsdecode(sun_path.split(b"\0", 1)[0])
    if family == socket.AF_NETLINK:
        _, pid, groups = _NL.unpack_from(data.ljust(_NL.size, b"\0"))
        return (pid, groups)
    # CPython's fallback for a family it does not know: (family, sa_data).
    return (family, data[2:16].ljust(14, b"\0"))


def _align(n: int) -> int:
    return (n + _CMSG_ALIGN - 1) & ~(_CMSG_ALIGN - 1)


def encode_ancdata(ancdata: Any) -> bytes:
    """A control buffer for ``sendmsg``: one ``cmsghdr`` record per (level, type, data).

    Each record takes ``CMSG_SPACE(len(data))`` bytes, padding zeroed, as
    CPython builds it.
    """
    try:
        items = list(ancdata)
    except TypeError:
        raise TypeError("sendmsg() argument 2 must be an iterable") from None
    out = bytearray()
    for item in items:
        try:
            count = len(item)
        except TypeError:
            raise TypeError(
                "[sendmsg() ancillary data items]() argument must be 3-item sequence, "
                f"not {type(item).__name__}"
            ) from None
        if count != 3:
            raise TypeError(
                "[sendmsg() ancillary data items]() argument must be sequence of length 3, "
                f"not {count}"
            )
        level, kind, data = item
        level = c_int(level)
        kind = c_int(kind)
        # source() checks it as sendmsg would; the bytes are copied out
        # before the temporary pin (and its buffer export) goes away.
        pinned = source(data)
        payload = pinned.view.tobytes()
        pinned.release()
        record = _CMSG_HDR.pack(socket.CMSG_LEN(len(payload)), level, kind)
        record = record.ljust(CMSG_HDR_LEN, b"\0") + payload
        out += record.ljust(socket.CMSG_SPACE(len(payload)), b"\0")
    return bytes(out)


def decode_ancdata(control: Any, controllen: int) -> list[tuple[int, int, bytes]]:
    """The ``(level, type, data)`` list ``socket.recvmsg`` makes of a control buffer.

    Walks the records as glibc's ``CMSG_FIRSTHDR``/``CMSG_NXTHDR`` do and
    clips a truncated record's data to what is there, with CPython's
    ``RuntimeWarning``.
    """
    buf = bytes(control[0:controllen])
    items: list[tuple[int, int, bytes]] = []
    if controllen < _CMSG_HDR.size:
        return items
    off = 0
    while True:
        cmsg_len, level, kind = _CMSG_HDR.unpack_from(buf, off)
        if cmsg_len < CMSG_HDR_LEN:
            warnings.warn(
                "received malformed or improperly-truncated ancillary data",
                RuntimeWarning,
                stacklevel=3,
            )
            break
        data_len = cmsg_len - CMSG_HDR_LEN
        space = max(0, controllen - off - CMSG_HDR_LEN)
        if space < data_len:
            warnings.warn(
                "received malformed or improperly-truncated ancillary data",
                RuntimeWarning,
                stacklevel=3,
            )
            data_len = space
        start = off + CMSG_HDR_LEN
        items.append((level, kind, buf[start : start + data_len]))
        nxt = off + _align(cmsg_len)
        if nxt + _CMSG_HDR.size > controllen:
            break
        (next_len,) = struct.unpack_from("@N", buf, nxt)
        if nxt + _align(next_len) > controllen:
            break
        off = nxt
    return items
