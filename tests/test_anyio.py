"""anyio on io_uring: the "trio_uring" backend name and the process-wide switch."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import anyio
import anyio.from_thread
import anyio.to_thread
import pytest
import sniffio
import trio
import trio.testing

import trio_uring
from trio_uring._core.settings import current_settings
from trio_uring._integrations import anyio as anyio_integration
from trio_uring._integrations.anyio import BackendFinder


async def snapshot() -> dict[str, str]:
    """What a task sees: Trio's I/O manager, sniffio's answer, anyio's backend."""
    return {
        "backend": str(trio.lowlevel.current_statistics().io_statistics.backend),
        "sniffio": sniffio.current_async_library(),
        "cancelled": anyio.get_cancelled_exc_class().__name__,
    }


ON_URING = {"backend": "io_uring", "sniffio": "trio", "cancelled": "Cancelled"}
ON_EPOLL = {"backend": "epoll", "sniffio": "trio", "cancelled": "Cancelled"}


def manager_class() -> object:
    return getattr(trio._core._run, "TheIOManager")  # noqa: B009


def test_backend_name_runs_on_io_uring_and_restores() -> None:
    before = manager_class()
    assert anyio.run(snapshot, backend="trio_uring") == ON_URING
    assert manager_class() is before
    assert not trio_uring.is_installed()
    # Nothing leaks into the caller: sniffio finds no library out here.
    with pytest.raises(sniffio.AsyncLibraryNotFoundError):
        sniffio.current_async_library()
    assert anyio.run(snapshot, backend="trio") == ON_EPOLL


def test_trio_backend_follows_the_process_wide_switch() -> None:
    assert trio_uring.install(fallback="raise")
    try:
        assert anyio.run(snapshot, backend="trio") == ON_URING
    finally:
        trio_uring.uninstall()
    assert anyio.run(snapshot, backend="trio") == ON_EPOLL


def test_backend_name_leaves_an_installed_switch_as_it_was() -> None:
    assert trio_uring.install(fallback="raise", entries=64)
    try:
        assert anyio.run(snapshot, backend="trio_uring", backend_options={"entries": 8}) == (
            ON_URING
        )
        assert trio_uring.is_installed()
        assert current_settings().entries == 64
    finally:
        trio_uring.uninstall()


def test_threads_see_trio_too() -> None:
    async def main() -> tuple[dict[str, str], str]:
        def in_worker() -> tuple[dict[str, str], str]:
            # A worker thread is not in async context (as on backend="trio")...
            try:
                outside = sniffio.current_async_library()
            except sniffio.AsyncLibraryNotFoundError:
                outside = "none"
            # ...and anyio finds its way back to the loop from it.
            return anyio.from_thread.run(snapshot), outside

        return await anyio.to_thread.run_sync(in_worker)

    assert anyio.run(main, backend="trio_uring") == (ON_URING, "none")


def test_blocking_portal() -> None:
    with anyio.from_thread.start_blocking_portal(backend="trio_uring") as portal:
        assert portal.call(snapshot) == ON_URING


def test_trio_options_pass_through() -> None:
    clock = trio.testing.MockClock(autojump_threshold=0)

    async def main() -> tuple[dict[str, str], float]:
        await anyio.sleep(1000)
        return await snapshot(), anyio.current_time()

    result, now = anyio.run(
        main, backend="trio_uring", backend_options={"clock": clock, "linked_timeouts": False}
    )
    assert result == ON_URING
    assert now >= 1000


