"""pytest plugin loaded into a conformance suite for the io_uring run.

It proves the run is on io_uring rather than trusting the environment: the
session refuses to start unless the switch is installed, and the report
records which manager a fresh ``trio.run`` gets at the start and the end.

With ``--uring-probe-each-test`` it also proves it inside every test that
pytest-trio runs: each such test's own ``trio.run`` records the manager it
got before any fixture or test code runs (through pytest-trio's per-test
``@pytest.mark.trio(run=...)``), and a test whose run was not on io_uring,
or that never went through the probe, fails.

The report (``TRIO_URING_PROBE_OUT``) has one ``<event> <backend>`` line
per check: ``start``, then one ``test`` per pytest-trio test, then ``finish``.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Awaitable, Callable, Generator
from typing import Any

import pytest
import trio

import trio_uring

EACH_TEST = "--uring-probe-each-test"

# nodeid -> the backend of each trio.run the test made through the probe
_seen: dict[str, list[str]] = {}


async def _backend() -> str:
    return str(trio.lowlevel.current_statistics().io_statistics.backend)


def _write(line: str) -> None:
    out = os.environ.get("TRIO_URING_PROBE_OUT")
    if out:
        with open(out, "a", encoding="utf-8") as f:
            f.write(f"{line}\n")


def _record(when: str) -> None:
    backend = trio.run(_backend)
    _write(f"{when} {backend}")
    if backend != "io_uring":
        raise pytest.UsageError(f"conformance run is not on io_uring ({when}: {backend})")


def pytest_addoption(parser: pytest.Parser) -> None:
    """Add ``--uring-probe-each-test``."""
    parser.addoption(
        EACH_TEST,
        action="store_true",
        help="check the I/O manager inside every pytest-trio test (trio_uring's probe)",
    )


def pytest_sessionstart(session: pytest.Session) -> None:
    """Refuse to run the suite unless io_uring is in effect."""
    if not trio_uring.is_installed():
        raise pytest.UsageError("trio_uring.install() is not in effect")
    _record("start")


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Check nothing switched the manager back during the run."""
    _record("finish")


def _probed_run(
    nodeid: str, async_fn: Callable[..., Awaitable[object]], *args: object, **kwargs: Any
) -> object:
    """``trio.run`` for one test, noting the manager the run got first."""

    async def probed() -> object:
        _seen.setdefault(nodeid, []).append(await _backend())
        return await async_fn(*args)

    return trio.run(probed, **kwargs)


@pytest.hookimpl(trylast=True)  # after pytest-trio's trio mode has marked the tests
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Give every pytest-trio test a run function that records its manager."""
    if not config.getoption(EACH_TEST):
        return
    for item in items:
        marker = item.get_closest_marker("trio")
        if marker is None:
            continue
        if marker.kwargs.get("run", trio.run) is not trio.run:
            raise pytest.UsageError(f"{item.nodeid} has its own trio run function; cannot probe")
        # pytest-trio takes the first marker that names a run function: ours.
        probed = functools.partial(_probed_run, item.nodeid)
        item.add_marker(pytest.mark.trio(run=probed), append=False)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, object, object]:
    """Fail a pytest-trio test whose run was not on io_uring, or was not probed."""
    if not item.config.getoption(EACH_TEST) or item.get_closest_marker("trio") is None:
        return (yield)
    try:
        return (yield)
    finally:
        backends = _seen.pop(item.nodeid, [])
        got = "/".join(sorted(set(backends))) or "unprobed"
        _write(f"test {got}")
        if got != "io_uring":
            pytest.fail(f"probe: this test's trio.run was not on io_uring: {got}")
