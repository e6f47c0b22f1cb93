"""Trio deadlines in the kernel's clock, for ``IORING_OP_LINK_TIMEOUT``.

A native op can carry a kernel timer: an ``IORING_OP_LINK_TIMEOUT`` SQE
queued right behind it with ``IOSQE_IO_LINK`` on the op. If the timer fires
first, the kernel cancels the op itself (the op completes with
``-ECANCELED``, the timer with ``-ETIME``); if the op completes first, the
timer is cancelled (``-ECANCELED``). With ``IORING_TIMEOUT_ABS`` the timer
takes an absolute ``CLOCK_MONOTONIC`` time, so a deadline can be handed to
the kernel exactly, with no "now" measured in between.

That is only right when Trio's clock *is* ``CLOCK_MONOTONIC``: Trio's
``SystemClock`` reads ``time.perf_counter()`` (``CLOCK_MONOTONIC`` on
Linux) plus a fixed random ``offset``, so a Trio deadline ``d`` is the
kernel time ``d - offset``. Under any other clock (``MockClock``, an
autojump clock, a user's clock) Trio's time is not the kernel's, and no
kernel timer is ever armed: Trio's own cancellation does the work.
"""

from __future__ import annotations

import math
import time
from typing import Any, Final

from .compat import trio_run_module


def kernel_clock_offset() -> float | None:
    """Trio's clock minus ``CLOCK_MONOTONIC`` for the current run, or None.

    None means Trio's time is not kernel time here: the run's clock is not
    exactly ``SystemClock``, or ``perf_counter`` is not ``CLOCK_MONOTONIC``.
    Must be called inside a run.
    """
    run_mod = trio_run_module()
    clock = run_mod.GLOBAL_RUN_CONTEXT.runner.clock
    # A subclass may override current_time(): only the exact class is known.
    if type(clock) is not run_mod.SystemClock:
        return None
    if "CLOCK_MONOTONIC)" not in time.get_clock_info("perf_counter").implementation:
        return None  # pragma: no cover - CPython on Linux always uses it
    return float(clock.offset)


# Kernel timers are armed only for deadlines before this CLOCK_MONOTONIC
# second (68 years of uptime): a finite but huge deadline (now + 1e19, as
# code that means "never" writes) would overflow the timespec, and a timer
# that far away never fires anyway; Trio's own clock still honours it.
MAX_TIMER_SECONDS: Final = 2**31


def deadline_ns(deadline: float, offset: float) -> int | None:
    """The kernel ``CLOCK_MONOTONIC`` nanosecond at which Trio's ``deadline`` falls.

    Rounded up, so the kernel timer never fires before Trio would see the
    deadline as passed. None for a deadline too far away for a kernel
    timer (past ``MAX_TIMER_SECONDS``), or not a number at all.
    """
    seconds = deadline - offset
    if not -MAX_TIMER_SECONDS < seconds < MAX_TIMER_SECONDS:  # also False for NaN
        return None
    return math.ceil(seconds * 1e9)


def make_timespec(ns: int) -> Any:
    """A ``struct __kernel_timespec`` holding ``ns``; the caller pins it."""
    # Imported here: it loads the C extension, which `import trio_uring`
    # does not need (a timer is only ever built inside a run on io_uring).
    from .structs import ffi

    return ffi.new("struct __kernel_timespec *", divmod(ns, 1_000_000_000))


def deadline_registry() -> Any | None:
    """Trio's registry of the current run's finite deadlines, if it counts them.

    Trio keeps every cancel scope with a finite deadline that is attached to
    a task in ``runner.deadlines``, and counts them in ``_active``. While the
    count is zero no task has a finite effective deadline, so a native op
    needs no kernel timer and ``current_effective_deadline()`` (a walk up
    the task's cancel scopes, a quarter of a NOP's cost) can be skipped.
    None when this Trio keeps no such count: then every op asks Trio.
    Must be called inside a run.
    """
    runner = trio_run_module().GLOBAL_RUN_CONTEXT.runner
    registry = getattr(runner, "deadlines", None)
    return registry if isinstance(getattr(registry, "_active", None), int) else None
