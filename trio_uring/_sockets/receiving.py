"""The receiving calls of a native socket: ``recv`` and its relatives.

On a stream socket, ``recv(n)`` (and so ``SocketStream.receive_some``)
receives ahead: a multishot receive queues what arrives and ``recv`` takes
from that queue, making no system call of its own (``ahead.py``). Every
other receive call, and ``recv`` with flags, first stops receiving ahead
and is served from what was queued before it asks the kernel, so no byte is
lost or reordered.

Without receive-ahead (a datagram socket, a kernel without multishot
receives) each call tries the non-blocking system call first and, when it
would block, waits as an op (``IORING_OP_RECV`` or ``RECVMSG``) through
``SocketBase._wait``.
"""

from __future__ import annotations

import operator
import socket as _stdlib_socket
from functools import partial
from typing import TYPE_CHECKING, Any, Final, TypeVar

import trio
from trio.lowlevel import cancel_shielded_checkpoint, checkpoint_if_cancelled

from .._core.manager import running_manager
from .._core.parking import current_task, park
from . import ops
from .ahead import ReceiveAhead
from .base import _BUSY_MESSAGE, ByteViews, SocketBase, _listify
from .counts import COUNTS

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from .._core.manager import UringIOManager

_Ancdata = list[tuple[int, int, bytes]]
T = TypeVar("T")

# recv() returns new bytes, so on the op path the kernel receives into a C
# buffer and the data is copied once more into the bytes. For a few KiB that
# costs less than the system call the op saves; for bulk data it costs more
# (``docs/sockets.md``). So a socket whose last waiting receive brought more
# than this many bytes waits for readiness and calls recv(2) itself next
# time, until a receive is small again.
BULK_RECEIVE_BYTES: Final = 32 * 1024
# recv flags the queue can honour itself; any other (MSG_OOB...) is for the kernel.
_QUEUE_FLAGS: Final = _stdlib_socket.MSG_PEEK | _stdlib_socket.MSG_DONTWAIT
_PEEK: Final = _stdlib_socket.MSG_PEEK
_PROBE: Final = _stdlib_socket.MSG_PEEK | _stdlib_socket.MSG_DONTWAIT
_STREAM: Final = _stdlib_socket.SOCK_STREAM
_SSIZE_MAX: Final = 2**63 - 1  # a larger recv size is the stdlib's OverflowError


