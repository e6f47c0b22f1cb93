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

``connect`` is always an op (``IORING_OP_CONNECT``): there is no useful
synchronous attempt, a non-blocking connect only starts the handshake.
``accept`` on a listener that has to wait arms one multishot accept
(``IORING_ACCEPT_MULTISHOT``): the kernel then accepts every connection as
it comes into a backlog this socket owns (see ``_Acceptor``).

On a run that is not ours (stock Trio, a fallback run) every method is
Trio's own readiness path, so a ``NativeSocket`` works anywhere.
"""

from __future__ import annotations

import errno
import os
import socket as _stdlib_socket
from collections import deque
from functools import partial
from typing import TYPE_CHECKING, Any, Final, TypeVar

import outcome
import trio
from trio._socket import _SocketType
from trio.lowlevel import (
    Abort,
    cancel_shielded_checkpoint,
    checkpoint_if_cancelled,
    current_task,
    reschedule,
    wait_task_rescheduled,
)

from . import _lowlevel_sockaddr as _sa
from . import _socket_ops as ops
from ._abi import OP
from ._manager import UringIOManager, running_manager

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Iterable
    from types import TracebackType

    from trio.lowlevel import Task

T = TypeVar("T")
_Ancdata = list[tuple[int, int, bytes]]

_ACCEPT: Final = OP["ACCEPT"]
_IORING_ACCEPT_MULTISHOT: Final = 1  # sqe->ioprio flag, Linux 5.19
# Connections the kernel may accept ahead of the program before we pause
# the multishot accept (the kernel's own listen queue takes over then).
ACCEPT_BACKLOG_LIMIT: Final = 128
# Errors a non-blocking TCP connect reports later, through SO_ERROR: Trio
# words those "Error connecting to <address>: ...", and so do we.
_ASYNC_CONNECT_ERRNOS: Final = frozenset(
    {errno.ECONNREFUSED, errno.ETIMEDOUT, errno.EHOSTUNREACH, errno.ECONNRESET,
     errno.ECONNABORTED, errno.ENETUNREACH}
)  # fmt: skip
_BUSY_MESSAGE: Final = "another task is already reading / writing this fd"
_MSG_WAITALL: Final = _stdlib_socket.MSG_WAITALL

# recv() returns new bytes, so on the op path the kernel receives into a C
# buffer and the data is copied once more into the bytes. For a few KiB that
# costs less than the system call the op saves; for bulk data it costs more
# (``docs/sockets.md``). So a socket whose last waiting receive brought more
# than this many bytes waits for readiness and calls recv(2) itself next
# time, until a receive is small again.
BULK_RECEIVE_BYTES: Final = 32 * 1024

# Private switch for tests and benchmarks: False makes accept single-shot.
_multishot_accept = True

# Process-wide counters behind trio_uring.socket.statistics(): cheap enough
# for every call, and they let a test prove native sockets were in use.
COUNTS: Final = {"sockets": 0, "direct": 0, "ops": 0, "multishot_armed": 0, "multishot_accepted": 0}


def _kernel_at_least(major: int, minor: int) -> bool:
    try:
        parts = os.uname().release.split(".")
        return (int(parts[0]), int(parts[1].split("-")[0])) >= (major, minor)
    except (ValueError, IndexError):
        return False


_KERNEL_HAS_MULTISHOT_ACCEPT: Final = _kernel_at_least(5, 19)


def _listify(items: Any) -> Any:
    """``list(items)`` if iterable, else ``items`` unchanged for the stdlib to reject.

    The stdlib call made first may consume an iterator; the op after it
    needs the same items again. A non-iterable is passed on as it is so
    that the exception is the stdlib's own.
    """
    try:
        return list(items)
    except TypeError:
        return items


def _byte_view(buffer: Any, nbytes: int) -> memoryview:
    view = memoryview(buffer).cast("B")
    return view[:nbytes] if nbytes else view


class _Acceptor:
    """One multishot accept on a listening socket, and the connections it accepted.

    The kernel accepts each incoming connection and posts its fd in a CQE;
    the manager hands each CQE to ``consume``. The fds wait in ``backlog``
    until ``accept()`` takes them. This object owns them: closing the
    listener (or the run ending) closes every fd not yet handed out, and a
    CQE that arrives after that is closed on arrival. So no accepted
    connection is ever leaked, and none is left established with nobody to
    serve it.
    """

    def __init__(self, mgr: UringIOManager, fd: int) -> None:
        self.mgr = mgr
        self.fd = fd
        self.backlog: deque[int] = deque()
        self.op: Any = None
        self.error = 0
        self.waiter: Task | None = None
        self.closed = False

    def consume(self, res: int, more: bool) -> None:
        """Called by the manager for each CQE of the multishot op."""
        if not more:
            self.op = None
        if res >= 0:
            if self.closed:
                os.close(res)
                return
            self.backlog.append(res)
            if len(self.backlog) >= ACCEPT_BACKLOG_LIMIT and self.op is not None:
                # Nobody is taking them: stop accepting ahead of the program.
                self.mgr.cancel_multishot(self.op)
        elif res != -errno.ECANCELED:
            self.error = res  # EMFILE and friends: the next accept() raises it
        self._wake()

    def _wake(self) -> None:
        task, self.waiter = self.waiter, None
        if task is not None:
            reschedule(task)

    def arm(self) -> None:
        """Start the multishot accept unless it is running."""
        if self.op is None and not self.closed:
            COUNTS["multishot_armed"] += 1
            self.op = self.mgr.start_multishot(
                _ACCEPT, self.fd, None, self.consume,
                op_flags=ops.ACCEPT_FLAGS, ioprio=_IORING_ACCEPT_MULTISHOT,
            )  # fmt: skip

    async def wait(self) -> None:
        """Park until a connection or an error arrives. Cancelling it consumes nothing."""
        self.waiter = current_task()

        def abort(_: Callable[[], Any]) -> Abort:
            self.waiter = None
            return Abort.SUCCEEDED

        await wait_task_rescheduled(abort)

    def close(self) -> None:
        """Stop accepting, close every connection not handed out, wake the waiter."""
        if self.closed:
            return
        self.closed = True
        if self.op is not None:
            self.mgr.cancel_multishot(self.op)
        while self.backlog:
            os.close(self.backlog.popleft())
        task, self.waiter = self.waiter, None
        if task is not None:
            reschedule(task, outcome.Error(trio.ClosedResourceError("another task closed this fd")))

    def __del__(self) -> None:
        # The listener was dropped without close(): its connections go too.
        while getattr(self, "backlog", None):
            os.close(self.backlog.popleft())


class NativeSocket(_SocketType):
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
        COUNTS["sockets"] += 1
        self._reading = False
        self._writing = False
        # Set while this socket streams bulk data (see recv): its receives
        # that have to wait take the readiness path, which copies once.
        self._bulk_receiver = False
        self._acceptor: _Acceptor | None = None

    # -- lifetime ---------------------------------------------------------

    def close(self) -> None:
        """Close the socket; tasks waiting on it get ``trio.ClosedResourceError``.

        Connections a multishot accept took and nobody accepted yet are closed too.
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
        # Dropped without close(): don't let the kernel go on accepting for it.
        if getattr(self, "_acceptor", None) is not None:
            self._stop_accepting()

    def _stop_accepting(self) -> None:
        acceptor, self._acceptor = self._acceptor, None
        if acceptor is not None:
            acceptor.close()

    def dup(self) -> NativeSocket:
        """Same as :meth:`socket.socket.dup`, as a ``NativeSocket``."""
        return NativeSocket(self._sock.dup())

    def is_readable(self) -> bool:
        """Whether a receive (or an accept) would not block right now."""
        acceptor = self._acceptor
        if acceptor is not None and (acceptor.backlog or acceptor.error):
            return True
        return super().is_readable()

    # -- the common path --------------------------------------------------

    async def _io(
        self,
        reading: bool,
        attempt: Callable[[], T],
        native: Callable[[UringIOManager], Awaitable[T]] | None,
    ) -> T:
        """Try ``attempt`` (the non-blocking stdlib call); if it would block, run ``native``.

        ``native`` None (a family whose addresses we don't decode) waits for
        readiness and retries instead, as Trio does. The attempt is Trio's
        own first step (``_nonblocking_helper``) on any run, so which
        manager runs is looked up only once the call has to wait.
        """
        await checkpoint_if_cancelled()
        try:
            result = attempt()
        except BlockingIOError:
            return await self._wait(reading, attempt, native)
        except BaseException:
            await cancel_shielded_checkpoint()
            raise
        COUNTS["direct"] += 1
        await cancel_shielded_checkpoint()
        return result

    async def _wait(
        self,
        reading: bool,
        attempt: Callable[[], T],
        native: Callable[[UringIOManager], Awaitable[T]] | None,
    ) -> T:
        """The call would block: run ``native`` as an op (or wait for readiness and retry)."""
        mgr = running_manager()
        if native is None or mgr is None:
            # Trio's own second step; on a run that is not ours, always.
            wait = trio.lowlevel.wait_readable if reading else trio.lowlevel.wait_writable
            while True:
                await wait(self._sock)
                try:
                    return attempt()
                except BlockingIOError:
                    pass
        # Trio lets one task at a time wait to read and one to write on a
        # socket (BusyResourceError otherwise); an op must keep that rule.
        if (self._reading if reading else self._writing) is True:
            raise trio.BusyResourceError(_BUSY_MESSAGE)
        if reading:
            self._reading = True
        else:
            self._writing = True
        COUNTS["ops"] += 1
        try:
            return await native(mgr)
        finally:
            if reading:
                self._reading = False
            else:
                self._writing = False

    # -- receiving --------------------------------------------------------

    async def recv(self, buflen: int, flags: int = 0, /) -> bytes:
        """Like :meth:`socket.socket.recv`, but async (``IORING_OP_RECV`` when it waits)."""
        # _io written out: recv and send are every stream's hot path, and
        # this saves a coroutine frame and two closures per call.
        await checkpoint_if_cancelled()
        try:
            data = self._sock.recv(buflen, flags)
        except BlockingIOError:
            return await self._recv_waiting(buflen, flags)
        except BaseException:
            await cancel_shielded_checkpoint()
            raise
        COUNTS["direct"] += 1
        await cancel_shielded_checkpoint()
        return data

    async def _recv_waiting(self, buflen: int, flags: int) -> bytes:
        """``recv`` once the direct attempt would block (also ``SocketStream``'s way in)."""
        attempt = lambda: self._sock.recv(buflen, flags)  # noqa: E731
        return await self._wait(True, attempt, partial(self._recv_op, buflen, flags))

    async def _recv_op(self, buflen: int, flags: int, mgr: UringIOManager) -> bytes:
        if self._bulk_receiver:
            data = await self._recv_when_readable(mgr, buflen, flags)
        else:
            data = await ops.recv(mgr, self._sock.fileno(), buflen, flags)
        self._bulk_receiver = len(data) > BULK_RECEIVE_BYTES
        return data

    async def _recv_when_readable(self, mgr: UringIOManager, buflen: int, flags: int) -> bytes:
        # Trio's own way: a poll (which consumes nothing, so a cancel is
        # simply honoured), then the system call, which receives straight
        # into the bytes it returns.
        while True:
            await mgr.wait_readable(self._sock)
            try:
                return self._sock.recv(buflen, flags)
            except BlockingIOError:
                pass

    async def recv_into(self, /, buffer: Any, nbytes: int = 0, flags: int = 0) -> int:
        """Like :meth:`socket.socket.recv_into`, but async (``IORING_OP_RECV``)."""

        async def native(mgr: UringIOManager) -> int:
            view = _byte_view(buffer, nbytes)
            return await ops.recv_into(mgr, self._sock.fileno(), view, flags)

        return await self._io(True, lambda: self._sock.recv_into(buffer, nbytes, flags), native)

    def _decodable(self) -> bool:
        return ops.natively_decodable(self._sock.family)

    async def recvfrom(self, bufsize: int, flags: int = 0, /) -> tuple[bytes, Any]:
        """Like :meth:`socket.socket.recvfrom`, but async (``IORING_OP_RECVMSG``)."""

        async def native(mgr: UringIOManager) -> tuple[bytes, Any]:
            buf = bytearray(bufsize)
            n, _, _, addr = await ops.recvmsg_into(
                mgr, self._sock.fileno(), [memoryview(buf)], 0, flags
            )
            del buf[n:]
            return bytes(buf), addr

        attempt = lambda: self._sock.recvfrom(bufsize, flags)  # noqa: E731
        return await self._io(True, attempt, native if self._decodable() else None)

    async def recvfrom_into(
        self, /, buffer: Any, nbytes: int = 0, flags: int = 0
    ) -> tuple[int, Any]:
        """Like :meth:`socket.socket.recvfrom_into`, but async (``IORING_OP_RECVMSG``)."""

        async def native(mgr: UringIOManager) -> tuple[int, Any]:
            view = _byte_view(buffer, nbytes)
            n, _, _, addr = await ops.recvmsg_into(mgr, self._sock.fileno(), [view], 0, flags)
            return n, addr

        attempt = lambda: self._sock.recvfrom_into(buffer, nbytes, flags)  # noqa: E731
        return await self._io(True, attempt, native if self._decodable() else None)

    async def recvmsg(
        self, bufsize: int, ancbufsize: int = 0, flags: int = 0, /
    ) -> tuple[bytes, _Ancdata, int, Any]:
        """Like :meth:`socket.socket.recvmsg`, but async (``IORING_OP_RECVMSG``)."""

        async def native(
            mgr: UringIOManager,
        ) -> tuple[bytes, _Ancdata, int, Any]:
            buf = bytearray(bufsize)
            n, anc, msg_flags, addr = await ops.recvmsg_into(
                mgr, self._sock.fileno(), [memoryview(buf)], ancbufsize, flags
            )
            del buf[n:]
            return bytes(buf), anc, msg_flags, addr

        attempt = lambda: self._sock.recvmsg(bufsize, ancbufsize, flags)  # noqa: E731
        return await self._io(True, attempt, native if self._decodable() else None)

    async def recvmsg_into(
        self, buffers: Iterable[Any], ancbufsize: int = 0, flags: int = 0, /
    ) -> tuple[int, _Ancdata, int, Any]:
        """Like :meth:`socket.socket.recvmsg_into`, but async (``IORING_OP_RECVMSG``)."""
        items = _listify(buffers)

        async def native(mgr: UringIOManager) -> tuple[int, _Ancdata, int, Any]:
            views = [memoryview(b).cast("B") for b in items]
            return await ops.recvmsg_into(mgr, self._sock.fileno(), views, ancbufsize, flags)

        attempt = lambda: self._sock.recvmsg_into(items, ancbufsize, flags)  # noqa: E731
        return await self._io(True, attempt, native if self._decodable() else None)

    # -- sending ----------------------------------------------------------

    async def send(self, bytes: Any, flags: int = 0, /) -> int:
        """Like :meth:`socket.socket.send`, but async (``IORING_OP_SEND`` when it waits)."""
        data = bytes  # _io written out, as in recv
        await checkpoint_if_cancelled()
        try:
            sent = self._sock.send(data, flags)
        except BlockingIOError:
            attempt = lambda: self._sock.send(data, flags)  # noqa: E731
            return await self._wait(False, attempt, partial(self._send_op, data, flags))
        except BaseException:
            await cancel_shielded_checkpoint()
            raise
        COUNTS["direct"] += 1
        await cancel_shielded_checkpoint()
        return sent

    async def _send_op(self, data: Any, flags: int, mgr: UringIOManager) -> int:
        return await ops.send(mgr, self._sock.fileno(), data, flags)

    async def _send_rest(self, data: Any) -> int:
        """``send(data)`` for a caller that will send every byte anyway (``send_all``).

        The same as :meth:`send`, except that when it has to wait, one
        ``IORING_OP_SEND`` with ``MSG_WAITALL`` sends everything: the kernel
        goes on by itself after each partial send, instead of this task
        coming back for every one. Cancelled or failed part way, it returns
        the count the kernel had sent (6.0+; before, the error): the caller
        then meets the cancel or the error at its next call. Not for a
        plain ``send``: that may return after a partial send, and a program
        may count on it to interleave receives.
        """
        await checkpoint_if_cancelled()
        try:
            sent = self._sock.send(data)
        except BlockingIOError:
            return await self._send_waiting(data)
        except BaseException:
            await cancel_shielded_checkpoint()
            raise
        COUNTS["direct"] += 1
        await cancel_shielded_checkpoint()
        return sent

    async def _send_waiting(self, data: Any) -> int:
        """``_send_rest`` once the direct attempt would block: one ``MSG_WAITALL`` op."""
        attempt = lambda: self._sock.send(data)  # noqa: E731
        return await self._wait(False, attempt, partial(self._send_op, data, _MSG_WAITALL))

    async def sendto(self, *args: Any) -> int:
        """Like :meth:`socket.socket.sendto`: ``sendto(data[, flags], address)``, but async."""
        # Trio resolves the address (the last argument) and leaves every
        # other check to the stdlib call.
        resolved = list(args)
        resolved[-1] = await self._resolve_address_nocp(args[-1], local=False)
        name = _sa.encode_resolved(self._sock.family, resolved[-1]) if len(args) in (2, 3) else None

        async def native(mgr: UringIOManager) -> int:
            data, flags = resolved[0], resolved[1] if len(resolved) == 3 else 0
            return await ops.sendmsg(mgr, self._sock.fileno(), [data], b"", flags, name)

        attempt = lambda: self._sock.sendto(*resolved)  # noqa: E731
        return await self._io(False, attempt, native if name is not None else None)

    async def sendmsg(
        self,
        buffers: Iterable[Any],
        ancdata: Iterable[tuple[int, int, Any]] = (),
        flags: int = 0,
        address: Any = None,
        /,
    ) -> int:
        """Like :meth:`socket.socket.sendmsg`, but async (``IORING_OP_SENDMSG``)."""
        if address is not None:
            address = await self._resolve_address_nocp(address, local=False)
        items = _listify(buffers)
        anc = _listify(ancdata)
        name = None if address is None else _sa.encode_resolved(self._sock.family, address)

        async def native(mgr: UringIOManager) -> int:
            control = _sa.encode_ancdata(anc)
            return await ops.sendmsg(mgr, self._sock.fileno(), items, control, flags, name)

        attempt = lambda: self._sock.sendmsg(items, anc, flags, address)  # noqa: E731
        usable = address is None or name is not None
        return await self._io(False, attempt, native if usable else None)

    # -- accept and connect -----------------------------------------------

    def _wrap_accepted(self, fd: int) -> NativeSocket:
        sock = _stdlib_socket.socket(self._sock.family, self._sock.type, self._sock.proto, fd)
        return NativeSocket(sock)

    def _from_backlog(self, acceptor: _Acceptor) -> tuple[NativeSocket, Any]:
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
        time belong to this socket until handed out (see ``_Acceptor``).
        """
        mgr = running_manager()
        if mgr is None:
            sock, address = await self._accept()
            return NativeSocket(sock), address
        acceptor = self._acceptor
        if acceptor is not None and acceptor.mgr is not mgr:
            # Left over from an earlier run: its connections are still ours.
            self._acceptor = None
            fresh = _Acceptor(mgr, self._sock.fileno())
            fresh.backlog, acceptor.backlog = acceptor.backlog, deque()
            acceptor.close()
            acceptor = self._acceptor = fresh
        if acceptor is not None and acceptor.backlog:
            await checkpoint_if_cancelled()
            result = self._from_backlog(acceptor)
            await cancel_shielded_checkpoint()
            return result

        use_multishot = _multishot_accept and _KERNEL_HAS_MULTISHOT_ACCEPT and mgr.supports(_ACCEPT)

        def attempt() -> tuple[NativeSocket, Any]:
            sock, address = self._sock.accept()
            return NativeSocket(sock), address

        async def single(mgr: UringIOManager) -> tuple[NativeSocket, Any]:
            fd, name, namelen = await ops.accept(mgr, self._sock.fileno())
            return self._wrap_accepted(fd), _sa.decode(name, namelen)

        async def multishot(mgr: UringIOManager) -> tuple[NativeSocket, Any]:
            if self._acceptor is None:
                self._acceptor = _Acceptor(mgr, self._sock.fileno())
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

    async def connect(self, address: Any) -> None:
        """Like :meth:`socket.socket.connect`, but async (``IORING_OP_CONNECT``).

        As with Trio's socket, a connect cancelled before it completed
        closes the socket (its state is unknown). One that completed
        despite the cancel leaves it connected: the result wins.
        """
        mgr = running_manager()
        if mgr is None:
            return await super().connect(address)
        try:
            resolved = await self._resolve_address_nocp(address, local=False)
        except trio.Cancelled:
            self._sock.close()
            raise
        sockaddr = _sa.encode_resolved(self._sock.family, resolved)
        if sockaddr is None:
            # A family or form we don't encode: Trio's own path.
            return await super().connect(resolved)
        COUNTS["ops"] += 1
        try:
            res = await ops.connect(mgr, self._sock.fileno(), sockaddr)
        except trio.Cancelled:
            self._sock.close()
            raise
        if res < 0:
            err = -res
            if err in _ASYNC_CONNECT_ERRNOS and self._sock.family != _stdlib_socket.AF_UNIX:
                # Trio's wording for a failure reported after EINPROGRESS.
                raise OSError(err, f"Error connecting to {resolved!r}: {os.strerror(err)}")
            raise OSError(err, os.strerror(err))
        return None


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
