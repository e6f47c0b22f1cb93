"""``NativeSocket``: a ``trio.socket.SocketType`` whose blocking calls are io_uring ops.

It subclasses Trio's own socket class (``trio._socket._SocketType``), so
everything that is not I/O (``bind``, ``setsockopt``, ``getsockname``,
address resolution, ``repr``...) is Trio's code, and ``isinstance`` checks
in Trio, anyio and user code see a Trio socket.

How one call runs (on a run whose I/O manager is ours):

1. ``checkpoint_if_cancelled()``, then the plain non-blocking system call,
   exactly as Trio does it. If it succeeds (data already there, room in
   the send buffer, a connection already queued) or fails for a reason
   other than "would block", that is the answer, after a
   ``cancel_shielded_checkpoint()``. This also means bad arguments get the
   stdlib's own exception, raised by the stdlib. The benchmark
   ``benchmarks/bench_socket_ops.py`` is why this step exists: see
   ``docs/sockets.md`` for the figures.
2. If it would block, the same call becomes an io_uring op
   (``IORING_OP_RECV``, ``SEND``, ``RECVMSG``, ``SENDMSG``, ``ACCEPT``):
   the kernel waits and performs it, and a cancel is a request the kernel
   answers, so the result wins (see ``docs/cancellation.md``).

``connect`` is Trio's own: the non-blocking ``connect(2)``, then a wait for
writability (a ``POLL_ADD`` on io_uring), then ``SO_ERROR``. ``accept`` on a
listener that has to wait arms one multishot accept
(``IORING_ACCEPT_MULTISHOT``): the kernel then accepts every connection as
it comes into a backlog this socket owns (see ``Acceptor``).

On a run that is not ours (stock Trio, a fallback run) every method is
Trio's own readiness path, so a ``NativeSocket`` works anywhere.
"""

from __future__ import annotations

import socket as _stdlib_socket
from collections import deque
from typing import TYPE_CHECKING, Any, Final

import trio
from trio.lowlevel import cancel_shielded_checkpoint, checkpoint_if_cancelled

from .._core import sockaddr as _sa
from .._core.abi import OP
from .._core.manager import UringIOManager, running_manager
from . import ops
from .acceptor import Acceptor
from .base import _kernel_at_least
from .counts import COUNTS
from .receiving import Receiving
from .sending import Sending

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable
    from types import TracebackType

_ACCEPT: Final = OP["ACCEPT"]

# Private switch for tests and benchmarks: False makes accept single-shot.
_multishot_accept = True

_KERNEL_HAS_MULTISHOT_ACCEPT: Final = _kernel_at_least(5, 19)


