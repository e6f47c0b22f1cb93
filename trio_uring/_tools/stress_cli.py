"""``python -m trio_uring stress``: the cancellation stress suite from the command line.

Exit status: 0 when every invariant held on every backend run, 1 when one
broke (the table and the list of violations say which), 2 on a usage error,
3 when io_uring is unavailable here (``python -m trio_uring info`` says why).
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

import attrs

from .._core.availability import UringUnavailableError
from .progress import ProgressBar
from .stress import BACKENDS, TRANSPORTS, StressConfig, StressReport, run_stress

EXIT_OK = 0
EXIT_VIOLATION = 1
EXIT_USAGE = 2
EXIT_UNAVAILABLE = 3

# The scale knob multiplies these.
_BASE_CHANNELS = 8
_BASE_PAYLOAD = 64 * 1024

_ROWS: tuple[tuple[str, str], ...] = (
    ("rounds", "rounds"),
    ("ops", "ops"),
    ("cancels", "cancels"),
    ("results_won", "results that won"),
    ("timeouts_fired", "linked timeouts fired"),
    ("bytes_verified", "bytes verified"),
    ("fds_leaked", "fds leaked"),
    ("ops_left_in_flight", "ops left in flight"),
    ("peak_rss", "peak RSS (MiB)"),
)


def format_table(reports: list[StressReport]) -> str:
    """The closing table: one column per backend."""
    width = 24
    lines = [f"{'':{width}}" + "".join(f"{r.backend:>16}" for r in reports)]
    for attr, label in _ROWS:
        cells = []
        for r in reports:
            value = getattr(r, attr)
            if attr == "peak_rss":
                cells.append(f"{value / 2**20:>16.1f}")
            elif attr == "timeouts_fired" and r.backend == "stock":
                cells.append(f"{'-':>16}")
            else:
                cells.append(f"{value:>16,}")
        lines.append(f"{label:{width}}" + "".join(cells))
    verdicts = "".join(f"{'ok' if r.ok else 'VIOLATED':>16}" for r in reports)
    lines.append(f"{'invariants':{width}}" + verdicts)
    return "\n".join(lines)


def _config(args: argparse.Namespace) -> StressConfig:
    return StressConfig(
        seed=args.seed,
        rounds=args.rounds,
        duration=args.duration,
        channels=max(1, round(_BASE_CHANNELS * args.scale)),
        payload=max(1, round(_BASE_PAYLOAD * args.scale)),
        transports=tuple(args.transports.split(",")),
    )


def stress_command(args: argparse.Namespace) -> int:
    """Handler of the ``stress`` subcommand."""
    if args.scale <= 0:
        print("trio_uring stress: --scale must be positive", file=sys.stderr)
        return EXIT_USAGE
    try:
        config = _config(args)
    except ValueError as exc:
        print(f"trio_uring stress: {exc}", file=sys.stderr)
        return EXIT_USAGE
    backends = BACKENDS if args.backend == "both" else (args.backend,)
    reports: list[StressReport] = []
    for backend in backends:
        # With a duration, split it evenly between the backends.
        cfg = config
        if config.duration is not None:
            cfg = attrs.evolve(config, duration=config.duration / len(backends))
        bar = ProgressBar(None if cfg.duration else cfg.rounds, seconds=cfg.duration)

        def show(
            done: int, _total: int | None, report: StressReport, bar: ProgressBar = bar
        ) -> None:
            bar.update(done, f"{report.backend}: {report.ops:,} ops, {report.cancels:,} cancels")

        try:
            reports.append(run_stress(backend, cfg, show))
        except UringUnavailableError as exc:
            bar.close()
            print(f"trio_uring stress: io_uring is unavailable: {exc.cause}", file=sys.stderr)
            return EXIT_UNAVAILABLE
        bar.close()
    if args.json:
        print(json.dumps([_as_json(r) for r in reports], indent=2))
    else:
        print(format_table(reports))
        for r in reports:
            for violation in r.violations:
                print(f"VIOLATION ({r.backend}): {violation}")
    return EXIT_OK if all(r.ok for r in reports) else EXIT_VIOLATION


def _as_json(report: StressReport) -> dict[str, Any]:
    data = attrs.asdict(report)
    data["ok"] = report.ok
    return data


def add_stress_command(commands: Any) -> None:
    """Register ``stress`` on the CLI's subparsers."""
    parser = commands.add_parser(
        "stress",
        help="the cancellation stress suite (exactly-once data, no leaks)",
        description=(
            "Move seeded random data through sockets, pipes and files while cancelling "
            "reads and writes at random, on io_uring and on stock Trio as the control. "
            "Checks exactly-once data, no fd leaked, no op left in flight, flat RSS and "
            "bounded wall time."
        ),
        epilog=(
            "exit status: 0 if every invariant held, 1 if one broke, 2 on a usage error, "
            "3 if io_uring is unavailable"
        ),
    )
    parser.add_argument("--backend", choices=(*BACKENDS, "both"), default="both")
    parser.add_argument("--scale", type=float, default=1.0, help="channels and bytes multiplier")
    parser.add_argument("--rounds", type=int, default=5, help="Trio runs per backend")
    parser.add_argument(
        "--duration", type=float, default=None, help="seconds to run (overrides --rounds)"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--transports", default=",".join(TRANSPORTS), help=f"subset of {','.join(TRANSPORTS)}"
    )
    parser.add_argument("--json", action="store_true", help="print the reports as JSON")
    parser.set_defaults(handler=stress_command)
