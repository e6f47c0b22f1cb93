"""What every sample test checks: the I/O manager Trio is really using."""

from __future__ import annotations

import json
import os
from collections.abc import Callable

import pytest
import trio

import trio_uring

# Set by tests/test_pytest_plugin.py to collect what each test saw.
LOG_ENV = "PYTEST_PROJECT_BACKEND_LOG"


def io_backend() -> str:
    """The running Trio's I/O manager: "io_uring", or "epoll" for stock Trio."""
    return str(trio.lowlevel.current_statistics().io_statistics.backend)


@pytest.fixture
def check_backend(request: pytest.FixtureRequest) -> Callable[[], None]:
    """Call inside Trio: checks the backend is the one the session switched to."""

    def check() -> None:
        backend = io_backend()
        log = os.environ.get(LOG_ENV)
        if log:
            with open(log, "a", encoding="utf-8") as f:
                f.write(json.dumps({"test": request.node.nodeid, "backend": backend}) + "\n")
        expected = "io_uring" if trio_uring.is_installed() else "epoll"
        assert backend == expected

    return check
