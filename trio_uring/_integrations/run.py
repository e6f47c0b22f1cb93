"""Selecting the backend: ``run()``, the process-wide switch and the fallback policy."""

from __future__ import annotations

import sys
import warnings
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import trio

from .._core.availability import Cause, UringUnavailableError, open_ring
from .._core.compat import trio_run_module
from .._core.manager import UringIOManager
from .._core.settings import DataPath, Fallback, Mode, Settings, current_settings, set_settings

T = TypeVar("T")

# Trio's own manager class, captured before anyone swaps it: the fallback.
_STOCK_MANAGER: type[Any] = trio_run_module().TheIOManager
if issubclass(_STOCK_MANAGER, UringIOManager):  # pragma: no cover - reimported module
    raise ImportError("trio_uring._integrations.run imported after the switch was installed")

_installed: Settings | None = None


def stock_manager_class() -> type[Any]:
    """Trio's own I/O-manager class (epoll on Linux)."""
    return _STOCK_MANAGER


def _user_stacklevel() -> int:
    """The stacklevel that points a warning at the first frame outside Trio and us.

    The fallback warning can come from deep inside ``trio.run`` (when Trio
    builds its manager); blaming a line in Trio would defeat warning filters
    by module and the once-per-location rule.
    """
    frame = sys._getframe(1)
    level = 1
    while frame is not None:
        module = frame.f_globals.get("__name__", "")
        if not (module in ("trio", "trio_uring") or module.startswith(("trio.", "trio_uring."))):
            return level
        frame = frame.f_back  # type: ignore[assignment]
        level += 1
    return 1


def warn_fallback(cause: Cause) -> None:
    """Say that we run on stock Trio and why, pointing at the user's call."""
    warnings.warn(
        f"trio_uring: io_uring is unavailable, running on stock Trio instead: {cause}",
        RuntimeWarning,
        stacklevel=_user_stacklevel(),
    )


class _SwitchingManager(UringIOManager):
    """What the switch installs as ``TheIOManager``.

    Trio builds its manager with ``TheIOManager()``. If the ring cannot be
    set up at that moment, the "warn" policy hands back Trio's own manager
    (``__new__`` may return any object), so the run goes on, on epoll.
    """

    _pending_ring: Any

    def __new__(cls, *args: Any, **kwargs: Any) -> Any:
        settings = current_settings()
        try:
            ring = open_ring(settings)
        except UringUnavailableError as exc:
            if settings.fallback == "raise":
                raise
            warn_fallback(exc.cause)
            return _STOCK_MANAGER()
        self = super().__new__(cls)
        self._pending_ring = ring
        return self

    def __init__(self) -> None:
        super().__init__()
        if self._settings.native_sockets:
            # Trio's socket factory is a RunVar: it can only be set once the
            # run exists, and must be set before any task makes a socket.
            # The first process_events is both (it runs on the Trio thread,
            # before the first task step), so it is wrapped once; the
            # instance attribute goes away after that call, leaving no
            # per-tick cost.
            self.process_events = self._first_process_events  # type: ignore[method-assign]

    def _first_process_events(self, events: Any) -> None:
        del self.process_events
        from .._sockets.constructors import install as install_native_constructors
        from .._sockets.socket import FACTORY
        from .._sockets.stream import install as install_lean_streams

        trio.socket.set_custom_socket_factory(FACTORY)
        # Process-wide and idempotent too: trio.socket.socketpair, fromfd
        # and from_stdlib_socket give native sockets on runs like this one.
        install_native_constructors()
        # Process-wide and idempotent: SocketStreams over native sockets
        # get the lean hot paths (see _sockets/stream.py); others keep Trio's.
        install_lean_streams()
        self.process_events(events)


def _check_policy(fallback: str) -> Fallback:
    if fallback not in ("warn", "raise"):
        raise ValueError(f"fallback must be 'warn' or 'raise', not {fallback!r}")
    return fallback  # type: ignore[return-value]