@pytest.mark.parametrize(
    ("options", "error", "message"),
    [
        ({"fallback": "sometimes"}, ValueError, "fallback must be one of"),
        ({"entries": 0}, ValueError, "entries must be between 1 and 32768"),
        ({"entries": "8"}, TypeError, "entries must be an int"),
        ({"linked_timeouts": "yes"}, TypeError, "linked_timeouts must be a bool"),
        ({"no_such_option": 1}, TypeError, "no_such_option"),
    ],
)
def test_bad_backend_options(
    options: dict[str, object], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        anyio.run(snapshot, backend="trio_uring", backend_options=options)
    assert not trio_uring.is_installed()


def test_unavailable_warns_and_runs_on_stock(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRIO_URING_SIMULATE_FAILURE", "EPERM")
    with pytest.warns(RuntimeWarning, match="io_uring is unavailable, running on stock Trio"):
        assert anyio.run(snapshot, backend="trio_uring") == ON_EPOLL


def test_unavailable_raises_when_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRIO_URING_SIMULATE_FAILURE", "ENOSYS")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no warning on the way to the error
        with pytest.raises(trio_uring.UringUnavailableError) as info:
            anyio.run(snapshot, backend="trio_uring", backend_options={"fallback": "raise"})
    assert info.value.cause.errno == 38
    assert not trio_uring.is_installed()


def test_finder_answers_for_one_name_only() -> None:
    finder = BackendFinder()
    assert finder.find_spec("anyio._backends._trio", None) is None
    assert finder.find_spec("anyio._backends._trio_uringx", None) is None
    assert finder.find_spec("trio_uring", None) is None
    spec = importlib.util.find_spec("anyio._backends._trio_uring")
    assert spec is not None
    assert spec.origin == "trio_uring._integrations.anyio"
    # Registering again (as a re-import would) adds no second finder.
    anyio_integration.register()
    assert sum(isinstance(f, BackendFinder) for f in sys.meta_path) == 1


def test_importing_trio_uring_does_not_import_anyio() -> None:
    code = (
        "import sys, trio_uring\n"
        "assert 'anyio' not in sys.modules, 'anyio imported'\n"
        "import anyio\n"
        "async def main():\n"
        "    import trio\n"
        "    return trio.lowlevel.current_statistics().io_statistics.backend\n"
        "print(anyio.run(main, backend='trio_uring'))\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRIO_URING")}
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "io_uring"


def test_without_trio_uring_the_name_is_unknown() -> None:
    """The name exists only through trio_uring (no stray module in anyio)."""
    code = (
        "import anyio\n"
        "async def main(): pass\n"
        "try:\n"
        "    anyio.run(main, backend='trio_uring')\n"
        "except LookupError as exc:\n"
        "    print(exc)\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRIO_URING")}
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "No such backend: trio_uring"


GUEST_TESTS = """
import json, os, threading
import pytest, sniffio, trio
import trio_uring

pytestmark = pytest.mark.anyio

def record(name):
    entry = {
        "test": name,
        "backend": str(trio.lowlevel.current_statistics().io_statistics.backend),
        "sniffio": sniffio.current_async_library(),
        "guest": threading.current_thread() is threading.main_thread(),
    }
    with open(os.environ["LOG"], "a") as f:
        f.write(json.dumps(entry) + "\\n")

@pytest.fixture(params=["trio_uring", ("trio_uring", {"fallback": "raise", "entries": 16})])
def anyio_backend(request):
    return request.param

@pytest.fixture
async def resource():
    record("fixture-setup")
    yield "value"
    record("fixture-teardown")

async def test_on_uring(resource):
    assert resource == "value"
    record("test")

def test_sync_after():
    # anyio's runner is closed between tests: plain trio.run is stock again.
    async def backend():
        return trio.lowlevel.current_statistics().io_statistics.backend
    assert trio.run(backend) == "epoll"
    assert not trio_uring.is_installed()
"""


def run_guest_project(
    tmp_path: Path, **env: str
) -> tuple[subprocess.CompletedProcess[str], list[dict[str, object]]]:
    project = tmp_path / "guest"
    project.mkdir()
    (project / "pytest.ini").write_text("[pytest]\n", "utf-8")
    (project / "test_guest.py").write_text(textwrap.dedent(GUEST_TESTS), "utf-8")
    log = tmp_path / "log.jsonl"
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("TRIO_URING")}
    full_env.update(env, LOG=str(log))
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", str(project), "-p", "no:cacheprovider", "-v"],
        cwd=project,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    entries = (
        [json.loads(line) for line in log.read_text("utf-8").splitlines()] if log.exists() else []
    )
    return proc, entries


def test_pytest_plugin_guest_mode_runs_on_io_uring(tmp_path: Path) -> None:
    """anyio_backend = "trio_uring": anyio's plugin starts a guest run, on io_uring."""
    proc, entries = run_guest_project(tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "3 passed" in proc.stdout
    # Two backend params, each: fixture set-up, test, fixture teardown.
    assert [e["test"] for e in entries] == ["fixture-setup", "test", "fixture-teardown"] * 2
    for entry in entries:
        assert entry == {**entry, "backend": "io_uring", "sniffio": "trio", "guest": True}


def test_pytest_plugin_guest_mode_fallback(tmp_path: Path) -> None:
    """Under a simulated failure: "warn" runs on stock Trio, "raise" fails the test."""
    proc, entries = run_guest_project(tmp_path, TRIO_URING_SIMULATE_FAILURE="EPERM")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "test_on_uring[trio_uring] PASSED" in proc.stdout
    assert "UringUnavailableError" in proc.stdout
    assert "RuntimeWarning: trio_uring: io_uring is unavailable" in proc.stdout
    # Only the "warn" parametrization ran its fixture and test, on epoll.
    assert [e["backend"] for e in entries] == ["epoll"] * 3
