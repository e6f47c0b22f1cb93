"""Which Trio we run on, and whether its internals are the ones we replace.

The process-wide switch swaps ``trio._core._run.TheIOManager``, a private
name. Trio keeps its I/O-manager contract stable in practice, but we check
the version and every internal we touch before swapping, and refuse with a
clear message rather than break a run halfway.
"""

from __future__ import annotations

import sys
from typing import Any

import trio

# Inclusive range of Trio releases whose I/O-manager contract we implement.
# Tested: 0.35.0 (CI). Older ones in the range share the same contract.
SUPPORTED_TRIO = ((0, 30), (0, 35))


class UnsupportedTrioError(RuntimeError):
    """The installed Trio is not one trio_uring can switch."""


def trio_version() -> tuple[int, int]:
    """``(major, minor)`` of the installed Trio."""
    parts = trio.__version__.split(".")
    try:
        return int(parts[0]), int(parts[1])
    except (ValueError, IndexError) as exc:
        raise UnsupportedTrioError(f"cannot parse Trio's version {trio.__version__!r}") from exc


def trio_run_module() -> Any:
    """``trio._core._run``, after checking it has what we replace."""
    version = trio_version()
    low, high = SUPPORTED_TRIO
    if not low <= version <= high:
        raise UnsupportedTrioError(
            f"trio_uring supports Trio {low[0]}.{low[1]} to {high[0]}.{high[1]}; "
            f"Trio {trio.__version__} is installed",
        )
    from trio._core import _run

    for name in ("TheIOManager", "setup_runner", "GLOBAL_RUN_CONTEXT", "SystemClock"):
        if not hasattr(_run, name):
            raise UnsupportedTrioError(
                f"Trio {trio.__version__} has no trio._core._run.{name}; trio_uring cannot "
                "switch its I/O manager",
            )
    manager = getattr(_run, "TheIOManager")  # noqa: B009 - a private, unexported name
    for method in ("get_events", "process_events", "force_wakeup", "close", "statistics"):
        if not callable(getattr(manager, method, None)):
            raise UnsupportedTrioError(
                f"Trio {trio.__version__}'s I/O manager has no {method}(); its contract "
                "changed and trio_uring cannot stand in for it",
            )
    return _run


def building_a_guest_run() -> bool:
    """Whether the manager being built is for ``trio.lowlevel.start_guest_run``.

    A guest run calls ``get_events`` from worker threads, so its ring must
    let more than one thread submit (no ``SINGLE_ISSUER``). Trio builds the
    manager inside ``start_guest_run``, which is on the stack then.
    """
    target = getattr(trio_run_module().start_guest_run, "__code__", None)
    frame = sys._getframe(1)
    while frame is not None:
        if frame.f_code is target:
            return True
        frame = frame.f_back  # type: ignore[assignment]
    return False
