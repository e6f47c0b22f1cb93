"""Can this process have io_uring, and if not, exactly why not?

``io_uring_setup`` fails with one errno for several unrelated reasons, so
we look at the machine to tell them apart:

* ``EPERM``: ``kernel.io_uring_disabled`` is 2 (nobody may) or 1 (only
  root or members of ``kernel.io_uring_group``), or else a seccomp filter
  said no: Docker's default profile denies the io_uring syscalls this way.
  ``/proc/self/status`` tells whether a filter is in force.
* ``ENOSYS``: a kernel older than 5.1, one built without
  ``CONFIG_IO_URING``, or a seccomp filter that answers ``ENOSYS`` (older
  container runtimes do).
* ``ENOMEM``: before 5.12 the rings were charged to ``RLIMIT_MEMLOCK``; a
  small limit makes setup fail. Later kernels still refuse a very small
  limit to a process without ``CAP_IPC_LOCK`` (seen on 6.18 below about
  24 KiB).
* Then what the ring reports: we need ``IORING_FEAT_EXT_ARG`` (5.11) and
  ``IORING_FEAT_NODROP`` (5.5), and a handful of opcodes from the probe.

Tests can inject a failure through ``TRIO_URING_SIMULATE_FAILURE`` (an
errno name such as ``ENOMEM``, ``feature:EXT_ARG``, ``opcode:POLL_ADD`` or
``extension``); it is read at every ring setup so child processes see it too.
"""

from __future__ import annotations

import errno as errno_mod
import os
import platform
import resource
from typing import TYPE_CHECKING

import attrs

from .abi import FEATURE_NAMES, OP, OPCODE_NAMES, REQUIRED_FEATURES, feature_names
from .compat import building_a_guest_run
from .settings import Settings

if TYPE_CHECKING:
    from .ring import Ring

SIMULATE_ENV = "TRIO_URING_SIMULATE_FAILURE"
SYSCTL_DISABLED = "/proc/sys/kernel/io_uring_disabled"
SYSCTL_GROUP = "/proc/sys/kernel/io_uring_group"

# Opcodes the I/O manager cannot work without.
REQUIRED_OPCODES = ("NOP", "POLL_ADD", "ASYNC_CANCEL", "LINK_TIMEOUT")


@attrs.frozen
class Cause:
    """Why io_uring is unavailable."""

    code: str
    """Machine-readable: ``seccomp``, ``disabled``, ``not-supported``,
    ``memlock``, ``missing-feature``, ``missing-opcode``, ``extension``,
    ``sqpoll`` (only a ring with the SQPOLL mode was refused) or ``error``."""
    message: str
    """A sentence for people, naming the cause and what to do."""
    errno: int | None = None
    """The errno ``io_uring_setup`` gave, when it failed."""

    def __str__(self) -> str:
        return self.message


class UringUnavailableError(RuntimeError):
    """io_uring cannot be used here; ``cause`` says why."""

    def __init__(self, cause: Cause) -> None:
        super().__init__(cause.message)
        self.cause = cause


def read_int_file(path: str) -> int | None:
    """The integer in a one-line file such as a sysctl, or None if unreadable."""
    try:
        with open(path, encoding="ascii") as f:
            return int(f.read().strip())
    except (OSError, ValueError):
        return None


