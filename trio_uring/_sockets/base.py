"""What every native socket call shares: the direct attempt, the wait, pinned views.

``SocketBase`` is the root of ``NativeSocket`` (``socket.py``), which adds
the receiving (``receiving.py``) and sending (``sending.py``) calls and
accept/connect. It subclasses Trio's own socket class
(``trio._socket._SocketType``), so everything that is not I/O (``bind``,
``setsockopt``, address resolution, ``repr``...) is Trio's code.

How one call runs (on a run whose I/O manager is ours):

1. ``checkpoint_if_cancelled()``, then the plain non-blocking system call,
   exactly as Trio does it (``_io``). If it succeeds or fails for a reason
   other than "would block", that is the answer, after a
   ``cancel_shielded_checkpoint()``. Bad arguments so get the stdlib's own
   exception, raised by the stdlib.
2. If it would block, the same call becomes an io_uring op (``_wait``): the
   kernel waits and performs it, and a cancel is a request the kernel
   answers, so the result wins (see ``docs/cancellation.md``).

On a run that is not ours (stock Trio, a fallback run) ``_wait`` is Trio's
own readiness path, so a native socket works anywhere.
"""

from __future__ import annotations

import os
import socket as _stdlib_socket
from typing import TYPE_CHECKING, Any, Final, TypeVar

import trio
from trio._socket import _SocketType
from trio.lowlevel import cancel_shielded_checkpoint, checkpoint_if_cancelled

from .._core.manager import UringIOManager, running_manager
from .._core.parking import current_task
from .counts import COUNTS

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from trio.lowlevel import Task

    from .ahead import ReceiveAhead

T = TypeVar("T")

_BUSY_MESSAGE: Final = "another task is already reading / writing this fd"


def _kernel_at_least(major: int, minor: int) -> bool:
    try:
        parts = os.uname().release.split(".")
        return (int(parts[0]), int(parts[1].split("-")[0])) >= (major, minor)
    except (ValueError, IndexError):
        return False


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


class ByteViews:
    """Flat byte views of a caller's buffers, and every view made on the way to them.

    The kernel writes through the last view of each; ``release()`` (once the
    op's own CQE has arrived) drops them all. Otherwise a view left in a
    frame kept alive by a traceback (a cancelled receive's ``Cancelled``)
    would hold an export on the caller's ``bytearray``, which could then
    not be resized for as long as the traceback lives (stock Trio leaves it
    free).
    """

    __slots__ = ("_made", "views")

    def __init__(self, buffers: Any, nbytes: int = 0) -> None:
        self._made: list[memoryview] = []
        self.views: list[memoryview] = []
        try:
            for buffer in buffers:
                whole = memoryview(buffer)
                self._made.append(whole)
                flat = whole.cast("B")
                self._made.append(flat)
                if nbytes:
                    flat = flat[:nbytes]
                    self._made.append(flat)
                self.views.append(flat)
        except BaseException:
            self.release()
            raise

    def release(self) -> None:
        """Drop every view (newest first: a slice before what it slices)."""
        made, self._made = self._made, []
        self.views = []
        for view in reversed(made):
            view.release()


class SocketBase(_SocketType):
    """A Trio socket whose calls that have to wait become io_uring ops (see module doc)."""

    def __init__(self, sock: _stdlib_socket.socket) -> None:
        super().__init__(sock)
        COUNTS["sockets"] += 1
        # Who reads (writes) this socket now, for Trio's one-waiter-each
        # rule: False; True (a wait that holds the socket until the call
        # returns); or the Task whose op waits (see _claim).
        self._reading: bool | Task = False
        self._writing: bool | Task = False
        # Set while this socket streams bulk data (see receiving.py): its
        # receives that have to wait take the readiness path, which copies once.
        self._bulk_receiver = False
        # Receiving ahead (ahead.py): None until the first recv, which
        # starts it where the socket and run can.
        self._ahead: ReceiveAhead | None = None
        self._ahead_unchecked = True
        # Whether the caller holds the stdlib socket too (from_stdlib_socket)
        # and may close it behind our back: see _share().
        self._shared = False
        # The run's manager, once an op of this socket has looked it up.
        self._mgr: UringIOManager | None = None
        # Whether send_all takes the batched path (None: not decided yet).
        self._batched: bool | None = None

    def _share(self) -> None:
        """Keep no op in flight that no task waits on: the stdlib socket is the caller's too.

        A multishot op (receiving ahead, accepting ahead) holds a reference
        to the socket's file in the kernel. On a socket that only we can
        close, ``close()`` cancels it first. But code that wrapped its own
        stdlib socket (``trio.socket.from_stdlib_socket``) may close that
        object directly, as stock Trio allows when no task waits on it; the
        fd would then go while the kernel kept the connection open (no EOF
        for the peer, a listener still accepting). So such a socket
        receives and accepts with one op per waiting call, never ahead.
        """
        self._shared = True
        self._ahead_unchecked = False  # receives: direct first, an op while one waits

    def _op_manager(self) -> UringIOManager | None:
        """The running manager if it is ours (cached on the socket while its run lasts)."""
        mgr = self._mgr
        if mgr is None or mgr._closed:
            mgr = self._mgr = running_manager()
        return mgr

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
        task = self._claim(reading)
        COUNTS["ops"] += 1
        try:
            return await native(mgr)
        finally:
            self._let_go(reading, task)

    def _claim(self, reading: bool) -> Task:
        """Make the current task the one that waits to read (write) this socket, in an op.

        Trio lets one task at a time wait to read and one to write on a
        socket (``BusyResourceError`` otherwise), and a wait ends when the
        task is woken: on epoll, another task may wait on the socket as soon
        as the first one's readiness event is processed, before that task
        runs again. An op's wait ends the same way: the core marks a task
        parked on an op, or on a readiness wait an op path falls back to,
        in ``custom_sleep_data`` (``native.py``, ``polling.py``), and Trio
        clears it when the completion wakes the task. So a socket is busy
        while a task is parked on its op, not while the woken task has yet
        to run.
        """
        holder = self._reading if reading else self._writing
        if holder is True or (holder is not False and holder.custom_sleep_data is not None):
            raise trio.BusyResourceError(_BUSY_MESSAGE)
        task = current_task()
        if reading:
            self._reading = task
        else:
            self._writing = task
        return task

    def _let_go(self, reading: bool, task: Task) -> None:
        """``task``'s op wait is over: the socket is free, unless another task took it since."""
        if reading:
            if self._reading is task:
                self._reading = False
        elif self._writing is task:
            self._writing = False
