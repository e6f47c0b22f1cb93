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


_current = Settings()


def current_settings() -> Settings:
    """The settings the next run will use."""
    return _current


def set_settings(settings: Settings) -> Settings:
    """Make ``settings`` current; return the previous ones."""
    global _current
    previous, _current = _current, settings
    return previous