def seccomp_mode() -> int | None:
    """0 (none), 1 (strict) or 2 (filter), from ``/proc/self/status``."""
    try:
        with open("/proc/self/status", encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith("Seccomp:"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return None


def is_privileged_for_io_uring() -> bool:
    """Whether ``kernel.io_uring_disabled=1`` lets this process through.

    That setting restricts only processes without CAP_SYS_ADMIN that are not
    in the group named by ``kernel.io_uring_group``.
    """
    cap_sys_admin = 1 << 21
    try:
        with open("/proc/self/status", encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith("CapEff:") and int(line.split()[1], 16) & cap_sys_admin:
                    return True
    except (OSError, ValueError, IndexError):
        pass
    group = read_int_file(SYSCTL_GROUP)
    return group is not None and group >= 0 and (group == os.getegid() or group in os.getgroups())


def diagnose_setup_error(
    err: int,
    *,
    disabled: int | None,
    seccomp: int | None,
    memlock: int | None,
    kernel: str,
    privileged: bool = False,
) -> Cause:
    """Name the cause of an ``io_uring_setup`` failure from the facts around it.

    ``privileged`` says whether ``kernel.io_uring_disabled=1`` exempts this
    process (CAP_SYS_ADMIN or the io_uring group): if so, an EPERM came
    from somewhere else, typically a seccomp filter.
    """
    name = errno_mod.errorcode.get(err, str(err))
    if err == errno_mod.EPERM:
        if disabled == 2:
            return Cause(
                "disabled",
                "io_uring is disabled on this machine (sysctl kernel.io_uring_disabled=2); "
                "set it to 0 to use trio_uring",
                err,
            )
        if disabled == 1 and not privileged:
            return Cause(
                "disabled",
                "io_uring is restricted to privileged processes on this machine "
                "(sysctl kernel.io_uring_disabled=1); add this user to the group in "
                "kernel.io_uring_group or set kernel.io_uring_disabled=0",
                err,
            )
        if seccomp == 2:
            return Cause(
                "seccomp",
                "a seccomp filter denies io_uring_setup with EPERM (Docker's default "
                "profile does this); run the container with a profile that allows "
                "io_uring_setup, io_uring_enter and io_uring_register",
                err,
            )
        return Cause("error", f"io_uring_setup failed with EPERM ({os.strerror(err)})", err)
    if err == errno_mod.ENOSYS:
        if seccomp == 2:
            return Cause(
                "seccomp",
                "a seccomp filter denies io_uring_setup with ENOSYS; run with a seccomp "
                "profile that allows io_uring_setup, io_uring_enter and io_uring_register",
                err,
            )
        return Cause(
            "not-supported",
            f"this kernel ({kernel}) has no io_uring (ENOSYS): it is older than 5.1 or "
            "built without CONFIG_IO_URING; trio_uring needs Linux 5.11 or newer",
            err,
        )
    if err == errno_mod.ENOMEM:
        limit = "unlimited" if memlock in (None, resource.RLIM_INFINITY) else f"{memlock} bytes"
        return Cause(
            "memlock",
            f"io_uring_setup failed with ENOMEM: the ring could not be allocated; it is "
            f"charged to RLIMIT_MEMLOCK (now {limit}) on kernels before 5.12, and on later "
            "ones for a process without CAP_IPC_LOCK: raise it "
            "(`ulimit -l`, or LimitMEMLOCK= in systemd) or use fewer ring entries",
            err,
        )
    return Cause("error", f"io_uring_setup failed with {name} ({os.strerror(err)})", err)


def _memlock() -> int | None:
    try:
        return resource.getrlimit(resource.RLIMIT_MEMLOCK)[0]
    except (OSError, ValueError):
        return None


def _setup_error_cause(err: int) -> Cause:
    return diagnose_setup_error(
        err,
        disabled=read_int_file(SYSCTL_DISABLED),
        seccomp=seccomp_mode(),
        memlock=_memlock(),
        kernel=platform.release(),
        privileged=is_privileged_for_io_uring(),
    )


def _sqpoll_cause(err: int) -> Cause:
    """Why a ring with ``IORING_SETUP_SQPOLL`` could not be had (``err`` from the setup)."""
    try:
        from .ring import Ring

        Ring(1).close()
    except OSError:
        return _setup_error_cause(err)  # no ring at all: the general cause says why
    return Cause(
        "sqpoll",
        f"this kernel ({platform.release()}) refused an io_uring with IORING_SETUP_SQPOLL "
        f"({errno_mod.errorcode.get(err, err)}: {os.strerror(err)}), though it sets up "
        "other rings; before Linux 5.11 SQPOLL needs CAP_SYS_ADMIN. mode='interrupt' "
        "(the default) works here",
        err,
    )


def _simulated() -> str:
    return os.environ.get(SIMULATE_ENV, "").strip()


def open_ring(settings: Settings, *, single_issuer: bool = True) -> Ring:
    """Set up a ring for a run, or raise ``UringUnavailableError`` naming the cause.

    ``single_issuer`` (on the batched data path, and not in a guest run):
    the ring may be set up so that only this thread submits, with
    ``DEFER_TASKRUN`` (see ``ring.py``).
    """
    simulated = _simulated()
    if simulated == "extension":
        raise UringUnavailableError(
            Cause("extension", "trio_uring's C extension is not built (simulated)"),
        )
    try:
        from .ring import Ring
    except ImportError as exc:
        raise UringUnavailableError(
            Cause(
                "extension",
                f"trio_uring's C extension cannot be loaded ({exc}); reinstall trio-uring "
                "with a C compiler and the kernel headers present",
            ),
        ) from exc
    if simulated and not simulated.startswith(("feature:", "opcode:")):
        err = getattr(errno_mod, simulated, None)
        if not isinstance(err, int):
            raise ValueError(f"{SIMULATE_ENV}={simulated!r} names no errno")
        raise UringUnavailableError(_setup_error_cause(err))
    try:
        ring = Ring(
            settings.entries,
            cq_entries=max(4 * settings.entries, 1024),
            # DEFER_TASKRUN pays where the ring carries the data (the
            # batched path); where most calls are direct system calls it
            # saves nothing, and its batched task work makes a mass cancel
            # drain more slowly (docs/sockets.md).
            single_issuer=(
                single_issuer and settings.data_path == "batched" and not building_a_guest_run()
            ),
            sqpoll_idle_ms=settings.sqpoll_idle_ms,
        )
    except OSError as exc:
        err = exc.errno if exc.errno is not None else errno_mod.EIO
        if settings.mode == "sqpoll":
            raise UringUnavailableError(_sqpoll_cause(err)) from exc
        raise UringUnavailableError(_setup_error_cause(err)) from exc
    try:
        features = ring.features
        if simulated.startswith("feature:"):
            name = simulated.split(":", 1)[1]
            if name in FEATURE_NAMES:
                features &= ~(1 << FEATURE_NAMES.index(name))
        for name, bit in REQUIRED_FEATURES.items():
            if not features & bit:
                raise UringUnavailableError(
                    Cause(
                        "missing-feature",
                        f"this kernel ({platform.release()}) lacks IORING_FEAT_{name}, which "
                        f"trio_uring needs (kernel 5.11 or newer); it has: "
                        f"{', '.join(feature_names(features)) or 'none'}",
                    ),
                )
        supported = set(ring.probe())
        if simulated.startswith("opcode:"):
            supported.discard(OP.get(simulated.split(":", 1)[1], -1))
        missing = [name for name in REQUIRED_OPCODES if OP[name] not in supported]
        if missing:
            raise UringUnavailableError(
                Cause(
                    "missing-opcode",
                    f"this kernel ({platform.release()}) lacks the io_uring "
                    f"operation(s) {', '.join('IORING_OP_' + m for m in missing)}, "
                    "which trio_uring needs",
                ),
            )
    except BaseException:
        ring.close()
        raise
    return ring


@attrs.frozen
class Availability:
    """The answer to "can a run here use io_uring?"."""

    available: bool
    cause: Cause | None
    kernel: str
    features: tuple[str, ...]
    opcodes: tuple[str, ...]
    sq_entries: int
    cq_entries: int


def check(settings: Settings | None = None) -> Availability:
    """Try a ring with ``settings`` and report what this machine offers."""
    settings = settings if settings is not None else Settings()
    kernel = platform.release()
    try:
        ring = open_ring(settings)
    except UringUnavailableError as exc:
        return Availability(False, exc.cause, kernel, (), (), 0, 0)
    try:
        ops = ring.probe()
        return Availability(
            True,
            None,
            kernel,
            tuple(feature_names(ring.features)),
            tuple(OPCODE_NAMES[i] if i < len(OPCODE_NAMES) else f"OP_{i}" for i in sorted(ops)),
            ring.sq_entries,
            ring.cq_entries,
        )
    finally:
        ring.close()
