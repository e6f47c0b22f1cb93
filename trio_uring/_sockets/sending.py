"""The sending calls of a native socket: ``send`` and its relatives.

Each tries the non-blocking system call first and, when it would block,
sends as an op (``IORING_OP_SEND`` or ``SENDMSG``) on the caller's pinned
buffer. ``_send_rest`` is ``send`` for a caller that sends every byte anyway
(``SocketStream.send_all``): when it waits, one ``MSG_WAITALL`` op sends
the whole rest.
"""

from __future__ import annotations

import errno
import socket as _stdlib_socket
from functools import partial
from typing import TYPE_CHECKING, Any, Final

import trio
from trio.lowlevel import cancel_shielded_checkpoint, checkpoint_if_cancelled

from .._core import sockaddr as _sa
from . import ops
from .base import _BUSY_MESSAGE, SocketBase, _listify
from .counts import COUNTS

if TYPE_CHECKING:
    from collections.abc import Iterable

    from .._core.manager import UringIOManager

_MSG_WAITALL: Final = _stdlib_socket.MSG_WAITALL


class Sending(SocketBase):
    """``send``, ``sendto``, ``sendmsg``, and ``_send_rest`` for ``send_all``."""

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

    async def _send_batched(self, data: Any) -> int:
        """``_send_rest`` on the batched path: one ``MSG_WAITALL`` send op, no system call.

        The SQE is queued and the send's schedule point carries it
        (``at_checkpoint``): the scheduler's next ``io_uring_enter`` submits
        it with every other task's, a loopback send completes inline there,
        and the task resumes with its count a tick later, without having
        been parked on the op. Cancelled part way, the count is what the
        kernel sent (result wins).
        """
        mgr = self._op_manager()
        if mgr is None:
            return await self._send_rest(data)
        if self._writing:
            raise trio.BusyResourceError(_BUSY_MESSAGE)
        self._writing = True
        COUNTS["ops"] += 1
        fd = self._sock.fileno()
        try:
            while True:
                op = mgr.queue_send(fd, data, _MSG_WAITALL)
                if op is not None:
                    res = await mgr.at_checkpoint(op, release=True)
                else:  # under a deadline: with a kernel timer
                    res = await mgr.send_op(fd, data, _MSG_WAITALL)
                if res >= 0:
                    return res
                if res != -errno.EAGAIN:
                    ops.raise_errno(res)
                # A send timeout (SO_SNDTIMEO) made the kernel give up
                # waiting: wait for room as Trio would, then again.
                await mgr.wait_writable(fd)
        finally:
            self._writing = False

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