def install(
    *,
    fallback: Fallback = "warn",
    entries: int = 256,
    linked_timeouts: bool = True,
    native_sockets: bool = True,
    data_path: DataPath = "direct",
    mode: Mode = "interrupt",
    sqpoll_idle: float = 1.0,
) -> bool:
    """Make every later ``trio.run`` and ``start_guest_run`` in this process use io_uring.

    For code you don't own (pytest-trio, anyio, hypercorn). Replaces Trio's
    manager class itself, so code that patches methods on
    ``trio._core._run.TheIOManager`` patches ours. Returns True if io_uring
    is in effect; with ``fallback="warn"`` a machine without io_uring gets a
    ``RuntimeWarning`` naming the cause and False, with ``"raise"`` a
    ``UringUnavailableError``.

    With ``native_sockets`` (the default) each run on io_uring sets Trio's
    socket factory (``trio.socket.set_custom_socket_factory``) to
    ``trio_uring.socket``'s, so ``trio.socket.socket()`` and every API built
    on it (``open_tcp_stream``, ``serve_tcp``, ``SSLStream``...) use native
    ops. The factory is per run: a fallback run on stock Trio, and every run
    after ``uninstall()``, keep Trio's own sockets.
    """
    trio_run_module()  # refuse an unsupported Trio before anything else
    settings = Settings(entries=entries, fallback=_check_policy(fallback),
                        linked_timeouts=linked_timeouts,
                        native_sockets=native_sockets, data_path=data_path,
                        mode=mode, sqpoll_idle=sqpoll_idle)  # fmt: skip
    try:
        open_ring(settings).close()
    except UringUnavailableError as exc:
        if settings.fallback == "raise":
            raise
        warn_fallback(exc.cause)
        return False
    switch_on(settings)
    return True


def switch_on(settings: Settings) -> None:
    """Install the switch without trying a ring first.

    With the "raise" policy this defers the error to the first run, where
    the program can catch it (the start-up hook uses this: an exception in a
    ``.pth`` line is printed and swallowed by ``site.py``).
    """
    global _installed
    run_mod = trio_run_module()
    set_settings(settings)
    run_mod.TheIOManager = _SwitchingManager
    _installed = settings


def uninstall() -> None:
    """Undo ``install()``: later runs use Trio's own manager again."""
    global _installed
    from trio._core import _run as run_mod

    # No version check: putting Trio's own class back is always safe.
    run_mod.TheIOManager = _STOCK_MANAGER  # type: ignore[attr-defined]
    set_settings(Settings())
    _installed = None


def is_installed() -> bool:
    """Whether the process-wide switch is on."""
    from trio._core import _run as run_mod

    return getattr(run_mod, "TheIOManager", None) is _SwitchingManager


def run(
    async_fn: Callable[..., Awaitable[T]],
    *args: object,
    fallback: Fallback = "warn",
    entries: int = 256,
    linked_timeouts: bool = True,
    native_sockets: bool = True,
    data_path: DataPath = "direct",
    mode: Mode = "interrupt",
    sqpoll_idle: float = 1.0,
    **trio_kwargs: Any,
) -> T:
    """Drop-in for ``trio.run`` that runs ``async_fn`` on io_uring.

    Takes ``trio.run``'s keyword arguments (``clock``, ``instruments``,
    ``restrict_keyboard_interrupt_to_checkpoints``,
    ``strict_exception_groups``) plus ours: ``fallback`` (``"warn"`` or
    ``"raise"``), ``entries`` (SQ size), ``linked_timeouts``,
    ``native_sockets`` (False: Trio's own sockets on the readiness path,
    for comparison), ``data_path`` (``"direct"`` or ``"batched"``), ``mode``
    (``"interrupt"`` or ``"sqpoll"``) and ``sqpoll_idle`` (seconds), all
    described on ``trio_uring.Settings``. The process-wide switch is left as
    it was.
    """
    run_mod = trio_run_module()
    settings = Settings(entries=entries, fallback=_check_policy(fallback),
                        linked_timeouts=linked_timeouts,
                        native_sockets=native_sockets, data_path=data_path,
                        mode=mode, sqpoll_idle=sqpoll_idle)  # fmt: skip
    previous_cls = run_mod.TheIOManager
    previous_settings = set_settings(settings)
    run_mod.TheIOManager = _SwitchingManager
    try:
        return trio.run(async_fn, *args, **trio_kwargs)
    finally:
        run_mod.TheIOManager = previous_cls
        set_settings(previous_settings)
