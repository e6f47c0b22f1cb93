"""Native sockets: Trio sockets whose waiting calls are io_uring operations.

The same constructors as ``trio.socket``, returning ``NativeSocket``
objects (which are ``trio.socket.SocketType`` instances)::

    from trio_uring import socket as usocket

    sock = usocket.socket()  # AF_INET, SOCK_STREAM
    await sock.connect(("127.0.0.1", 8000))

You rarely need this module: ``trio_uring.run`` and ``install()`` make
``trio.socket.socket()`` (and every high-level Trio API built on it) return
native sockets already. Outside a trio_uring run these sockets fall back
to Trio's readiness path, so they work anywhere.
"""

from __future__ import annotations

import socket as _stdlib_socket

import attrs
from trio._socket import _sniff_sockopts_for_fileno

from ._sockets.constructors import from_stdlib_socket, fromfd, socketpair
from ._sockets.counts import COUNTS
from ._sockets.socket import FACTORY, NativeSocket, NativeSocketFactory

__all__ = [
    "NativeSocket",
    "NativeSocketFactory",
    "SocketStatistics",
    "from_stdlib_socket",
    "fromfd",
    "socket",
    "socketpair",
    "statistics",
]


@attrs.frozen
class SocketStatistics:
    """Process-wide counts of what native sockets did (since the process started)."""

    sockets: int
    """``NativeSocket`` objects created."""
    direct: int
    """Calls answered by the non-blocking system call tried first (no wait)."""
    ops: int
    """Calls that waited as an io_uring op."""
    multishot_armed: int
    """Multishot accepts started (one serves many connections)."""
    multishot_accepted: int
    """Connections handed out from a multishot accept's backlog."""
    ahead_armed: int
    """Multishot receives armed to receive ahead (``data_path="batched"``)."""
    ahead_chunks: int
    """Chunks those receives queued before the program asked."""


def statistics() -> SocketStatistics:
    """What native sockets did in this process so far."""
    return SocketStatistics(**COUNTS)


def socket(
    family: _stdlib_socket.AddressFamily | int = _stdlib_socket.AF_INET,
    type: _stdlib_socket.SocketKind | int = _stdlib_socket.SOCK_STREAM,
    proto: int = 0,
    fileno: int | None = None,
) -> NativeSocket:
    """Create a native socket, like ``trio.socket.socket`` (and :class:`socket.socket`).

    With ``fileno``, the family, type and protocol are read from the fd
    when not given, as Trio does.
    """
    if fileno is None:
        return FACTORY.socket(family, type, proto)
    family, type, proto = _sniff_sockopts_for_fileno(family, type, proto, fileno)
    return NativeSocket(_stdlib_socket.socket(family, type, proto, fileno))
