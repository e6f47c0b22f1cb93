"""``trio.SocketStream``'s two hot methods, lean, for streams over native sockets.

Why
---

Every Trio server spends each round trip in ``SocketStream.receive_some``
and ``SocketStream.send_all``. Trio writes both around a ``@contextmanager``
generator that turns socket errors into stream errors, entered and left
once per call, and ``send_all`` slices its buffer once per ``send``. That
bookkeeping costs more user-space instructions than anything the socket
below does: counted with callgrind (``benchmarks/bench_echo_instructions.py``,
64 B x 50 connections), an echo round trip on native sockets took 80.7k
instructions through Trio's two methods, 57.9k through these, and 53.7k
once they also inlined the socket's direct attempt. On this
workload almost every call is answered by the direct system call, so no
choice of I/O primitive can save what this saves.

What
----

``install()`` puts two functions on ``trio.SocketStream`` in place of
Trio's ``receive_some`` and ``send_all``. For a stream whose socket is
exactly a ``NativeSocket`` they do Trio's steps, in Trio's order, with
Trio's exceptions, messages and causes:

* ``receive_some``: ``max_bytes`` defaulted and checked (``ValueError``),
  then ``socket.recv`` (``NativeSocket.recv``'s steps, inlined);
* ``send_all``: ``ClosedResourceError`` after ``send_eof``; the send
  conflict detector (``BusyResourceError``); an empty buffer is a
  checkpoint, or ``ClosedResourceError`` on a closed socket; otherwise
  sends (the first one's steps inlined) until every byte is sent;
* in both, an ``OSError`` from the socket becomes ``ClosedResourceError``
  (``EBADF``/``ENOTSOCK``, context suppressed) or ``BrokenResourceError``
  (caused by the ``OSError``).

Trio's own helpers are written out too, where each costs a call or a
coroutine frame per round trip: the send conflict detector's enter and
exit, the ``did_shutdown_SHUT_WR`` property, and the two halves of the
checkpoint every call passes (``checkpoint_if_cancelled``'s test and
count, and ``cancel_shielded_checkpoint``'s one yield: ``_core/parking.py``).
``_mirrors_this_trio`` checks every internal they read against the
installed Trio, and Trio's own stream and socket tests run on native
sockets (``tests/test_socket_conformance.py``) check their checkpoints:
47.2k instructions per round trip where Trio's methods took 80.7k.

Only the generator is gone (a ``try``/``except`` does its job), the
first send gets the whole buffer rather than a slice of it, and each send
is ``NativeSocket._send_rest``: a send that has to wait hands the kernel
the whole rest of the buffer in one ``MSG_WAITALL`` op, rather than coming
back for every partial send (in ``bench_streaming.py`` a 1 MiB
``send_all`` took 6.4 sends on average). Any other stream (Trio's own
sockets, a fallback run, a user's socket class) runs Trio's method,
unchanged. Trio's own ``test_highlevel_socket.py``,
``test_highlevel_*`` and ``test_ssl.py`` run over these in the conformance
suite.

It is installed once per process, the first time a run sets the native
socket factory, and only if the Trio internals it mirrors are there
(``_send_conflict_detector``, ``_closed_stream_errnos``,
``DEFAULT_RECEIVE_SIZE``); otherwise Trio's methods stay.

In C
----

Where it is built (``_streamfast.c``, beside this module), what the class
holds is not these coroutine functions but their C twin: an awaitable
that makes the same direct attempt and yields Trio's schedule point
itself, with no Python frame in between (36.3k instructions per echo
round trip, from 47.2k). It takes only the common case: anything else
(another socket class, a size that is not a plain int, receiving ahead,
the send op path, a cancelled task, keywords) is handed to the functions
here before anything happened, and what follows a system call that did
not simply succeed (wait for readiness; the schedule point, then the
error; the rest of a partial send) to ``_receive_rest`` and
``_send_rest_all``, which do exactly what the functions here do from
that point. ``TRIO_URING_STREAMFAST=0`` keeps the Python functions.
"""

from __future__ import annotations

import collections.abc
import os
from typing import TYPE_CHECKING, Any, NoReturn

import outcome
import trio
from trio import _highlevel_socket as _hs
from trio._socket import _SocketType
from trio.lowlevel import cancel_shielded_checkpoint, checkpoint_if_cancelled

from .._core.parking import (
    _RUN_CONTEXT,
    _SHIELDED,
    MIRRORS_TRIO_CHECKPOINTS,
    pass_schedule_point,
    uncancelled,
)
from .counts import COUNTS
from .socket import NativeSocket

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

_TRIO_RECEIVE_SOME: Callable[..., Awaitable[bytes]] = trio.SocketStream.receive_some
_TRIO_SEND_ALL: Callable[..., Awaitable[None]] = trio.SocketStream.send_all
_installed = False