class NativeSocket(Receiving, Sending):
    """A Trio socket (``isinstance(s, trio.socket.SocketType)``) on io_uring ops.

    Same methods, signatures, exceptions and checkpoints as the socket
    ``trio.socket.socket()`` returns. On a trio_uring run a call that has to
    wait becomes an io_uring op with result-wins cancellation: a receive
    that completed despite a cancel returns its bytes, an accept returns
    its socket, a send its count; the cancellation lands at the next
    checkpoint. Build one with ``trio_uring.socket.socket()`` (or any Trio
    API once ``trio_uring.run``/``install()`` set the socket factory).
    """

    def __init__(self, sock: _stdlib_socket.socket) -> None:
        super().__init__(sock)
        self._acceptor: Acceptor | None = None

    # -- lifetime ---------------------------------------------------------

    def close(self) -> None:
        """Close the socket; tasks waiting on it get ``trio.ClosedResourceError``.

        Connections a multishot accept took and nobody accepted yet are
        closed too, and bytes received ahead that nobody took are dropped
        (as the kernel drops what a closed socket had not delivered).
        """
        self._stop_accepting()
        super().close()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._stop_accepting()
        return super().__exit__(exc_type, exc_value, traceback)

    def detach(self) -> int:
        """Give up the fd (as ``socket.socket.detach``); a multishot accept stops first."""
        self._stop_accepting()
        return super().detach()

    def __del__(self) -> None:
        # Dropped without close(): don't let the kernel go on accepting or
        # receiving for it.
        if getattr(self, "_acceptor", None) is not None or getattr(self, "_ahead", None):
            self._stop_accepting()

    def _stop_accepting(self) -> None:
        # And receiving ahead: the multishot ops the kernel runs for this fd.
        acceptor, self._acceptor = self._acceptor, None
        if acceptor is not None:
            acceptor.close()
        ahead, self._ahead = self._ahead, None
        if ahead is not None:
            ahead.close()

    def dup(self) -> NativeSocket:
        """Same as :meth:`socket.socket.dup`, as a ``NativeSocket``."""
        return NativeSocket(self._sock.dup())

    def is_readable(self) -> bool:
        """Whether a receive (or an accept) would not block right now."""
        acceptor = self._acceptor
        if acceptor is not None and (acceptor.backlog or acceptor.error):
            return True
        ahead = self._ahead
        if ahead is not None and (ahead.chunks or ahead.error):
            return True
        return super().is_readable()

    # -- accept and connect -----------------------------------------------

    def _wrap_accepted(self, fd: int) -> NativeSocket:
        sock = _stdlib_socket.socket(self._sock.family, self._sock.type, self._sock.proto, fd)
        return NativeSocket(sock)

    def _from_backlog(self, acceptor: Acceptor) -> tuple[NativeSocket, Any]:
        COUNTS["multishot_accepted"] += 1
        conn = self._wrap_accepted(acceptor.backlog.popleft())
        try:
            address = conn.getpeername()
        except OSError:
            # The peer reset the connection before we got here: the kernel
            # no longer reports its address (a multishot accept doesn't
            # return one). The socket still goes to the caller, whose first
            # receive reports the reset, exactly as after accept(2).
            address = _unknown_address(self._sock.family)
        return conn, address

    async def accept(self) -> tuple[NativeSocket, Any]:
        """Like :meth:`socket.socket.accept`, but async; returns a ``NativeSocket``.

        When it has to wait, a multishot ``IORING_OP_ACCEPT`` (5.19+) keeps
        accepting for this listener; the connections it accepted ahead of
        time belong to this socket until handed out (see ``Acceptor``).
        """
        mgr = running_manager()
        if mgr is None:
            sock, address = await self._accept()
            return NativeSocket(sock), address
        acceptor = self._acceptor
        if acceptor is not None and acceptor.mgr is not mgr:
            # Left over from an earlier run: its connections are still ours.
            self._acceptor = None
            fresh = Acceptor(mgr, self._sock.fileno())
            fresh.backlog, acceptor.backlog = acceptor.backlog, deque()
            acceptor.close()
            acceptor = self._acceptor = fresh
        if acceptor is not None and acceptor.backlog:
            await checkpoint_if_cancelled()
            result = self._from_backlog(acceptor)
            await cancel_shielded_checkpoint()
            return result

        use_multishot = (
            _multishot_accept
            and not self._shared
            and _KERNEL_HAS_MULTISHOT_ACCEPT
            and mgr.supports(_ACCEPT)
        )

        def attempt() -> tuple[NativeSocket, Any]:
            sock, address = self._sock.accept()
            return NativeSocket(sock), address

        async def single(mgr: UringIOManager) -> tuple[NativeSocket, Any]:
            fd, name, namelen = await ops.accept(mgr, self._sock.fileno())
            return self._wrap_accepted(fd), _sa.decode(name, namelen)

        async def multishot(mgr: UringIOManager) -> tuple[NativeSocket, Any]:
            if self._acceptor is None:
                self._acceptor = Acceptor(mgr, self._sock.fileno())
            acceptor = self._acceptor
            while True:
                if acceptor.backlog:
                    return self._from_backlog(acceptor)
                if acceptor.error:
                    err, acceptor.error = acceptor.error, 0
                    ops.raise_errno(err)
                if acceptor.closed:
                    raise trio.ClosedResourceError("another task closed this fd")
                acceptor.arm()
                await acceptor.wait()

        native: Callable[[UringIOManager], Awaitable[tuple[NativeSocket, Any]]] | None = None
        if use_multishot:
            native = multishot
        elif self._decodable():
            native = single
        return await self._io(True, attempt, native)

    # connect is Trio's own (inherited): the non-blocking connect(2) first,
    # so that code wrapping or patching the stdlib socket sees the calls it
    # sees on stock Trio, then, while the handshake runs, a wait for
    # writability (one POLL_ADD on io_uring, which consumes nothing, so a
    # cancel or a moved deadline is exact), then SO_ERROR. An
    # IORING_OP_CONNECT would save no system call, and could not be redone
    # after a cancel (the second one fails EALREADY).


def _unknown_address(family: int) -> Any:
    if family == _stdlib_socket.AF_INET:
        return ("0.0.0.0", 0)
    if family == _stdlib_socket.AF_INET6:
        return ("::", 0, 0, 0)
    return ""


class NativeSocketFactory(trio.abc.SocketFactory):
    """The socket factory ``trio_uring.run``/``install()`` give Trio.

    ``trio.socket.socket()`` (and with it ``open_tcp_stream``,
    ``open_tcp_listeners``, ``serve_tcp``, ``open_unix_socket``...) then
    returns ``NativeSocket`` objects.
    """

    def socket(
        self,
        family: _stdlib_socket.AddressFamily | int = _stdlib_socket.AF_INET,
        type: _stdlib_socket.SocketKind | int = _stdlib_socket.SOCK_STREAM,
        proto: int = 0,
    ) -> NativeSocket:
        """A new ``NativeSocket``, as ``trio.socket.socket(family, type, proto)``."""
        return NativeSocket(_stdlib_socket.socket(family, type, proto))

    def __repr__(self) -> str:
        return "<trio_uring NativeSocketFactory>"


FACTORY: Final = NativeSocketFactory()
