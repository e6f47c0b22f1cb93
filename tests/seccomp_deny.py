"""Make chosen syscalls fail with a chosen errno, using a seccomp filter.

Container runtimes (Docker's default seccomp profile, many CI sandboxes) deny
``io_uring_setup`` with ``EPERM``; older kernels and some hardened builds give
``ENOSYS`` instead.  To test how trio_uring behaves there without needing such
an environment, this module installs an equivalent classic-BPF seccomp filter
in the *current* process, using only :mod:`ctypes`.

A seccomp filter can never be removed and is inherited by every child and kept
across ``execve``, so only ever call :func:`deny_syscalls` in a throwaway child
process.  The command-line form does exactly that for a fresh interpreter::

    python tests/seccomp_deny.py --deny 425=EPERM [--deny 426=ENOSYS] -- -c "..."

Linux only; supports x86_64 and aarch64.
"""

import argparse
import ctypes
import errno
import os
import sys
from collections.abc import Mapping, Sequence
from typing import NoReturn

__all__ = [
    "NR_IO_URING_ENTER",
    "NR_IO_URING_REGISTER",
    "NR_IO_URING_SETUP",
    "deny_syscalls",
    "main",
]

# io_uring was added after the syscall tables were unified, so it has the same
# numbers on every architecture (asm-generic/unistd.h and x86_64's table agree).
NR_IO_URING_SETUP = 425
NR_IO_URING_ENTER = 426
NR_IO_URING_REGISTER = 427

# <linux/prctl.h>
_PR_SET_NO_NEW_PRIVS = 38

# <linux/seccomp.h>
_SECCOMP_SET_MODE_FILTER = 1
# Apply the filter to every thread of the process, not just the caller: a
# Python child may already run helper threads, and a filter on one thread only
# would let io_uring_setup succeed from the others.
_SECCOMP_FILTER_FLAG_TSYNC = 1
_SECCOMP_RET_ERRNO = 0x0005_0000
_SECCOMP_RET_ALLOW = 0x7FFF_0000
# The kernel clamps the errno carried in SECCOMP_RET_DATA to MAX_ERRNO.
_MAX_ERRNO = 4095

# Offsets inside struct seccomp_data { int nr; __u32 arch; __u64 ip; ... }.
_OFFSET_NR = 0
_OFFSET_ARCH = 4

# Classic BPF opcodes (<linux/bpf_common.h>), already OR-ed together.
_BPF_LD_W_ABS = 0x00 | 0x00 | 0x20  # BPF_LD | BPF_W | BPF_ABS
_BPF_JMP_JEQ_K = 0x05 | 0x10 | 0x00  # BPF_JMP | BPF_JEQ | BPF_K
_BPF_RET_K = 0x06 | 0x00  # BPF_RET | BPF_K

# On x86_64 the x32 ABI shares AUDIT_ARCH_X86_64 and marks its syscall numbers
# with this bit; the io_uring calls exist there too, so they must be denied
# under both numbers or the filter could be sidestepped.
_X32_SYSCALL_BIT = 0x4000_0000

# machine -> (AUDIT_ARCH_* from <linux/audit.h>, __NR_seccomp, needs x32 rules)
_ARCHES: dict[str, tuple[int, int, bool]] = {
    # EM_X86_64 (62) | __AUDIT_ARCH_64BIT | __AUDIT_ARCH_LE
    "x86_64": (0xC000_003E, 317, True),
    # EM_AARCH64 (183) | __AUDIT_ARCH_64BIT | __AUDIT_ARCH_LE
    "aarch64": (0xC000_00B7, 277, False),
}


class _SockFilter(ctypes.Structure):
    """``struct sock_filter``: one classic BPF instruction."""

    _fields_ = [
        ("code", ctypes.c_uint16),
        ("jt", ctypes.c_uint8),
        ("jf", ctypes.c_uint8),
        ("k", ctypes.c_uint32),
    ]


class _SockFprog(ctypes.Structure):
    """``struct sock_fprog``: length and address of a BPF program."""

    _fields_ = [
        ("len", ctypes.c_ushort),
        ("filter", ctypes.POINTER(_SockFilter)),
    ]


def _arch() -> tuple[int, int, bool]:
    """Return this process's (audit arch, seccomp syscall nr, x32 flag)."""
    machine = os.uname().machine
    # A 32-bit interpreter on a 64-bit kernel still reports the kernel's
    # machine, but its syscalls carry a different audit arch and numbering.
    if machine not in _ARCHES or ctypes.sizeof(ctypes.c_void_p) != 8:
        raise RuntimeError(f"seccomp_deny does not support this architecture ({machine})")
    return _ARCHES[machine]


def _insn(code: int, k: int, jt: int = 0, jf: int = 0) -> _SockFilter:
    """Build one BPF instruction."""
    return _SockFilter(code, jt, jf, k)


