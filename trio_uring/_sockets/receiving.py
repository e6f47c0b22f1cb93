"""The receiving calls of a native socket: ``recv`` and its relatives.

Each tries the non-blocking system call first and, when it would block,
waits as an op (``IORING_OP_RECV`` or ``RECVMSG``) through ``SocketBase._wait``.
``recv`` and ``recv_into`` write the direct attempt out (no closures, one
coroutine frame less): they are every stream's hot path.
"""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING, Any, Final

from trio.lowlevel import cancel_shielded_checkpoint, checkpoint_if_cancelled

from . import ops
from .base import COUNTS, ByteViews, SocketBase, _listify

if TYPE_CHECKING:
    from collections.abc import Iterable

    from .._core.manager import UringIOManager

_Ancdata = list[tuple[int, int, bytes]]

# recv() returns new bytes, so on the op path the kernel receives into a C
# buffer and the data is copied once more into the bytes. For a few KiB that
# costs less than the system call the op saves; for bulk data it costs more
# (``docs/sockets.md``). So a socket whose last waiting receive brought more
# than this many bytes waits for readiness and calls recv(2) itself next
# time, until a receive is small again.
BULK_RECEIVE_BYTES: Final = 32 * 1024


class Receiving(SocketBase):
    """``recv``, ``recv_into``, ``recvfrom``, ``recvfrom_into``, ``recvmsg``, ``recvmsg_into``."""

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
            views = ByteViews(items)
            try:
                return await ops.recvmsg_into(
                    mgr, self._sock.fileno(), views.views, ancbufsize, flags
                )
            finally:
                views.release()

        attempt = lambda: self._sock.recvmsg_into(items, ancbufsize, flags)  # noqa: E731
        return await self._io(True, attempt, native if self._decodable() else None)
