"""pytest plugin for anyio's suite in our conformance run: which of its tests run.

Loaded with ``-p anyio_selection`` by ``run_anyio_suite.py`` (inside anyio's
own tree, so it imports nothing of ours). It keeps the tests parametrized
with the Trio backend and those that take no ``anyio_backend``, and
deselects the asyncio ones and ``INTERNET_TESTS``.
"""

from __future__ import annotations

import pytest

# The only tests deselected by name: they reach the internet, which neither
# this machine nor CI has. Each is listed in docs/conformance.md too.
INTERNET_TESTS = (
    # Resolves "faß.de" through DNS.
    "tests/test_sockets.py::test_getaddrinfo[trio]",
)


def _backend_name(item: pytest.Item) -> str | None:
    """The anyio backend a test is parametrized with, if any."""
    callspec = getattr(item, "callspec", None)
    if callspec is None or "anyio_backend" not in callspec.params:
        return None
    backend = callspec.params["anyio_backend"]
    return str(backend[0] if isinstance(backend, tuple) else backend)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Keep the Trio-backend and backend-less tests; drop asyncio and internet tests."""
    keep: list[pytest.Item] = []
    drop: list[pytest.Item] = []
    for item in items:
        if _backend_name(item) not in (None, "trio") or item.nodeid in INTERNET_TESTS:
            drop.append(item)
        else:
            keep.append(item)
    # A renamed test would silently stop being deselected: refuse instead.
    unmatched = set(INTERNET_TESTS) - {item.nodeid for item in items}
    if unmatched and not config.getoption("keyword"):
        raise pytest.UsageError(f"deselected tests not found in anyio's suite: {unmatched}")
    config.hook.pytest_deselected(items=drop)
    items[:] = keep