def _build_program(rules: Mapping[int, int], audit_arch: int, x32: bool) -> list[_SockFilter]:
    """Translate ``{syscall_nr: errno}`` into a seccomp BPF program."""
    checks: list[tuple[int, int]] = []
    for nr, err in rules.items():
        if not 0 <= nr < _X32_SYSCALL_BIT:
            raise ValueError(f"invalid syscall number {nr}")
        # errno 0 would make the syscall "succeed" without running it, which
        # is never what a test of a denial wants.
        if not 0 < err <= _MAX_ERRNO:
            raise ValueError(f"invalid errno {err} for syscall {nr}")
        checks.append((nr, err))
        if x32:
            checks.append((nr | _X32_SYSCALL_BIT, err))

    program = [
        _insn(_BPF_LD_W_ABS, _OFFSET_ARCH),
        # Syscall numbers only mean something for a known arch, so refuse
        # anything made under another ABI (e.g. int 0x80 from a 64-bit
        # process) rather than match it against the wrong table.
        _insn(_BPF_JMP_JEQ_K, audit_arch, jt=1, jf=0),
        _insn(_BPF_RET_K, _SECCOMP_RET_ERRNO | errno.EPERM),
        _insn(_BPF_LD_W_ABS, _OFFSET_NR),
    ]
    for nr, err in checks:
        # On a match fall through to the RET; otherwise skip over it.
        program.append(_insn(_BPF_JMP_JEQ_K, nr, jt=0, jf=1))
        program.append(_insn(_BPF_RET_K, _SECCOMP_RET_ERRNO | err))
    program.append(_insn(_BPF_RET_K, _SECCOMP_RET_ALLOW))
    return program


def deny_syscalls(rules: Mapping[int, int]) -> None:
    """Make each syscall number in *rules* fail with its errno, for good.

    Installs a seccomp filter on every thread of the current process that
    returns ``-1`` with ``errno = rules[nr]`` for each listed syscall and allows
    all others.  Syscalls made under a foreign architecture fail with
    ``EPERM``.  The filter is permanent and inherited across ``fork`` and
    ``execve``: call this only in a child process created for the purpose.

    Raises :class:`ValueError` for a bad syscall number or errno,
    :class:`RuntimeError` on an unsupported architecture, and
    :class:`OSError` if the kernel refuses the filter.
    """
    audit_arch, nr_seccomp, x32 = _arch()
    program = _build_program(rules, audit_arch, x32)
    # BPF programs are limited to BPF_MAXINSNS (4096) instructions, and the
    # length field is 16 bits anyway.
    if len(program) > 4096:
        raise ValueError("too many rules for one seccomp filter")

    # `insns` must outlive the syscall below, since `fprog` only holds a raw
    # pointer into it; both are locals, so they live until we return.
    insns = (_SockFilter * len(program))(*program)
    fprog = _SockFprog(len(program), ctypes.cast(insns, ctypes.POINTER(_SockFilter)))

    libc = ctypes.CDLL(None, use_errno=True)
    # Without no_new_privs an unprivileged process may not install a filter
    # (it could otherwise fool a setuid program it later executes).
    ulong = ctypes.c_ulong
    if libc.prctl(_PR_SET_NO_NEW_PRIVS, ulong(1), ulong(0), ulong(0), ulong(0)) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"prctl(PR_SET_NO_NEW_PRIVS): {os.strerror(err)}")

    # seccomp(2) rather than prctl(PR_SET_SECCOMP) because only the former
    # takes the TSYNC flag.
    ret = libc.syscall(
        ctypes.c_long(nr_seccomp),
        ulong(_SECCOMP_SET_MODE_FILTER),
        ulong(_SECCOMP_FILTER_FLAG_TSYNC),
        ctypes.byref(fprog),
    )
    if ret < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"seccomp(SECCOMP_SET_MODE_FILTER): {os.strerror(err)}")
    if ret > 0:
        # With TSYNC a positive result is the id of a thread that could not
        # be brought in line; nothing was installed anywhere.
        raise OSError(errno.EAGAIN, f"seccomp: could not synchronise thread {ret}")


def _parse_rule(text: str) -> tuple[int, int]:
    """Parse ``NR=ERRNAME`` (e.g. ``425=EPERM``) for argparse."""
    nr_text, sep, name = text.partition("=")
    err = getattr(errno, name, None) if name.isupper() else None
    if not sep or not isinstance(err, int):
        raise argparse.ArgumentTypeError(f"expected NR=ERRNO_NAME, got {text!r}")
    try:
        nr = int(nr_text, 0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"bad syscall number in {text!r}") from None
    return nr, err


def main(argv: Sequence[str] | None = None) -> NoReturn:
    """Install the filter given by ``--deny NR=ERRNO`` options, then exec Python.

    Usage: ``seccomp_deny.py --deny 425=EPERM [--deny ...] -- PYTHON_ARGS...``.
    Everything after ``--`` is passed to a new ``sys.executable``, which runs
    with the filter in force.
    """
    args = list(sys.argv[1:] if argv is None else argv)
    # Split by hand so that options meant for the child Python (which may look
    # like ours) are never seen by argparse.
    if "--" in args:
        split = args.index("--")
        ours, child = args[:split], args[split + 1 :]
    else:
        ours, child = args, []

    parser = argparse.ArgumentParser(
        prog="seccomp_deny.py",
        description="Run Python with some syscalls denied by a seccomp filter.",
        epilog="Arguments after '--' are passed to the Python interpreter.",
    )
    parser.add_argument(
        "--deny",
        action="append",
        type=_parse_rule,
        default=[],
        metavar="NR=ERRNO",
        help="make syscall NR fail with the named errno (repeatable)",
    )
    options = parser.parse_args(ours)
    deny_syscalls(dict(options.deny))
    sys.stdout.flush()
    os.execv(sys.executable, [sys.executable, *child])


if __name__ == "__main__":
    main()
