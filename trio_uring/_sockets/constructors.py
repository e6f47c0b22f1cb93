"""The socket constructors that bypass Trio's socket factory, native on our runs.

Trio's socket factory (``trio.socket.set_custom_socket_factory``), which
``trio_uring.run`` and ``install()`` set to ours, makes ``trio.socket.socket()``
and every API built on it return ``NativeSocket`` objects. Three of
``trio.socket``'s constructors never consult it: ``socketpair``,
``fromfd`` and ``from_stdlib_socket`` build Trio's own socket class
directly. Their sockets still work on our manager, through its readiness
path (``POLL_ADD``), but that path is the slow one here: cancelling 10,000
receives on ``socketpair()`` sockets took about 1.2x stock Trio's time,
where native sockets take about 0.65x (``benchmarks/bench_cancel.py
--case socketpair``; an io_uring poll's cancel is an ``ASYNC_CANCEL`` and a
completion, epoll's one ``epoll_ctl``).

So ``install()`` puts wrappers in their place on the ``trio.socket``
module: on a run of ours with native sockets on, they return native
sockets (same arguments, same checks and exceptions, as Trio's); anywhere
else (outside a run, on stock Trio, with ``native_sockets=False``) they are
Trio's own. Code that imported the names before ``install()`` keeps
Trio's.
"""

from __future__ import annotations

import functools
import socket as _stdlib_socket
from typing import TYPE_CHECKING, Any, SupportsIndex

import trio
from trio._socket import _sniff_sockopts_for_fileno

from .._core.manager import running_manager
from .socket import NativeSocket

if TYPE_CHECKING:
    from collections.abc import Callable

_installed = False


def socketpair(
    family: int | _stdlib_socket.AddressFamily | None = None,
    type: _stdlib_socket.SocketKind | int = _stdlib_socket.SOCK_STREAM,
    proto: int = 0,
) -> tuple[NativeSocket, NativeSocket]:
    """Like ``trio.socket.socketpair``: a connected pair of native sockets."""
    left, right = _stdlib_socket.socketpair(family, type, proto)
    return NativeSocket(left), NativeSocket(right)


def fromfd(
    fd: SupportsIndex,
    family: _stdlib_socket.AddressFamily | int = _stdlib_socket.AF_INET,
    type: _stdlib_socket.SocketKind | int = _stdlib_socket.SOCK_STREAM,
    proto: int = 0,
) -> NativeSocket:
    """Like ``trio.socket.fromfd``: a native socket on a duplicate of ``fd``."""
    family, type, proto = _sniff_sockopts_for_fileno(family, type, proto, fd.__index__())
    return NativeSocket(_stdlib_socket.fromfd(fd, family, type, proto))


def from_stdlib_socket(sock: _stdlib_socket.socket) -> NativeSocket:
    """Like ``trio.socket.from_stdlib_socket``: wrap a stdlib socket the caller may close itself.

    The caller keeps ``sock`` and may close it directly, so the native
    socket keeps no op in the kernel that no task waits on (``_share``).
    """
    native = NativeSocket(sock)
    native._share()
    return native


def _on_native_run() -> bool:
    """Whether the current thread runs a trio_uring run with native sockets on."""
    try:
        mgr = running_manager()
    except RuntimeError:
        return False  # outside a run: Trio's sockets, as the factory would
    return mgr is not None and mgr._settings.native_sockets


def _either(native: Callable[..., Any], trios: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(trios)
    def constructor(*args: Any, **kwargs: Any) -> Any:
        return (native if _on_native_run() else trios)(*args, **kwargs)

    return constructor


def install() -> None:
    """Put the three wrappers on ``trio.socket`` (process-wide, idempotent)."""
    global _installed
    if _installed:
        return
    module: Any = trio.socket
    for name, native in (
        ("socketpair", socketpair),
        ("fromfd", fromfd),
        ("from_stdlib_socket", from_stdlib_socket),
    ):
        setattr(module, name, _either(native, getattr(module, name)))
    _installed = True
