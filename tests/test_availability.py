"""Every way io_uring can be unavailable, and what trio_uring does about each.

Causes are produced for real where this machine allows it (a seccomp
filter from ``seccomp_deny.py``, the ``kernel.io_uring_disabled`` sysctl)
and injected through ``TRIO_URING_SIMULATE_FAILURE`` otherwise. Anything
that opens rings, swaps Trio's manager or installs a filter runs in a child
interpreter: a seccomp filter can never be removed, and the process-wide
switch must not leak into the other tests of this process.
"""

from __future__ import annotations

import errno
import json
import os
import platform
import resource
import select
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import trio
from hypothesis import given
from hypothesis import strategies as st

import trio_uring
from trio_uring._core.availability import SYSCTL_DISABLED, diagnose_setup_error, seccomp_mode
from trio_uring._core.settings import Settings, current_settings
from trio_uring._tools.cli import main as cli_main

SECCOMP_HELPER = Path(__file__).resolve().parent / "seccomp_deny.py"
NR_IO_URING_SETUP = 425
# Generous: a child only imports Trio and opens a ring or two, but CI
# machines can be slow and a hung child must fail the test, not the run.
TIMEOUT = 60.0
CAUSE_CODES = {
    "seccomp",
    "disabled",
    "not-supported",
    "memlock",
    "missing-feature",
    "missing-opcode",
    "extension",
    "error",
}
KERNEL = platform.release()
# Children inherit the seccomp state of this process: if it already runs
# under a filter, ENOSYS can no longer be told apart from one.
HOST_FILTERED = seccomp_mode() == 2

# Shared by every child: runs a callable with warnings recorded, and prints
# one machine-readable result line (other output, such as warnings printed
# at start-up by the .pth hook, goes around it).
PRELUDE = textwrap.dedent(
    """
    import json, sys, warnings
    import trio
    import trio_uring

    def cause_dict(cause):
        if cause is None:
            return None
        return {"code": cause.code, "message": cause.message, "errno": cause.errno}

    def check():
        a = trio_uring.check_availability()
        return {"available": a.available, "cause": cause_dict(a.cause),
                "features": list(a.features), "opcodes": list(a.opcodes)}

    async def backend():
        stats = trio.lowlevel.current_statistics().io_statistics
        return {"type": type(stats).__name__, "backend": stats.backend}

    def recorded(fn):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            value = error = None
            try:
                value = fn()
            except Exception as exc:
                error = {"type": type(exc).__name__, "message": str(exc),
                         "cause": cause_dict(getattr(exc, "cause", None))}
        return {"value": value, "error": error,
                "warnings": [{"category": w.category.__name__, "message": str(w.message),
                              "filename": w.filename} for w in caught]}

    def report(**fields):
        print("RESULT " + json.dumps(fields), flush=True)
    """
)

# Everything a program can do on a machine without io_uring, in order:
# ask, run with each policy, then install the switch and run plain Trio.
SCENARIO = PRELUDE + textwrap.dedent(
    """
    report(
        check=check(),
        run_warn=recorded(lambda: trio_uring.run(backend)),
        run_raise=recorded(lambda: trio_uring.run(backend, fallback="raise")),
        install_raise=recorded(lambda: trio_uring.install(fallback="raise")),
        install=recorded(trio_uring.install),
        installed=trio_uring.is_installed(),
        trio_run=recorded(lambda: trio.run(backend)),
    )
    """
)


# -- running children ---------------------------------------------------------


STEERING_VARIABLES = (
    "TRIO_URING_INSTALL", "TRIO_URING_SIMULATE_FAILURE", "PYTHONWARNINGS",
    "TRIO_URING_MODE", "TRIO_URING_DATA_PATH",
)  # fmt: skip


def child_env(**extra: str) -> dict[str, str]:
    """This process's environment without anything that steers trio_uring."""
    env = {
        key: value
        for key, value in os.environ.items()
        # PYTHONWARNINGS could hide the warnings under test.
        if key not in STEERING_VARIABLES
    }
    env.update(extra)
    return env


def child_argv(python_args: list[str], deny: str | None = None) -> list[str]:
    """``python ARGS``, or the same under a filter failing io_uring_setup with ``deny``."""
    if deny is None:
        return [sys.executable, *python_args]
    return [
        sys.executable,
        str(SECCOMP_HELPER),
        "--deny",
        f"{NR_IO_URING_SETUP}={deny}",
        "--",
        *python_args,
    ]


