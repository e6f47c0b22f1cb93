"""pytest plugin loaded into Trio's own test suite for the io_uring run.

It proves the run is on io_uring rather than trusting the environment: the
session refuses to start unless the switch is installed, and the report
records which manager a fresh ``trio.run`` gets at the start and the end.
"""

from __future__ import annotations

import os

import pytest
import trio

import trio_uring


async def _backend() -> str:
    return str(trio.lowlevel.current_statistics().io_statistics.backend)


def _record(when: str) -> None:
    backend = trio.run(_backend)
    out = os.environ.get("TRIO_URING_PROBE_OUT")
    if out:
        with open(out, "a", encoding="utf-8") as f:
            f.write(f"{when} {backend}\n")
    if backend != "io_uring":
        raise pytest.UsageError(f"conformance run is not on io_uring ({when}: {backend})")


def pytest_sessionstart(session: pytest.Session) -> None:
    """Refuse to run Trio's suite unless io_uring is in effect."""
    if not trio_uring.is_installed():
        raise pytest.UsageError("trio_uring.install() is not in effect")
    _record("start")


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Check nothing switched the manager back during the run."""
    _record("finish")