def _stream_error(exc: OSError) -> trio.ClosedResourceError | trio.BrokenResourceError:
    # Trio's _translate_socket_errors_to_stream_errors, word for word; the
    # caller raises it "from None" (closed) or "from exc" (broken).
    if exc.errno in _hs._closed_stream_errnos:
        return trio.ClosedResourceError("this socket was already closed")
    return trio.BrokenResourceError(f"socket connection broken: {exc}")


def _as_stream_error(exc: OSError) -> trio.ClosedResourceError | trio.BrokenResourceError:
    """The stream error to raise for ``exc``, as Trio raises it: ``from None`` or ``from exc``.

    Raised inside the ``except`` clause that caught ``exc``, it has that
    as its context too, exactly as ``raise error from ...`` there would.
    """
    error = _stream_error(exc)
    if isinstance(error, trio.ClosedResourceError):
        error.__suppress_context__ = True  # from None
    else:
        error.__cause__ = exc  # from exc
    return error


async def receive_some(self: trio.SocketStream, max_bytes: int | None = None) -> bytes:
    """``trio.SocketStream.receive_some``, without the per-call generator (see module doc)."""
    sock = self.socket
    if type(sock) is not NativeSocket:
        return await _TRIO_RECEIVE_SOME(self, max_bytes)
    if max_bytes is None:
        max_bytes = _hs.DEFAULT_RECEIVE_SIZE
    if max_bytes < 1:
        raise ValueError("max_bytes must be >= 1")
    try:
        ahead = sock._ahead
        if ahead is not None and not ahead.retired and type(max_bytes) is int and max_bytes < 2**63:
            # NativeSocket.recv's receive-ahead path, inlined: one
            # coroutine frame less for every resume of a stream's receive
            # (and Trio's checkpoint halves written out, as below).
            if not uncancelled():
                await checkpoint_if_cancelled()
            if ahead.chunks:
                data: bytes = ahead.take(max_bytes)
                await pass_schedule_point()
                return data
            return await sock._recv_ahead(ahead, max_bytes)
        if ahead is None and not sock._ahead_unchecked and type(max_bytes) is int:
            # NativeSocket.recv's direct attempt, inlined (the socket does
            # not receive ahead), and Trio's two checkpoint halves with it.
            if not uncancelled():
                await checkpoint_if_cancelled()
            try:
                received: bytes = sock._sock.recv(max_bytes)
            except BlockingIOError:
                return await sock._recv_waiting(max_bytes, 0)
            except BaseException:
                await cancel_shielded_checkpoint()
                raise
            COUNTS["direct"] += 1
            await pass_schedule_point()
            return received
        return await sock.recv(max_bytes)
    except OSError as exc:
        raise _as_stream_error(exc)  # noqa: B904 (the cause is set there)


async def send_all(self: trio.SocketStream, data: bytes | bytearray | memoryview) -> None:
    """``trio.SocketStream.send_all``, without the per-call generator (see module doc)."""
    sock = self.socket
    if type(sock) is not NativeSocket:
        return await _TRIO_SEND_ALL(self, data)
    if sock._did_shutdown_SHUT_WR:  # the property, read directly
        raise trio.ClosedResourceError("can't send data after sending EOF")
    # Trio's ConflictDetector, entered and left without its two method calls.
    detector = self._send_conflict_detector
    if detector._held:
        raise trio.BusyResourceError(detector._msg)
    detector._held = True
    try:
        try:
            with memoryview(data) as view:
                if not view:
                    if sock.fileno() == -1:
                        raise trio.ClosedResourceError("socket was already closed")
                    await trio.lowlevel.checkpoint()
                    return None
                total = len(view)
                if sock._batched is None:
                    mgr = sock._op_manager()
                    sock._batched = mgr is not None and mgr._settings.data_path == "batched"
                if sock._batched:
                    # One send op for the whole buffer, no system call of
                    # our own: the tick's io_uring_enter submits it.
                    if not uncancelled():
                        await checkpoint_if_cancelled()
                    sent = await sock._send_batched(view)
                else:
                    # NativeSocket._send_rest's direct attempt, inlined, and
                    # Trio's two checkpoint halves with it (as in receive_some).
                    if not uncancelled():
                        await checkpoint_if_cancelled()
                    try:
                        sent = sock._sock.send(view)
                    except BlockingIOError:
                        sent = await sock._send_waiting(view)
                    except BaseException:
                        await cancel_shielded_checkpoint()
                        raise
                    else:
                        COUNTS["direct"] += 1
                        await pass_schedule_point()
                if sent < total:
                    await _send_the_rest(sock, view, sent)
        except OSError as exc:
            raise _as_stream_error(exc)  # noqa: B904 (the cause is set there)
    finally:
        detector._held = False
    return None


