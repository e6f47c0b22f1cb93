"""Command-line tools: ``python -m trio_uring COMMAND`` (or ``trio-uring COMMAND``).

``stress`` runs the cancellation stress suite (see ``stress_cli.py``),
``bench`` the benchmarks side by side with stock Trio (``bench_cli.py``).
``info`` says whether a run here would get io_uring and, if not, why not,
in words (the default) or as one JSON object (``--json``). Its exit status
answers the question for scripts: 0 when io_uring is available, 1 when it
is not.

Each command is one ``_add_*_command`` function that registers a
subparser and the handler it dispatches to, so further commands (``bench``,
``stress``) slot in without touching the rest.
"""

from __future__ import annotations

import argparse
import errno as errno_mod
import json
import os
import platform
import sys
import textwrap
from collections.abc import Callable, Sequence
from typing import Any

import attrs
import trio

from .._core.availability import (
    SIMULATE_ENV,
    SYSCTL_DISABLED,
    Availability,
    check,
    read_int_file,
    seccomp_mode,
)
from .._core.settings import current_settings
from .._core.version import VERSION
from .._integrations.run import is_installed

_INSTALL_ENV = "TRIO_URING_INSTALL"

_EXIT_AVAILABLE = 0
_EXIT_UNAVAILABLE = 1
# Bad usage: argparse exits with 2 itself, and we use it for the same kind
# of mistake (an invalid TRIO_URING_SIMULATE_FAILURE) so that 1 always means
# "io_uring is unavailable" and nothing else.
_EXIT_USAGE = 2

_Handler = Callable[[argparse.Namespace], int]

_EXIT_STATUS_HELP = "exit status: 0 if io_uring is available, 1 if it is not, 2 on a usage error"


def _known_opcodes() -> tuple[str, ...]:
    # From abi.py, which never loads the C extension: a tool meant to explain
    # why io_uring is unavailable must not fail when the extension is why.
    from .._core.abi import OPCODE_NAMES

    return tuple(OPCODE_NAMES)


def _memlock_limit() -> int | None:
    import resource

    try:
        soft = resource.getrlimit(resource.RLIMIT_MEMLOCK)[0]
    except (OSError, ValueError):
        return None
    # None stands for "unlimited" in the JSON, rather than RLIM_INFINITY's
    # platform-specific integer.
    return None if soft == resource.RLIM_INFINITY else soft


def gather_info() -> dict[str, Any]:
    """Everything ``info`` reports, as a JSON-ready dict.

    The availability check opens (and closes) a ring with the settings a run
    in this process would use, so its answer is the one that run would get.
    Raises ``ValueError`` if ``TRIO_URING_SIMULATE_FAILURE`` is invalid.
    """
    settings = current_settings()
    availability: Availability = check(settings)
    known = _known_opcodes()
    cause = availability.cause
    return {
        "kernel": availability.kernel,
        "machine": platform.machine(),
        "python": platform.python_version(),
        "trio": trio.__version__,
        "trio_uring": VERSION,
        "available": availability.available,
        "cause": None
        if cause is None
        else {
            "code": cause.code,
            "message": cause.message,
            "errno": cause.errno,
            "errno_name": None
            if cause.errno is None
            else errno_mod.errorcode.get(cause.errno, str(cause.errno)),
        },
        "ring": {"sq_entries": availability.sq_entries, "cq_entries": availability.cq_entries}
        if availability.available
        else None,
        "features": list(availability.features),
        "opcodes": list(availability.opcodes),
        # The probe may list opcodes newer than our table (shown as OP_<n>),
        # so "supported of known" is counted by name, not by length.
        "opcodes_known": len(known),
        "opcodes_known_supported": sum(1 for name in availability.opcodes if name in known),
        "settings": attrs.asdict(settings),
        "installed": is_installed(),
        "environment": {
            name: os.environ.get(name)
            for name in (_INSTALL_ENV, "TRIO_URING_MODE", "TRIO_URING_DATA_PATH", SIMULATE_ENV)
        },
        "system": {
            "seccomp": seccomp_mode(),
            "io_uring_disabled": read_int_file(SYSCTL_DISABLED),
            "memlock": _memlock_limit(),
        },
    }