class Receiving(SocketBase):
    """``recv``, ``recv_into``, ``recvfrom``, ``recvfrom_into``, ``recvmsg``, ``recvmsg_into``."""

    async def recv(self, buflen: int, flags: int = 0, /) -> bytes:
        """Like :meth:`socket.socket.recv`, but async (receiving ahead, see module doc)."""
        ahead = self._ahead
        if ahead is None and self._ahead_unchecked:
            ahead = self._begin_ahead()
        if ahead is not None:
            if type(flags) is int and not flags and not ahead.retired:
                # The hot path, written out (no closures, no extra frame).
                await checkpoint_if_cancelled()
                if type(buflen) is not int or not 0 < buflen <= _SSIZE_MAX:
                    buflen = await self._checked_buflen(buflen)
                    if not buflen:
                        return b""
                if ahead.chunks:
                    data = ahead.take(buflen)
                    await cancel_shielded_checkpoint()
                    return data
                return await self._recv_ahead(ahead, buflen)
            if ahead.retired and not (ahead.chunks or ahead.error):
                self._ahead = None
            else:
                return await self._recv_leaving_ahead(buflen, flags)
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

    def _begin_ahead(self) -> ReceiveAhead | None:
        """Start receiving ahead if this socket and run can (checked once per socket)."""
        self._ahead_unchecked = False
        if self._sock.type != _STREAM or self._sock.fileno() < 0:
            return None
        mgr = running_manager()
        if mgr is None or mgr._settings.data_path != "batched" or not mgr.receive_buffers():
            return None
        self._ahead = ReceiveAhead(mgr, self._sock.fileno())
        return self._ahead

    async def _checked_buflen(self, buflen: Any) -> int:
        """A ``recv`` size that is not a plain positive int, checked by the stdlib itself.

        A non-blocking peek takes nothing and raises what ``recv`` raises
        (``TypeError``, ``ValueError``, ``OverflowError``), after the
        schedule point as Trio's does; 0 comes back as 0 (``recv`` returns
        b"" then, after the schedule point).
        """
        try:
            self._sock.recv(buflen, _PROBE)
        except BlockingIOError:
            pass
        except BaseException:
            await cancel_shielded_checkpoint()
            raise
        size = operator.index(buflen)
        if not size:
            await cancel_shielded_checkpoint()
        return size

    async def _recv_ahead(self, ahead: ReceiveAhead, buflen: int) -> bytes:
        """``recv`` with nothing queued: wait for the multishot receive to bring something."""
        if self._reading:
            raise trio.BusyResourceError(_BUSY_MESSAGE)
        if ahead.mgr._closed:
            # Left over from an earlier run: go on with this one's ring.
            mgr = running_manager()
            if mgr is None:
                return await self._recv_leaving_ahead(buflen, 0)
            ahead.mgr = mgr
            ahead.op = None
        self._reading = True
        checkpointed = False
        try:
            while True:
                if ahead.chunks:
                    return ahead.take(buflen)
                if ahead.error:
                    if not checkpointed:
                        # Found at once: the schedule point Trio's recv
                        # passes after its direct attempt, EOF or error.
                        await cancel_shielded_checkpoint()
                    if ahead.error == 1:
                        return b""  # EOF, as recv(2) says it every time after
                    ahead.raise_queued_error()
                if ahead.bulk and ahead.op is None:
                    # Nothing more can be queued: the kernel's data comes next.
                    data = await self._recv_when_readable(ahead.mgr, buflen, 0)
                    if len(data) <= BULK_RECEIVE_BYTES:
                        ahead.bulk = False
                    return data
                ahead.arm()
                if not checkpointed:
                    # The schedule point every receive passes is the reap
                    # point: the next tick's io_uring_enter reaps what has
                    # arrived meanwhile, and a task that finds it queued
                    # then was never parked on the waiter nor woken.
                    checkpointed = True
                    await cancel_shielded_checkpoint()
                    continue
                # ReceiveAhead.wait, written out (one frame less a wait).
                waiter = ahead.waiter
                waiter.task = current_task()
                await park(waiter.abort)
        finally:
            self._reading = False

    async def _queued_first(self) -> ReceiveAhead | None:
        """For any receive but a flag-free ``recv``: stop receiving ahead, for good.

        Returns the queue if anything (bytes, EOF, an error) is still in it:
        the caller serves from it before the kernel is asked.
        """
        ahead = self._ahead
        if ahead is None:
            return None
        if not ahead.retired:
            ahead.retired = True
            await ahead.stop()  # after it, no completion can queue more
        if ahead.chunks or ahead.error:
            return ahead
        self._ahead = None
        return None

    async def _recv_leaving_ahead(self, buflen: int, flags: int) -> bytes:
        """``recv`` with flags on a socket that received ahead: the queue first."""
        served: Any = await self._served_from_queue(
            flags,
            lambda: self._sock.recv(buflen, flags | _PROBE),
            lambda ahead, peek: _gather(ahead, buflen, peek),
        )
        if served is not NOT_SERVED:
            return served  # type: ignore[no-any-return]
        return await self.recv(buflen, flags)

    async def _recv_waiting(self, buflen: int, flags: int) -> bytes:
        """``recv`` once the direct attempt would block (also ``SocketStream``'s way in).

        ``_wait`` and ``_recv_op`` written out for the common case (an op
        on our run): a receive that waits holds its frames while it waits,
        and ten thousand waiting receives hold ten thousand of each.
        """
        mgr = self._op_manager()
        if mgr is None or self._bulk_receiver:
            attempt = lambda: self._sock.recv(buflen, flags)  # noqa: E731
            return await self._wait(True, attempt, partial(self._recv_op, buflen, flags))
        task = self._claim(True)
        COUNTS["ops"] += 1
        try:
            data = await ops.recv(mgr, self._sock.fileno(), buflen, flags)
        finally:
            self._let_go(True, task)
        self._bulk_receiver = len(data) > BULK_RECEIVE_BYTES
        return data

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

    async def _served_from_queue(
        self, flags: int, probe: Callable[[], object], serve: Callable[[ReceiveAhead, bool], T]
    ) -> T | _NotServed:
        """A receive call on a socket that received ahead: served from what is left queued.

        Trio's order: a cancelled task raises first, then the stdlib checks
        the arguments (``probe``: the same call, peeking without waiting,
        which takes nothing), then ``serve(queue, peek)``; then the
        schedule point. ``NOT_SERVED`` when nothing is queued (or the flags
        are for the kernel alone, such as ``MSG_OOB``): the call goes on.
        """
        await checkpoint_if_cancelled()
        if type(flags) is not int:
            try:
                operator.index(flags)  # the stdlib's TypeError, before anything stops
            except TypeError:
                await cancel_shielded_checkpoint()
                raise
        ahead = await self._queued_first()
        if ahead is None or flags & ~_QUEUE_FLAGS:
            return NOT_SERVED
        try:
            probe()
        except BlockingIOError:
            pass
        except BaseException:
            await cancel_shielded_checkpoint()
            raise
        try:
            return serve(ahead, bool(flags & _PEEK))
        finally:
            await cancel_shielded_checkpoint()

    async def recv_into(self, /, buffer: Any, nbytes: int = 0, flags: int = 0) -> int:
        """Like :meth:`socket.socket.recv_into`, but async (``IORING_OP_RECV``)."""
        if self._ahead is not None:
            served: Any = await self._served_from_queue(
                flags,
                lambda: self._sock.recv_into(buffer, nbytes, flags | _PROBE),
                lambda ahead, peek: _scatter(ahead, (buffer,), nbytes, peek),
            )
            if served is not NOT_SERVED:
                return served  # type: ignore[no-any-return]

        async def native(mgr: UringIOManager) -> int:
            views = ByteViews((buffer,), nbytes)
            try:
                return await ops.recv_into(mgr, self._sock.fileno(), views.views[0], flags)
            finally:
                views.release()  # after the op's CQE: perform returns no sooner

        return await self._io(True, lambda: self._sock.recv_into(buffer, nbytes, flags), native)

    def _decodable(self) -> bool:
        return ops.natively_decodable(self._sock.family)

    async def recvfrom(self, bufsize: int, flags: int = 0, /) -> tuple[bytes, Any]:
        """Like :meth:`socket.socket.recvfrom`, but async (``IORING_OP_RECVMSG``)."""
        if self._ahead is not None:
            served: Any = await self._served_from_queue(
                flags,
                lambda: self._sock.recvfrom(bufsize, flags | _PROBE),
                lambda ahead, peek: (_gather(ahead, bufsize, peek), None),
            )
            if served is not NOT_SERVED:
                return served  # type: ignore[no-any-return]

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
        if self._ahead is not None:
            served: Any = await self._served_from_queue(
                flags,
                lambda: self._sock.recvfrom_into(buffer, nbytes, flags | _PROBE),
                lambda ahead, peek: (_scatter(ahead, (buffer,), nbytes, peek), None),
            )
            if served is not NOT_SERVED:
                return served  # type: ignore[no-any-return]

        async def native(mgr: UringIOManager) -> tuple[int, Any]:
            views = ByteViews((buffer,), nbytes)
            try:
                n, _, _, addr = await ops.recvmsg_into(
                    mgr, self._sock.fileno(), views.views, 0, flags
                )
            finally:
                views.release()
            return n, addr

        attempt = lambda: self._sock.recvfrom_into(buffer, nbytes, flags)  # noqa: E731
        return await self._io(True, attempt, native if self._decodable() else None)

    async def recvmsg(
        self, bufsize: int, ancbufsize: int = 0, flags: int = 0, /
    ) -> tuple[bytes, _Ancdata, int, Any]:
        """Like :meth:`socket.socket.recvmsg`, but async (``IORING_OP_RECVMSG``)."""
        if self._ahead is not None:
            served: Any = await self._served_from_queue(
                flags,
                lambda: self._sock.recvmsg(bufsize, ancbufsize, flags | _PROBE),
                lambda ahead, peek: (_gather(ahead, bufsize, peek), [], 0, None),
            )
            if served is not NOT_SERVED:
                return served  # type: ignore[no-any-return]

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
        if self._ahead is not None:
            served: Any = await self._served_from_queue(
                flags,
                lambda: self._sock.recvmsg_into(items, ancbufsize, flags | _PROBE),
                lambda ahead, peek: (_scatter(ahead, items, 0, peek), [], 0, None),
            )
            if served is not NOT_SERVED:
                return served  # type: ignore[no-any-return]

        async def native(mgr: UringIOManager) -> tuple[int, _Ancdata, int, Any]:
            views = ByteViews(items)
            try:
                return await ops.recvmsg_into(
                    mgr, self._sock.fileno(), views.views, ancbufsize, flags
                )
            finally:
                views.release()

        attempt = lambda: self._sock.recvmsg_into(items, ancbufsize, flags)  # noqa: E731
        return await self._io(True, attempt, native if self._decodable() else None)


class _NotServed:
    """``NOT_SERVED``: the queue had nothing for the call."""


NOT_SERVED: Final = _NotServed()


def _gather(ahead: ReceiveAhead, nbytes: int, peek: bool) -> bytes:
    """Up to ``nbytes`` of what was queued; after the data, b"" for EOF or the error raised."""
    if ahead.chunks:
        if peek:
            return b"".join(ahead.chunks)[:nbytes]
        return ahead.take(nbytes) if nbytes else b""
    if ahead.error != 1:
        ahead.raise_queued_error()
    return b""


def _scatter(ahead: ReceiveAhead, buffers: Any, nbytes: int, peek: bool) -> int:
    """Copy queued bytes into ``buffers`` in order (the first ``nbytes`` of one buffer)."""
    views = ByteViews(buffers, nbytes)
    try:
        room = sum(len(v) for v in views.views)
        data = _gather(ahead, room, peek) if room else b""
        done = 0
        for view in views.views:
            part = data[done : done + len(view)]
            view[: len(part)] = part
            done += len(part)
        return done
    finally:
        views.release()