async def _send_the_rest(sock: NativeSocket, view: memoryview, sent: int) -> None:
    """``send_all``'s loop after a partial send: the rest of ``view`` from ``sent`` on."""
    total = len(view)
    while sent < total:
        with view[sent:] as remaining:
            sent += await sock._send_rest(remaining)


def _translated(exc: OSError) -> NoReturn:
    """Raise the stream error for ``exc`` as the ``except OSError`` clauses above do.

    For the C awaitable, which meets the ``OSError`` outside any handler:
    the context is set by hand to what the clause would have made it.
    """
    error = _as_stream_error(exc)
    error.__context__ = exc
    raise error


async def _receive_rest(
    self: trio.SocketStream, sock: NativeSocket, max_bytes: int | None, how: str, value: Any
) -> bytes:
    """``receive_some`` from where the C awaitable's ``recv(2)`` left it.

    ``how``: ``"wait"`` (``EAGAIN``: wait for the data as the Python version
    does), or ``"error"`` (``value``, the ``OSError``: the schedule point,
    then the stream error).
    """
    try:
        if how == "error":
            await cancel_shielded_checkpoint()
            raise value
        size = _hs.DEFAULT_RECEIVE_SIZE if max_bytes is None else max_bytes
        return await sock._recv_waiting(size, 0)
    except OSError as exc:
        raise _as_stream_error(exc)  # noqa: B904 (the cause is set there)


async def _send_rest_all(
    self: trio.SocketStream, sock: NativeSocket, data: Any, how: str, value: Any
) -> None:
    """``send_all`` from where the C awaitable's ``send(2)`` left it, its detector held.

    ``how``: ``"sent"`` (``value`` bytes of a partial send: the schedule
    point, then the rest), ``"wait"`` (``EAGAIN``: the whole buffer waits),
    or ``"error"`` (``value``, the ``OSError``: the schedule point, then the
    stream error). The detector is let go of here, whatever happens.
    """
    detector = self._send_conflict_detector
    try:
        try:
            if how == "error":
                await cancel_shielded_checkpoint()
                raise value
            with memoryview(data) as view:
                total = len(view)
                if how == "sent":
                    sent: int = value
                    await pass_schedule_point()
                else:
                    sent = await sock._send_waiting(view)
                if sent < total:
                    await _send_the_rest(sock, view, sent)
        except OSError as exc:
            raise _as_stream_error(exc)  # noqa: B904 (the cause is set there)
    finally:
        detector._held = False


def _c_methods() -> tuple[Any, Any] | None:
    """The C twins of ``receive_some`` and ``send_all``, configured; None where not built."""
    if not MIRRORS_TRIO_CHECKPOINTS:
        return None
    try:
        from . import _streamfast
    except ImportError:
        return None
    _streamfast.configure(
        NativeSocket, _RUN_CONTEXT, _SHIELDED, COUNTS, receive_some, _receive_rest,
        send_all, _send_rest_all, _translated, _hs.DEFAULT_RECEIVE_SIZE, outcome.Value,
    )  # fmt: skip
    # What Trio's start_soon and anyio check a call's result against.
    collections.abc.Coroutine.register(_streamfast.FastCall)
    return _streamfast.method(_streamfast.receive_some), _streamfast.method(_streamfast.send_all)


IMPLEMENTATIONS: dict[str, tuple[Any, Any]] = {"python": (receive_some, send_all)}
"""The lean methods by implementation: ``"python"`` always, ``"c"`` where built."""
_c = _c_methods()
if _c is not None:
    IMPLEMENTATIONS["c"] = _c


def _mirrors_this_trio() -> bool:
    """Whether the Trio internals these functions mirror are present."""
    probe: Any = trio.SocketStream.__init__
    socket_init: Any = _SocketType.__init__
    detector = getattr(_hs, "ConflictDetector", None)
    held = detector is not None and vars(detector("probe")).keys() >= {"_held", "_msg"}
    return (
        isinstance(getattr(_hs, "_closed_stream_errnos", None), (set, frozenset))
        and isinstance(getattr(_hs, "DEFAULT_RECEIVE_SIZE", None), int)
        and "_send_conflict_detector" in probe.__code__.co_names
        and "_did_shutdown_SHUT_WR" in socket_init.__code__.co_names
        and held
    )


def install() -> bool:
    """Put the lean methods on ``trio.SocketStream`` (idempotent). True if they are in place."""
    global _installed
    if not _installed and _mirrors_this_trio():
        choice = "python" if os.environ.get("TRIO_URING_STREAMFAST", "1") == "0" else "c"
        receive, send = IMPLEMENTATIONS.get(choice, IMPLEMENTATIONS["python"])
        trio.SocketStream.receive_some = receive  # type: ignore[method-assign]
        trio.SocketStream.send_all = send  # type: ignore[method-assign]
        _installed = True
    return _installed
