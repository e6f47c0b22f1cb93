"""The settings a run uses, chosen by ``run()``/``install()``.

Trio builds its I/O manager with no arguments (``TheIOManager()``), so the
manager reads the settings in force from here when a run starts.
"""

from __future__ import annotations

from typing import Literal

import attrs

Fallback = Literal["warn", "raise"]
FALLBACKS: tuple[Fallback, ...] = ("warn", "raise")
DataPath = Literal["direct", "batched"]
DATA_PATHS: tuple[DataPath, ...] = ("direct", "batched")
Mode = Literal["interrupt", "sqpoll"]
MODES: tuple[Mode, ...] = ("interrupt", "sqpoll")


def _check_entries(_: object, __: object, value: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"entries must be an int, not {type(value).__name__}")
    if not 1 <= value <= 32768:
        raise ValueError(f"entries must be between 1 and 32768, not {value}")


def _check_fallback(_: object, __: object, value: str) -> None:
    if value not in FALLBACKS:
        raise ValueError(f"fallback must be one of {FALLBACKS}, not {value!r}")


def _check_data_path(_: object, __: object, value: str) -> None:
    if value not in DATA_PATHS:
        raise ValueError(f"data_path must be one of {DATA_PATHS}, not {value!r}")


def _check_mode(_: object, __: object, value: str) -> None:
    if value == "iopoll":
        # Measured on 6.18 (docs/modes.md): an IOPOLL ring answers POLL_ADD
        # and RECV with EINVAL, and a Trio run cannot do without them.
        raise ValueError(
            "mode must be one of ('interrupt', 'sqpoll'), not 'iopoll': an IOPOLL ring "
            "refuses socket and poll operations (EINVAL), which every Trio run needs, and "
            "serves only O_DIRECT files on block devices with poll queues (docs/modes.md)"
        )
    if value not in MODES:
        raise ValueError(f"mode must be one of {MODES}, not {value!r}")


def _check_idle(_: object, __: object, value: float) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"sqpoll_idle must be a number of seconds, not {type(value).__name__}")
    # The kernel takes whole milliseconds in 32 bits.
    if not 0.001 <= value <= 3600:
        raise ValueError(f"sqpoll_idle must be between 0.001 and 3600 seconds, not {value!r}")


@attrs.frozen
class Settings:
    """How trio_uring sets up a run."""

    entries: int = attrs.field(default=256, validator=_check_entries)
    """SQ entries of the ring (the kernel rounds up to a power of two)."""
    fallback: Fallback = attrs.field(default="warn", validator=_check_fallback)
    """What to do when io_uring cannot be had: ``"warn"`` (run on stock Trio
    with a ``RuntimeWarning`` naming the cause) or ``"raise"``
    (``UringUnavailableError``)."""
    linked_timeouts: bool = True
    """Link a kernel timeout to native ops waiting under a Trio deadline."""
    native_sockets: bool = True
    """Give the run Trio's socket factory hook set to native sockets, so that
    ``trio.socket.socket()`` and everything built on it use io_uring ops.
    False keeps Trio's readiness (poll) path, for comparison."""
    data_path: DataPath = attrs.field(default="direct", validator=_check_data_path)
    """How native stream sockets move data. ``"direct"``: each call tries the
    non-blocking system call first, and becomes an io_uring op only when it
    would block. ``"batched"``: no system call of the task's own; a
    multishot receive queues what arrives (``recv`` takes from the queue),
    and ``send_all`` is one send op, both submitted and reaped by the tick's
    one ``io_uring_enter`` (``docs/sockets.md`` has the measurements that
    decide the default)."""
    mode: Mode = attrs.field(default="interrupt", validator=_check_mode)
    """How the ring is driven. ``"interrupt"``: this thread submits with
    ``io_uring_enter`` and sleeps in it for completions. ``"sqpoll"``
    (``IORING_SETUP_SQPOLL``): a kernel thread polls the SQ and submits on
    its own core, so a busy program makes no system call to submit; it costs
    that core while it polls (``docs/modes.md`` has the measurements)."""
    sqpoll_idle: float = attrs.field(default=1.0, validator=_check_idle)
    """``mode="sqpoll"``: seconds the kernel thread keeps polling after the
    last submission before it sleeps (the next submission then wakes it with
    one system call). Whole milliseconds; the kernel's own default is 1 s."""

    @property
    def sqpoll_idle_ms(self) -> int | None:
        """The ring's ``sq_thread_idle`` in milliseconds, or None when not SQPOLL."""
        return max(1, round(self.sqpoll_idle * 1000)) if self.mode == "sqpoll" else None


_current = Settings()


def current_settings() -> Settings:
    """The settings the next run will use."""
    return _current


def set_settings(settings: Settings) -> Settings:
    """Make ``settings`` current; return the previous ones."""
    global _current
    previous, _current = _current, settings
    return previous