def _wrapped(label: str, words: Sequence[str]) -> list[str]:
    indent = " " * 16
    text = " ".join(words) if words else "(none)"
    return textwrap.wrap(
        text, width=100, initial_indent=f"  {label:<14}", subsequent_indent=indent
    ) or [f"  {label}"]


def format_text(info: dict[str, Any]) -> str:
    """Render ``gather_info()``'s dict for people."""
    lines = [
        f"trio_uring {info['trio_uring']} on Trio {info['trio']}, Python {info['python']}",
        f"kernel:         Linux {info['kernel']} ({info['machine']})",
    ]
    cause = info["cause"]
    if info["available"]:
        ring = info["ring"]
        lines.append("io_uring:       available")
        lines.append(f"  ring:         {ring['sq_entries']} SQ / {ring['cq_entries']} CQ entries")
        lines += _wrapped("features:", info["features"])
        lines += _wrapped(
            "opcodes:",
            [f"{info['opcodes_known_supported']} of {info['opcodes_known']} known:"]
            + info["opcodes"],
        )
    else:
        errno_text = f", {cause['errno_name']}" if cause["errno_name"] else ""
        lines.append(f"io_uring:       UNAVAILABLE (cause: {cause['code']}{errno_text})")
        lines += textwrap.wrap(
            cause["message"], width=100, initial_indent=" " * 16, subsequent_indent=" " * 16
        )
    system = info["system"]
    memlock = "unlimited" if system["memlock"] is None else f"{system['memlock']} bytes"
    disabled = system["io_uring_disabled"]
    lines.append(
        f"system:         seccomp mode {system['seccomp']}, "
        f"kernel.io_uring_disabled={'unknown' if disabled is None else disabled}, "
        f"RLIMIT_MEMLOCK {memlock}"
    )
    settings = ", ".join(f"{key}={value!r}" for key, value in info["settings"].items())
    lines.append(f"settings:       {settings}")
    if info["installed"]:
        switch = "installed: every trio.run in this process uses trio_uring"
    else:
        switch = "not installed: plain trio.run uses Trio's own manager"
    lines.append(f"switch:         {switch}")
    for name, value in info["environment"].items():
        if value is not None:
            lines.append(f"environment:    {name}={value}")
    return "\n".join(lines)


def _info(args: argparse.Namespace) -> int:
    try:
        info = gather_info()
    except ValueError as exc:
        # Only a malformed TRIO_URING_SIMULATE_FAILURE gets here; report it
        # as a usage error rather than a traceback.
        print(f"trio_uring info: {exc}", file=sys.stderr)
        return _EXIT_USAGE
    if args.json:
        print(json.dumps(info, indent=2))
    else:
        print(format_text(info))
    return _EXIT_AVAILABLE if info["available"] else _EXIT_UNAVAILABLE


def _add_info_command(commands: Any) -> None:
    parser = commands.add_parser(
        "info",
        help="can this process use io_uring, and if not, why not",
        description=(
            "Report the kernel, the Trio and trio_uring versions, whether io_uring is "
            "available (and the cause if not), the ring's features and supported "
            "opcodes, and the settings a run would use."
        ),
        epilog=_EXIT_STATUS_HELP,
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.set_defaults(handler=_info)


def build_parser() -> argparse.ArgumentParser:
    """The ``trio_uring`` argument parser, one subcommand per tool."""
    # Under -m, argv[0] is the path of this file, which would make a poor
    # program name; as the `trio-uring` console script it is already right.
    invoked_as_module = os.path.basename(sys.argv[0]) == "__main__.py"
    parser = argparse.ArgumentParser(
        prog="python -m trio_uring" if invoked_as_module else None,
        description="trio_uring: run Trio on Linux's io_uring.",
        epilog=f"info's {_EXIT_STATUS_HELP}",
    )
    parser.add_argument("--version", action="version", version=f"trio_uring {VERSION}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    _add_info_command(commands)
    from .bench_cli import add_bench_command
    from .stress_cli import add_stress_command

    add_stress_command(commands)
    add_bench_command(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command named in ``argv`` (default ``sys.argv[1:]``); return the exit status."""
    args = build_parser().parse_args(argv)
    handler: _Handler = args.handler
    return handler(args)
