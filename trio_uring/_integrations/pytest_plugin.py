"""pytest plugin: run a whole test session on io_uring. Off unless asked.

Three switches, the first one set wins:

* ``pytest --trio-uring`` (or ``--trio-uring=raise``, ``--trio-uring=off``),
* the environment variable ``TRIO_URING_PYTEST`` (``1``, ``raise``, ``0``...),
* the ini option ``trio_uring`` (``true``, ``raise``, ``false``...).

When on, the plugin calls ``trio_uring.install()`` before conftest files
are imported and undoes it when the session ends, so pytest-trio tests,
anyio tests (whose Trio runs start in guest mode) and plain ``trio.run``
calls in tests all run on io_uring. The header says which backend is in
effect and why.

If io_uring is unavailable: with the default ``warn`` policy the session
runs on stock Trio, the header names the cause and a ``RuntimeWarning``
goes to the warnings summary; with ``raise`` the session does not start
(a usage error naming the cause, exit status 4), because a suite that was
asked to prove io_uring must not pass on epoll.
"""

from __future__ import annotations

import os

import attrs
import pytest

from .._core.availability import check as check_availability
from .._core.settings import Fallback, Settings, current_settings
from .run import install, is_installed, switch_on, uninstall

ENV_VAR = "TRIO_URING_PYTEST"
"""The environment variable that switches the plugin on (or off)."""
INI_NAME = "trio_uring"
"""The ini option that switches the plugin on (or off)."""

_ON = ("1", "true", "yes", "on", "warn")
_OFF = ("0", "false", "no", "off")
_ACCEPTED = "1/true/yes/on/warn, raise, or 0/false/no/off"


@attrs.frozen
class SessionBackend:
    """What the plugin decided for this session."""

    requested: Fallback | None
    """The fallback policy asked for, or None when the plugin is off."""
    source: str
    """Which switch asked (``--trio-uring``, ``TRIO_URING_PYTEST=1``...), or ``""``."""
    header: str
    """The line for pytest's header."""


_STATE = pytest.StashKey[SessionBackend]()


def parse_switch(value: str, source: str) -> Fallback | None:
    """``"warn"``, ``"raise"`` or None (off) for one switch's value; UsageError if bad."""
    word = value.strip().lower()
    if word in _ON:
        return "warn"
    if word == "raise":
        return "raise"
    if word in _OFF:
        return None
    raise pytest.UsageError(f"trio_uring: {source}={value!r} is not one of {_ACCEPTED}")


def requested(config: pytest.Config) -> tuple[Fallback | None, str]:
    """The policy asked for and by which switch: command line, then env, then ini."""
    cli = getattr(config.known_args_namespace, "trio_uring", None)
    if cli is not None:
        source = "--trio-uring" if cli == "warn" else f"--trio-uring={cli}"
        return parse_switch(cli, "--trio-uring"), source
    env = os.environ.get(ENV_VAR, "")
    if env.strip():
        return parse_switch(env, ENV_VAR), f"{ENV_VAR}={env}"
    ini = str(config.getini(INI_NAME))
    if ini.strip():
        return parse_switch(ini, f"ini option {INI_NAME}"), f"ini option {INI_NAME} = {ini}"
    return None, ""


def pytest_addoption(parser: pytest.Parser) -> None:
    """Register ``--trio-uring`` and the ``trio_uring`` ini option."""
    parser.getgroup("trio_uring").addoption(
        "--trio-uring",
        dest="trio_uring",
        nargs="?",
        const="warn",
        default=None,
        metavar="warn|raise|off",
        help="run the session's Trio code on io_uring (trio_uring.install()); "
        "'raise' refuses to run on stock Trio when io_uring is unavailable",
    )
    parser.addini(
        INI_NAME,
        default="",
        help=f"run the session's Trio code on io_uring: {_ACCEPTED} "
        f"(--trio-uring and {ENV_VAR} override it)",
    )


def _switch(config: pytest.Config) -> None:
    """Decide once per session, install if asked, and arrange the undo."""
    if _STATE in config.stash:
        return
    fallback, source = requested(config)
    if fallback is None:
        if is_installed():
            # TRIO_URING_INSTALL's start-up hook (or the caller) switched it on.
            header = "trio_uring: io_uring, switched on before pytest started (plugin off)"
        else:
            header = f"trio_uring: off, stock Trio ({ENV_VAR}=1 or --trio-uring turns it on)"
        config.stash[_STATE] = SessionBackend(None, "", header)
        return
    availability = check_availability(Settings(fallback=fallback))
    if not availability.available:
        cause = availability.cause
        if fallback == "raise":
            raise pytest.UsageError(
                f"trio_uring: {source} requires io_uring, which is unavailable: {cause}"
            )
        header = f"trio_uring: requested ({source}) but unavailable: {cause}; running on stock Trio"
        config.stash[_STATE] = SessionBackend(fallback, source, header)
        config.issue_config_time_warning(RuntimeWarning(header), stacklevel=2)
        return
    previous = current_settings() if is_installed() else None
    install(fallback=fallback)
    config.add_cleanup(lambda: switch_on(previous) if previous is not None else uninstall())
    header = (
        f"trio_uring: io_uring (kernel {availability.kernel}), switched on by {source}, "
        f"fallback={fallback}"
    )
    config.stash[_STATE] = SessionBackend(fallback, source, header)


@pytest.hookimpl(tryfirst=True)
def pytest_load_initial_conftests(early_config: pytest.Config) -> None:
    """Switch before conftest files are imported (reached when loaded as a plugin)."""
    namespace = early_config.known_args_namespace
    if not (getattr(namespace, "help", False) or getattr(namespace, "version", False)):
        _switch(early_config)


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    """Switch here if the early hook was not reached (plugin registered by a conftest)."""
    _switch(config)


def pytest_report_header(config: pytest.Config) -> str:
    """One header line: the backend in effect and why."""
    state = config.stash.get(_STATE, None)
    return state.header if state is not None else "trio_uring: plugin not configured"


def session_backend(config: pytest.Config) -> SessionBackend | None:
    """What the plugin decided for ``config``'s session (None before it decided)."""
    return config.stash.get(_STATE, None)
