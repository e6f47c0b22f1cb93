"""The pytest plugin, driving examples/pytest_project in a subprocess.

Every sample test logs the I/O manager Trio gave it; these tests read that
log, so what they check is what ran, not what the plugin says.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import trio_uring
from trio_uring._core.settings import current_settings

PROJECT = Path(__file__).resolve().parent.parent / "examples" / "pytest_project"
# The three kinds of test in the sample project, by module.
KINDS = {"test_pytest_trio.py": 2, "test_anyio_plugin.py": 2, "test_plain_trio.py": 1}


class Session:
    """One pytest run of a project: exit code, output, and what each test ran on."""

    def __init__(self, proc: subprocess.CompletedProcess[str], log: Path) -> None:
        self.returncode = proc.returncode
        self.stdout = proc.stdout
        self.stderr = proc.stderr
        lines = log.read_text("utf-8").splitlines() if log.exists() else []
        self.backends = {entry["test"]: entry["backend"] for entry in map(json.loads, lines)}

    def header(self) -> str:
        """The plugin's line in pytest's header."""
        lines = [line for line in self.stdout.splitlines() if line.startswith("trio_uring:")]
        assert len(lines) == 1, self.stdout
        return lines[0]

    def kinds_on(self, backend: str) -> None:
        """Every test of every kind ran, passed, and ran on ``backend``."""
        assert self.returncode == 0, self.stdout + self.stderr
        by_module: dict[str, int] = {}
        for test, seen in self.backends.items():
            assert seen == backend, (test, seen)
            module = test.split("::")[0].rsplit("/", 1)[-1]
            by_module[module] = by_module.get(module, 0) + 1
        assert by_module == KINDS


def run_project(
    tmp_path: Path,
    *args: str,
    env: dict[str, str] | None = None,
    project: Path = PROJECT,
) -> Session:
    """Run pytest on ``project`` with a clean trio_uring environment plus ``env``."""
    log = tmp_path / "backends.jsonl"
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("TRIO_URING")}
    full_env["PYTEST_PROJECT_BACKEND_LOG"] = str(log)
    full_env.update(env or {})
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", str(project), "-p", "no:cacheprovider", *args],
        cwd=project,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    return Session(proc, log)


def copy_project(tmp_path: Path, ini_line: str) -> Path:
    """The sample project with one more line in its pytest.ini."""
    project = tmp_path / "project"
    shutil.copytree(PROJECT, project, ignore=shutil.ignore_patterns("__pycache__"))
    ini = project / "pytest.ini"
    ini.write_text(ini.read_text("utf-8") + ini_line + "\n", "utf-8")
    return project


def test_off_by_default(tmp_path: Path) -> None:
    session = run_project(tmp_path)
    session.kinds_on("epoll")
    assert session.header().startswith("trio_uring: off, stock Trio")


def test_command_line_switch(tmp_path: Path) -> None:
    session = run_project(tmp_path, "--trio-uring")
    session.kinds_on("io_uring")
    header = session.header()
    assert header.startswith("trio_uring: io_uring (kernel ")
    assert "switched on by --trio-uring, fallback=warn" in header


@pytest.mark.parametrize("value", ["1", "raise"])
def test_environment_switch(tmp_path: Path, value: str) -> None:
    session = run_project(tmp_path, env={"TRIO_URING_PYTEST": value})
    session.kinds_on("io_uring")
    expected = "warn" if value == "1" else "raise"
    assert f"TRIO_URING_PYTEST={value}, fallback={expected}" in session.header()


def test_ini_switch(tmp_path: Path) -> None:
    session = run_project(tmp_path, project=copy_project(tmp_path, "trio_uring = true"))
    session.kinds_on("io_uring")
    assert "switched on by ini option trio_uring = true" in session.header()


@pytest.mark.parametrize(
    ("ini", "env", "args", "backend"),
    [
        # The command line beats the environment, which beats the ini file.
        ("trio_uring = true", {"TRIO_URING_PYTEST": "0"}, (), "epoll"),
        ("trio_uring = false", {"TRIO_URING_PYTEST": "yes"}, (), "io_uring"),
        ("trio_uring = true", {"TRIO_URING_PYTEST": "1"}, ("--trio-uring=off",), "epoll"),
    ],
)
def test_precedence(
    tmp_path: Path, ini: str, env: dict[str, str], args: tuple[str, ...], backend: str
) -> None:
    session = run_project(tmp_path, *args, env=env, project=copy_project(tmp_path, ini))
    session.kinds_on(backend)


def test_unavailable_warns_and_runs_on_stock(tmp_path: Path) -> None:
    session = run_project(tmp_path, "--trio-uring", env={"TRIO_URING_SIMULATE_FAILURE": "EPERM"})
    session.kinds_on("epoll")
    header = session.header()
    assert header.startswith("trio_uring: requested (--trio-uring) but unavailable: ")
    assert "EPERM" in header
    assert header.endswith("; running on stock Trio")
    assert "RuntimeWarning: trio_uring: requested (--trio-uring) but unavailable" in (
        session.stdout
    )


@pytest.mark.parametrize(
    ("args", "env"),
    [(("--trio-uring=raise",), {}), ((), {"TRIO_URING_PYTEST": "raise"})],
)
def test_unavailable_with_raise_refuses_the_session(
    tmp_path: Path, args: tuple[str, ...], env: dict[str, str]
) -> None:
    session = run_project(tmp_path, *args, env={"TRIO_URING_SIMULATE_FAILURE": "ENOSYS", **env})
    assert session.returncode == pytest.ExitCode.USAGE_ERROR
    assert "requires io_uring, which is unavailable" in session.stderr
    assert "ENOSYS" in session.stderr
    assert session.backends == {}


@pytest.mark.parametrize(
    ("args", "env", "ini", "source"),
    [
        (("--trio-uring=banana",), {}, "", "--trio-uring='banana'"),
        ((), {"TRIO_URING_PYTEST": "maybe"}, "", "TRIO_URING_PYTEST='maybe'"),
        ((), {}, "trio_uring = sometimes", "ini option trio_uring='sometimes'"),
    ],
)
def test_bad_values_are_usage_errors(
    tmp_path: Path, args: tuple[str, ...], env: dict[str, str], ini: str, source: str
) -> None:
    session = run_project(tmp_path, *args, env=env, project=copy_project(tmp_path, ini))
    assert session.returncode == pytest.ExitCode.USAGE_ERROR
    assert f"trio_uring: {source} is not one of " in session.stderr
    assert session.backends == {}


def test_conftest_imports_already_run_on_io_uring(tmp_path: Path) -> None:
    """The switch happens before conftest files are imported."""
    project = tmp_path / "early"
    project.mkdir()
    (project / "conftest.py").write_text(
        textwrap.dedent(
            """
            import json, os, trio

            async def backend():
                return trio.lowlevel.current_statistics().io_statistics.backend

            with open(os.environ["PYTEST_PROJECT_BACKEND_LOG"], "a") as f:
                f.write(json.dumps({"test": "conftest", "backend": trio.run(backend)}) + "\\n")
            """
        ),
        "utf-8",
    )
    (project / "test_nothing.py").write_text("def test_nothing():\n    pass\n", "utf-8")
    session = run_project(tmp_path, "--trio-uring", project=project)
    assert session.returncode == 0, session.stdout + session.stderr
    assert session.backends == {"conftest": "io_uring"}


def in_process_session(tmp_path: Path, *args: str) -> int:
    """Run a one-test session inside this process (to see what it leaves behind)."""
    project = tmp_path / "inproc"
    project.mkdir()
    (project / "pytest.ini").write_text("[pytest]\n", "utf-8")
    (project / "test_one.py").write_text(
        textwrap.dedent(
            """
            import trio

            async def backend():
                return trio.lowlevel.current_statistics().io_statistics.backend

            def test_backend():
                assert trio.run(backend) == "io_uring"
            """
        ),
        "utf-8",
    )
    return pytest.main(
        [str(project), "-q", "-p", "no:cacheprovider", "--import-mode=importlib", *args]
    )


def test_session_end_uninstalls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TRIO_URING_PYTEST", raising=False)
    assert not trio_uring.is_installed()
    assert in_process_session(tmp_path, "--trio-uring") == 0
    assert not trio_uring.is_installed()


def test_session_end_restores_an_earlier_switch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TRIO_URING_PYTEST", raising=False)
    assert trio_uring.install(fallback="raise", entries=64)
    try:
        assert in_process_session(tmp_path, "--trio-uring") == 0
        assert trio_uring.is_installed()
        settings = current_settings()
        assert (settings.fallback, settings.entries) == ("raise", 64)
    finally:
        trio_uring.uninstall()


def test_switched_on_before_pytest_is_reported(tmp_path: Path) -> None:
    # -W error: pytest must not warn that it cannot rewrite the already imported plugin.
    session = run_project(tmp_path, "-W", "error", env={"TRIO_URING_INSTALL": "1"})
    session.kinds_on("io_uring")
    assert session.header() == (
        "trio_uring: io_uring, switched on before pytest started (plugin off)"
    )