def run_child(
    python_args: list[str], *, deny: str | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run a child interpreter to completion, with a bounded wait."""
    return subprocess.run(
        child_argv(python_args, deny),
        env=child_env() if env is None else env,
        # Away from the checkout, so the child imports the installed package.
        cwd="/",
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )


def parse_result(proc: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    """The child's ``RESULT`` line, failing with its whole output if there is none."""
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            result: dict[str, Any] = json.loads(line[len("RESULT ") :])
            return result
    pytest.fail(f"child exited {proc.returncode} without a result:\n{proc.stdout}{proc.stderr}")


def run_script(
    script: str, *, deny: str | None = None, env: dict[str, str] | None = None
) -> tuple[dict[str, Any], subprocess.CompletedProcess[str]]:
    """Run ``script`` in a child that must succeed; return its result and the process."""
    proc = run_child(["-c", script], deny=deny, env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return parse_result(proc), proc


class LineReader:
    """Lines from a child's stdout, each read with a deadline (a pipe has none)."""

    def __init__(self, proc: subprocess.Popen[bytes]):
        assert proc.stdout is not None
        self.fd = proc.stdout.fileno()
        self.buffer = b""
        self.seen: list[str] = []

    def wait_for(self, prefix: str, deadline: float) -> str:
        """The first line starting with ``prefix``; fail at ``deadline`` or EOF."""
        while True:
            while b"\n" in self.buffer:
                raw, self.buffer = self.buffer.split(b"\n", 1)
                line = raw.decode(errors="replace")
                self.seen.append(line)
                if line.startswith(prefix):
                    return line
            remaining = deadline - time.monotonic()
            ready, _, _ = select.select([self.fd], [], [], max(0.0, remaining))
            chunk = os.read(self.fd, 65536) if ready else b""
            if not chunk:
                what = "timed out" if not ready else "exited"
                pytest.fail(f"child {what} before {prefix!r}:\n" + "\n".join(self.seen))
            self.buffer += chunk


# -- fixtures -----------------------------------------------------------------


@pytest.fixture(scope="module")
def host() -> dict[str, Any]:
    """What this machine offers with no filter and no injection (asked in a child)."""
    result, _ = run_script(PRELUDE + "report(check=check())")
    check: dict[str, Any] = result["check"]
    return check


@pytest.fixture
def needs_uring(host: dict[str, Any]) -> None:
    """Skip unless io_uring works here: the fault under test must be the only one."""
    if not host["available"]:
        pytest.skip(f"io_uring is unavailable on this machine: {host['cause']}")


@pytest.fixture(scope="module")
def seccomp() -> None:
    """Skip unless ``seccomp_deny.py`` can install its filter here."""
    proc = run_child(["-c", "pass"], deny="EPERM")
    if proc.returncode != 0:
        pytest.skip(f"cannot install a seccomp filter here: {proc.stderr.strip()[-300:]}")


@pytest.fixture
def io_uring_disabled() -> Iterator[Callable[[int | None], None]]:
    """A setter for ``kernel.io_uring_disabled``; ``None`` puts the original back.

    The sysctl is machine-wide, so the finalizer restores it even if a test
    fails halfway; the tests also restore it themselves the moment their
    child has answered, to keep the window where it is changed short.
    """
    path = Path(SYSCTL_DISABLED)
    try:
        original = path.read_text(encoding="ascii").strip()
    except OSError:
        pytest.skip(f"no {SYSCTL_DISABLED} (the sysctl exists from Linux 6.6)")
    try:
        # Writing the current value back changes nothing but proves we may.
        path.write_text(f"{original}\n", encoding="ascii")
    except OSError as exc:
        pytest.skip(
            f"{SYSCTL_DISABLED} is not writable ({exc.strerror}): changing it needs root "
            "and a writable /proc/sys (containers mount it read-only)"
        )

    def set_value(value: int | None) -> None:
        path.write_text(f"{original if value is None else value}\n", encoding="ascii")

    try:
        yield set_value
    finally:
        set_value(None)


def has_cap_sys_admin() -> bool:
    """Whether this process (and so its children) holds CAP_SYS_ADMIN."""
    with open("/proc/self/status", encoding="ascii") as f:
        for line in f:
            if line.startswith("CapEff:"):
                return bool(int(line.split()[1], 16) >> 21 & 1)
    return False


# -- seccomp, for real -----------------------------------------------------------


def assert_seccomp_cause(cause: dict[str, Any] | None, err: int) -> None:
    assert cause is not None
    assert cause["code"] == "seccomp"
    assert cause["errno"] == err
    assert "seccomp" in cause["message"]
    assert errno.errorcode[err] in cause["message"]


def assert_fell_back(result: dict[str, Any], code: str, fragment: str) -> None:
    """The scenario's outcome on a machine where io_uring fails with ``code``."""
    check = result["check"]
    assert check["available"] is False
    assert check["cause"]["code"] == code
    assert check["features"] == []
    assert check["opcodes"] == []

    # Default policy: the program runs, on stock Trio, with one warning naming the cause.
    run_warn = result["run_warn"]
    assert run_warn["error"] is None
    assert run_warn["value"] == {"type": "_EpollStatistics", "backend": "epoll"}
    [warning] = run_warn["warnings"]
    assert warning["category"] == "RuntimeWarning"
    assert "running on stock Trio" in warning["message"]
    assert fragment in warning["message"]
    assert check["cause"]["message"] in warning["message"]

    # "raise": the error carries the same cause; nothing runs, nothing warns.
    run_raise = result["run_raise"]
    assert run_raise["value"] is None
    assert run_raise["warnings"] == []
    assert run_raise["error"]["type"] == "UringUnavailableError"
    assert run_raise["error"]["cause"] == check["cause"]
    install_raise = result["install_raise"]
    assert install_raise["error"]["type"] == "UringUnavailableError"
    assert install_raise["error"]["cause"] == check["cause"]

    # install() declines with the warning, attributed to its caller, and
    # leaves Trio's own manager in place for plain trio.run.
    install = result["install"]
    assert install["value"] is False
    [warning] = install["warnings"]
    assert warning["category"] == "RuntimeWarning"
    assert fragment in warning["message"]
    assert warning["filename"] == "<string>"
    assert result["installed"] is False
    trio_run = result["trio_run"]
    assert trio_run["value"] == {"type": "_EpollStatistics", "backend": "epoll"}
    assert trio_run["warnings"] == []


@pytest.mark.usefixtures("seccomp")
def test_seccomp_eperm_is_diagnosed_and_every_entry_point_falls_back() -> None:
    result, _ = run_script(SCENARIO, deny="EPERM")
    assert_seccomp_cause(result["check"]["cause"], errno.EPERM)
    assert_fell_back(result, "seccomp", "seccomp filter")


@pytest.mark.usefixtures("seccomp")
def test_seccomp_enosys_is_blamed_on_the_filter_not_the_kernel() -> None:
    result, _ = run_script(SCENARIO, deny="ENOSYS")
    assert_seccomp_cause(result["check"]["cause"], errno.ENOSYS)
    assert_fell_back(result, "seccomp", "seccomp filter")


# -- kernel.io_uring_disabled, for real ------------------------------------------

GATED = PRELUDE + textwrap.dedent(
    """
    # Everything is imported; wait for the parent to change the sysctl, so
    # that it stays changed only while this one check runs.
    print("READY", flush=True)
    sys.stdin.readline()
    report(check=check())
    """
)


def gated_check(
    set_value: Callable[[int | None], None], value: int, *, deny: str | None = None
) -> Any:
    """Check availability in a child while ``kernel.io_uring_disabled`` is ``value``."""
    proc = subprocess.Popen(
        child_argv(["-c", GATED], deny),
        env=child_env(),
        cwd="/",
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + TIMEOUT
        reader = LineReader(proc)
        reader.wait_for("READY", deadline)
        set_value(value)
        try:
            assert proc.stdin is not None
            proc.stdin.write(b"go\n")
            proc.stdin.flush()
            line = reader.wait_for("RESULT ", deadline)
        finally:
            set_value(None)
        assert proc.wait(timeout=TIMEOUT) == 0, "\n".join(reader.seen)
        return json.loads(line[len("RESULT ") :])["check"]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=TIMEOUT)
        for stream in (proc.stdin, proc.stdout):
            if stream is not None:
                stream.close()


@pytest.mark.usefixtures("needs_uring")
def test_sysctl_disabled_2_denies_everyone(io_uring_disabled: Callable[[int | None], None]) -> None:
    check = gated_check(io_uring_disabled, 2)
    assert check["available"] is False
    assert check["cause"]["code"] == "disabled"
    assert check["cause"]["errno"] == errno.EPERM
    assert "kernel.io_uring_disabled=2" in check["cause"]["message"]


@pytest.mark.usefixtures("needs_uring")
def test_sysctl_disabled_1_still_lets_privileged_processes_in(
    io_uring_disabled: Callable[[int | None], None],
) -> None:
    check = gated_check(io_uring_disabled, 1)
    if has_cap_sys_admin():
        # 1 restricts io_uring to CAP_SYS_ADMIN and kernel.io_uring_group:
        # as root we are still allowed, so there is nothing to diagnose.
        assert check["available"] is True
        assert check["cause"] is None
    else:
        assert check["cause"]["code"] == "disabled"
        assert "kernel.io_uring_disabled=1" in check["cause"]["message"]


@pytest.mark.usefixtures("needs_uring", "seccomp")
def test_sysctl_disabled_1_does_not_hide_a_filter_from_root(
    io_uring_disabled: Callable[[int | None], None],
) -> None:
    if not has_cap_sys_admin():
        pytest.skip("needs CAP_SYS_ADMIN, which io_uring_disabled=1 does not restrict")
    check = gated_check(io_uring_disabled, 1, deny="EPERM")
    assert check["cause"]["code"] == "seccomp"


# -- injected causes ----------------------------------------------------------------

SIMULATED = [
    pytest.param("ENOMEM", "memlock", errno.ENOMEM, ["ENOMEM", "RLIMIT_MEMLOCK"], id="memlock"),
    pytest.param(
        "ENOSYS", "not-supported", errno.ENOSYS, ["ENOSYS", KERNEL, "5.11"], id="not-supported"
    ),
    pytest.param("EINVAL", "error", errno.EINVAL, ["EINVAL"], id="other-errno"),
    pytest.param("feature:EXT_ARG", "missing-feature", None, ["IORING_FEAT_EXT_ARG"], id="ext-arg"),
    pytest.param("feature:NODROP", "missing-feature", None, ["IORING_FEAT_NODROP"], id="nodrop"),
    pytest.param("opcode:POLL_ADD", "missing-opcode", None, ["IORING_OP_POLL_ADD"], id="poll-add"),
    pytest.param(
        "opcode:LINK_TIMEOUT", "missing-opcode", None, ["IORING_OP_LINK_TIMEOUT"], id="link-to"
    ),
    pytest.param("extension", "extension", None, ["C extension"], id="extension"),
]


@pytest.mark.usefixtures("needs_uring")
@pytest.mark.parametrize(("simulate", "code", "err", "fragments"), SIMULATED)
def test_simulated_cause_is_diagnosed_and_every_entry_point_falls_back(
    simulate: str, code: str, err: int | None, fragments: list[str]
) -> None:
    if code == "not-supported" and HOST_FILTERED:
        pytest.skip("this process runs under a seccomp filter, which ENOSYS is blamed on")
    result, _ = run_script(SCENARIO, env=child_env(TRIO_URING_SIMULATE_FAILURE=simulate))
    cause = result["check"]["cause"]
    assert cause["code"] == code
    assert cause["errno"] == err
    for fragment in fragments:
        assert fragment in cause["message"]
    assert_fell_back(result, code, fragments[-1])


@pytest.mark.usefixtures("needs_uring")
def test_simulated_memlock_reports_the_current_limit() -> None:
    soft = 64 * 1024
    script = (
        f"import resource; resource.setrlimit(resource.RLIMIT_MEMLOCK, ({soft}, {soft}))\n"
        + PRELUDE
        + "report(check=check())"
    )
    result, _ = run_script(script, env=child_env(TRIO_URING_SIMULATE_FAILURE="ENOMEM"))
    assert f"RLIMIT_MEMLOCK (now {soft} bytes)" in result["check"]["cause"]["message"]


def test_simulating_an_unknown_errno_is_an_error_not_a_diagnosis() -> None:
    proc = run_child(
        ["-c", PRELUDE + "report(check=check())"],
        env=child_env(TRIO_URING_SIMULATE_FAILURE="EBOGUS"),
    )
    assert proc.returncode != 0
    assert "ValueError" in proc.stderr
    assert "TRIO_URING_SIMULATE_FAILURE='EBOGUS'" in proc.stderr


def test_missing_c_extension_is_a_cause_not_an_import_error() -> None:
    # None in sys.modules makes the import fail as a missing build would.
    script = "import sys; sys.modules['trio_uring._core._uring'] = None\n" + SCENARIO
    result, _ = run_script(script)
    assert result["check"]["cause"]["code"] == "extension"
    assert_fell_back(result, "extension", "C extension")


# -- diagnose_setup_error: every branch ------------------------------------------------


def diagnose(
    err: int,
    *,
    disabled: int | None = 0,
    seccomp: int | None = 0,
    memlock: int | None = 65536,
    kernel: str = "6.1.0-test",
) -> trio_uring.Cause:
    return diagnose_setup_error(
        err, disabled=disabled, seccomp=seccomp, memlock=memlock, kernel=kernel
    )


@pytest.mark.parametrize("seccomp", [0, 2, None])
def test_diagnose_eperm_with_sysctl_2_is_disabled_whatever_else(seccomp: int | None) -> None:
    cause = diagnose(errno.EPERM, disabled=2, seccomp=seccomp)
    assert (cause.code, cause.errno) == ("disabled", errno.EPERM)
    assert "kernel.io_uring_disabled=2" in cause.message
    assert "set it to 0" in cause.message


def test_diagnose_eperm_with_sysctl_1_points_at_the_group() -> None:
    cause = diagnose(errno.EPERM, disabled=1)
    assert (cause.code, cause.errno) == ("disabled", errno.EPERM)
    assert "kernel.io_uring_disabled=1" in cause.message
    assert "kernel.io_uring_group" in cause.message


@pytest.mark.parametrize("disabled", [0, None])
def test_diagnose_eperm_under_a_filter_is_seccomp(disabled: int | None) -> None:
    cause = diagnose(errno.EPERM, disabled=disabled, seccomp=2)
    assert (cause.code, cause.errno) == ("seccomp", errno.EPERM)
    assert "EPERM" in cause.message
    assert "io_uring_setup, io_uring_enter and io_uring_register" in cause.message


@pytest.mark.parametrize(("disabled", "seccomp"), [(0, 0), (None, None), (0, 1)])
def test_diagnose_unexplained_eperm_is_a_plain_error(
    disabled: int | None, seccomp: int | None
) -> None:
    cause = diagnose(errno.EPERM, disabled=disabled, seccomp=seccomp)
    assert (cause.code, cause.errno) == ("error", errno.EPERM)
    assert "EPERM" in cause.message
    assert os.strerror(errno.EPERM) in cause.message


def test_diagnose_enosys_under_a_filter_is_seccomp() -> None:
    cause = diagnose(errno.ENOSYS, seccomp=2)
    assert (cause.code, cause.errno) == ("seccomp", errno.ENOSYS)
    assert "ENOSYS" in cause.message


@pytest.mark.parametrize("seccomp", [0, 1, None])
def test_diagnose_enosys_without_a_filter_is_the_kernel(seccomp: int | None) -> None:
    cause = diagnose(errno.ENOSYS, seccomp=seccomp, kernel="4.19.0-old")
    assert (cause.code, cause.errno) == ("not-supported", errno.ENOSYS)
    assert "4.19.0-old" in cause.message
    assert "CONFIG_IO_URING" in cause.message
    assert "5.11" in cause.message


@pytest.mark.parametrize(
    ("memlock", "shown"),
    [
        (65536, "now 65536 bytes"),
        (0, "now 0 bytes"),
        (None, "now unlimited"),
        (resource.RLIM_INFINITY, "now unlimited"),
    ],
)
def test_diagnose_enomem_is_memlock_with_the_limit(memlock: int | None, shown: str) -> None:
    cause = diagnose(errno.ENOMEM, memlock=memlock)
    assert (cause.code, cause.errno) == ("memlock", errno.ENOMEM)
    assert "RLIMIT_MEMLOCK" in cause.message
    assert shown in cause.message
    assert "ulimit -l" in cause.message


@pytest.mark.parametrize("err", [errno.EINVAL, errno.EFAULT, errno.EMFILE, 4000])
def test_diagnose_anything_else_is_a_plain_error_naming_the_errno(err: int) -> None:
    cause = diagnose(err, disabled=2, seccomp=2)
    assert (cause.code, cause.errno) == ("error", err)
    assert errno.errorcode.get(err, str(err)) in cause.message
    assert os.strerror(err) in cause.message


@given(
    err=st.integers(min_value=1, max_value=4095),
    disabled=st.none() | st.integers(min_value=-1, max_value=3),
    seccomp=st.none() | st.integers(min_value=0, max_value=2),
    memlock=st.none() | st.integers(min_value=0, max_value=2**64 - 1),
    kernel=st.text(min_size=1, max_size=30),
)
def test_diagnose_always_names_a_known_cause(
    err: int, disabled: int | None, seccomp: int | None, memlock: int | None, kernel: str
) -> None:
    cause = diagnose_setup_error(
        err, disabled=disabled, seccomp=seccomp, memlock=memlock, kernel=kernel
    )
    assert cause.code in CAUSE_CODES
    assert cause.errno == err
    assert cause.message
    assert str(cause) == cause.message
    error = trio_uring.UringUnavailableError(cause)
    assert error.cause is cause
    assert str(error) == cause.message


# -- the .pth start-up hook --------------------------------------------------------------

HOOK_SCRIPT = PRELUDE + textwrap.dedent(
    """
    report(
        installed=trio_uring.is_installed(),
        settings=repr(trio_uring._core.settings.current_settings()),
        trio_run=recorded(lambda: trio.run(backend)),
    )
    """
)


@pytest.mark.usefixtures("needs_uring")
@pytest.mark.parametrize(("value", "fallback"), [("raise", "raise"), ("1", "warn")])
def test_hook_installs_the_switch_in_child_processes(value: str, fallback: str) -> None:
    result, proc = run_script(HOOK_SCRIPT, env=child_env(TRIO_URING_INSTALL=value))
    assert result["installed"] is True
    assert f"fallback='{fallback}'" in result["settings"]
    assert result["trio_run"]["value"] == {"type": "UringStatistics", "backend": "io_uring"}
    assert result["trio_run"]["warnings"] == []
    assert proc.stderr == ""


@pytest.mark.usefixtures("needs_uring")
def test_hook_takes_the_mode_and_data_path_from_the_environment() -> None:
    env = child_env(
        TRIO_URING_INSTALL="raise", TRIO_URING_MODE="sqpoll", TRIO_URING_DATA_PATH="Batched"
    )
    result, proc = run_script(HOOK_SCRIPT, env=env)
    assert "mode='sqpoll'" in result["settings"]
    assert "data_path='batched'" in result["settings"]
    assert result["trio_run"]["value"]["backend"] == "io_uring"
    assert proc.stderr == ""


@pytest.mark.usefixtures("needs_uring")
def test_hook_warns_about_a_bad_mode_and_keeps_the_default() -> None:
    env = child_env(TRIO_URING_INSTALL="1", TRIO_URING_MODE="iopoll")
    result, proc = run_script(HOOK_SCRIPT, env=env)
    assert result["installed"] is True
    assert "mode='interrupt'" in result["settings"]
    assert "TRIO_URING_MODE='iopoll' is ignored: mode must be one of" in proc.stderr


@pytest.mark.parametrize("value", ["", "0"])
def test_hook_does_nothing_unless_asked(value: str) -> None:
    result, _ = run_script(HOOK_SCRIPT, env=child_env(TRIO_URING_INSTALL=value))
    assert result["installed"] is False
    assert result["trio_run"]["value"]["backend"] == "epoll"


@pytest.mark.usefixtures("seccomp")
def test_hook_under_a_filter_warns_at_start_up_and_runs_on_epoll() -> None:
    result, proc = run_script(HOOK_SCRIPT, deny="EPERM", env=child_env(TRIO_URING_INSTALL="1"))
    assert result["installed"] is False
    assert result["trio_run"]["value"] == {"type": "_EpollStatistics", "backend": "epoll"}
    # The warning is issued while site.py runs the hook, before the script
    # can record anything, so it is printed to stderr.
    assert "RuntimeWarning" in proc.stderr
    assert "running on stock Trio" in proc.stderr
    assert "seccomp filter denies io_uring_setup with EPERM" in proc.stderr
    assert "Error processing line" not in proc.stderr


@pytest.mark.usefixtures("seccomp")
def test_hook_with_raise_policy_under_a_filter_does_not_run_on_epoll() -> None:
    proc = run_child(["-c", HOOK_SCRIPT], deny="EPERM", env=child_env(TRIO_URING_INSTALL="raise"))
    if proc.returncode != 0:
        # Refusing to start is one acceptable answer...
        assert "seccomp" in proc.stderr
        return
    # ...raising from trio.run, where the program can catch it, is the other.
    trio_run = parse_result(proc)["trio_run"]
    assert trio_run["value"] is None
    assert trio_run["error"]["type"] == "UringUnavailableError"
    assert trio_run["error"]["cause"]["code"] == "seccomp"


# -- bad settings ------------------------------------------------------------------------


async def _noop() -> None:
    await trio.sleep(0)


@pytest.mark.parametrize(
    ("kwargs", "exc", "match"),
    [
        ({"fallback": "nope"}, ValueError, "fallback"),
        ({"entries": 0}, ValueError, "entries"),
        ({"entries": 32769}, ValueError, "entries"),
        ({"entries": -1}, ValueError, "entries"),
        ({"entries": "x"}, TypeError, "entries must be an int"),
        ({"entries": 1.5}, TypeError, "entries must be an int"),
        ({"entries": True}, TypeError, "entries must be an int"),
    ],
)
@pytest.mark.parametrize("entry_point", ["run", "install"])
def test_bad_settings_are_refused_before_anything_changes(
    entry_point: str, kwargs: dict[str, Any], exc: type[Exception], match: str
) -> None:
    # Validation happens before the manager is swapped or a ring is opened,
    # so this is safe in the test process, and we check nothing leaked.
    installed, settings = trio_uring.is_installed(), current_settings()
    call: Callable[[], object]
    if entry_point == "run":
        call = lambda: trio_uring.run(_noop, **kwargs)  # noqa: E731
    else:
        call = lambda: trio_uring.install(**kwargs)  # noqa: E731
    with pytest.raises(exc, match=match):
        call()
    assert trio_uring.is_installed() is installed
    assert current_settings() is settings


def test_settings_bounds_are_inclusive() -> None:
    assert Settings(entries=1).entries == 1
    assert Settings(entries=32768).entries == 32768


# -- python -m trio_uring info -------------------------------------------------------------


def run_info(*args: str, deny: str | None = None, **env: str) -> subprocess.CompletedProcess[str]:
    return run_child(["-m", "trio_uring", "info", *args], deny=deny, env=child_env(**env))


@pytest.mark.usefixtures("needs_uring")
def test_info_text_when_available() -> None:
    proc = run_info()
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert f"Linux {KERNEL}" in out
    assert f"trio_uring {trio_uring.__version__} on Trio {trio.__version__}" in out
    assert "io_uring:       available" in out
    assert "EXT_ARG" in out
    assert "POLL_ADD" in out
    assert " known: NOP " in out
    assert "entries=256, fallback='warn', linked_timeouts=True" in out
    assert "switch:         not installed" in out


@pytest.mark.usefixtures("needs_uring")
def test_info_json_when_available() -> None:
    from trio_uring._core.abi import OPCODE_NAMES

    proc = run_info("--json")
    assert proc.returncode == 0, proc.stderr
    info = json.loads(proc.stdout)
    assert info["available"] is True
    assert info["cause"] is None
    assert info["kernel"] == KERNEL
    assert info["trio"] == trio.__version__
    assert info["trio_uring"] == trio_uring.__version__
    assert {"EXT_ARG", "NODROP"} <= set(info["features"])
    assert {"NOP", "POLL_ADD", "ASYNC_CANCEL", "LINK_TIMEOUT"} <= set(info["opcodes"])
    assert info["opcodes_known"] == len(OPCODE_NAMES)
    assert 0 < info["opcodes_known_supported"] <= len(OPCODE_NAMES)
    assert info["ring"]["sq_entries"] == 256
    assert info["ring"]["cq_entries"] >= 1024
    assert info["settings"] == {
        "entries": 256,
        "fallback": "warn",
        "linked_timeouts": True,
        "native_sockets": True,
        "data_path": "direct",
        "mode": "interrupt",
        "sqpoll_idle": 1.0,
    }
    assert info["installed"] is False
    assert info["environment"] == {
        "TRIO_URING_INSTALL": None,
        "TRIO_URING_MODE": None,
        "TRIO_URING_DATA_PATH": None,
        "TRIO_URING_SIMULATE_FAILURE": None,
    }
    assert info["system"]["seccomp"] == seccomp_mode()


@pytest.mark.usefixtures("needs_uring")
def test_info_reports_the_switch_installed_by_the_hook() -> None:
    proc = run_info("--json", TRIO_URING_INSTALL="raise")
    assert proc.returncode == 0, proc.stderr
    info = json.loads(proc.stdout)
    assert info["installed"] is True
    assert info["settings"]["fallback"] == "raise"
    assert info["environment"]["TRIO_URING_INSTALL"] == "raise"


@pytest.mark.usefixtures("seccomp")
def test_info_under_a_filter_exits_1_and_names_the_cause() -> None:
    text = run_info(deny="EPERM")
    assert text.returncode == 1, text.stderr
    assert "UNAVAILABLE (cause: seccomp, EPERM)" in text.stdout
    assert "a seccomp filter denies io_uring_setup" in text.stdout
    assert "seccomp mode 2" in text.stdout

    as_json = run_info("--json", deny="EPERM")
    assert as_json.returncode == 1, as_json.stderr
    info = json.loads(as_json.stdout)
    assert info["available"] is False
    assert info["cause"]["code"] == "seccomp"
    assert info["cause"]["errno"] == errno.EPERM
    assert info["cause"]["errno_name"] == "EPERM"
    assert "seccomp filter" in info["cause"]["message"]
    assert info["ring"] is None
    assert info["features"] == []
    assert info["opcodes"] == []
    assert info["opcodes_known_supported"] == 0
    assert info["system"]["seccomp"] == 2


@pytest.mark.usefixtures("needs_uring")
def test_info_with_a_simulated_cause_exits_1() -> None:
    proc = run_info("--json", TRIO_URING_SIMULATE_FAILURE="opcode:POLL_ADD")
    assert proc.returncode == 1, proc.stderr
    info = json.loads(proc.stdout)
    assert info["cause"]["code"] == "missing-opcode"
    assert info["cause"]["errno"] is None
    assert info["cause"]["errno_name"] is None
    assert info["environment"]["TRIO_URING_SIMULATE_FAILURE"] == "opcode:POLL_ADD"

    text = run_info(TRIO_URING_SIMULATE_FAILURE="opcode:POLL_ADD")
    assert text.returncode == 1, text.stderr
    assert "UNAVAILABLE (cause: missing-opcode)" in text.stdout
    assert "IORING_OP_POLL_ADD" in text.stdout


def test_info_with_an_invalid_simulation_is_a_usage_error() -> None:
    proc = run_info(TRIO_URING_SIMULATE_FAILURE="EBOGUS")
    assert proc.returncode == 2
    assert "TRIO_URING_SIMULATE_FAILURE" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_help_documents_the_exit_status() -> None:
    proc = run_info("--help")
    assert proc.returncode == 0
    assert "exit status: 0 if io_uring is available, 1 if it is not" in proc.stdout
    top = run_child(["-m", "trio_uring", "--help"])
    assert top.returncode == 0
    assert "info" in top.stdout
    assert "exit status" in top.stdout


def test_a_command_is_required() -> None:
    proc = run_child(["-m", "trio_uring"])
    assert proc.returncode == 2
    assert "COMMAND" in proc.stderr


def test_console_script_runs_info() -> None:
    script = Path(sys.executable).parent / "trio-uring"
    if not script.exists():
        pytest.skip(f"no console script at {script}")
    proc = subprocess.run(
        [str(script), "info", "--json"],
        env=child_env(),
        cwd="/",
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )
    assert proc.returncode in (0, 1), proc.stderr
    assert "available" in json.loads(proc.stdout)


@pytest.mark.usefixtures("needs_uring")
def test_main_in_process_returns_the_exit_status(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TRIO_URING_SIMULATE_FAILURE", raising=False)
    # check() opens and closes a ring and changes no state, so calling the
    # entry function here is safe and covers it without a subprocess.
    assert cli_main(["info", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["available"] is True


@pytest.mark.parametrize("entry", ["run", "install-then-trio-run"])
def test_fallback_warning_points_at_the_callers_line(entry: str) -> None:
    """Filters by module and "once per location" need the user's frame, not Trio's."""
    call = (
        "trio_uring.run(main)"
        if entry == "run"
        else "trio_uring._integrations.run.switch_on(trio_uring.Settings()); trio.run(main)"
    )
    script = (
        "import json, warnings, trio, trio_uring, trio_uring._integrations.run\n"
        "async def main():\n"
        "    pass\n"
        "with warnings.catch_warnings(record=True) as caught:\n"
        "    warnings.simplefilter('always')\n"
        f"    {call}\n"
        "print(json.dumps([[w.filename, w.lineno] for w in caught]))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", script],
        env=child_env(TRIO_URING_SIMULATE_FAILURE="ENOMEM"),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == [["<string>", 6]]
