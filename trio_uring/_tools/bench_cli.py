"""``python -m trio_uring bench``: every benchmark, stock Trio beside trio_uring.

Runs the benchmark engines of ``trio_uring._tools.bench`` at one of three
scales: the built-in default (a little over a minute on a 2-core machine),
``--quick`` (about 30 seconds) or ``--full`` (every case, several minutes:
``make bench``). It shows a progress bar on stderr
while it works, and prints one table: each workload's figure on both
backends and their ratio, oriented so that > 1 always means trio_uring is
better. A second table lists every backend of the echo benchmark, peers
included (asyncio's Protocol echo and uvloop from the default scale on,
asyncio's streams at ``--full``), with its ratio to stock Trio; ``--strace``
adds system calls per round trip to it. ``--json`` prints the same as one
JSON object, with every run.

Exit status: 0 when every benchmark ran, 1 when one failed, 2 on a usage
error, 3 when io_uring is unavailable here.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from functools import partial
from typing import Any

import attrs

from .._core.availability import UringUnavailableError, open_ring
from .._core.settings import Settings
from .progress import ProgressBar

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_UNAVAILABLE = 3


QUICK = "quick"
DEFAULT = "default"
FULL = "full"


@attrs.frozen
class Row:
    """One line of the table: a figure on both backends."""

    bench: str
    metric: str
    stock: float
    uring: float
    higher_is_better: bool
    paired: float | None = None
    """The advantage measured round by round, where the benchmark pairs its runs:
    the median of each round's ratio (the echo rows). None: the ratio of the
    two figures is the advantage."""

    @property
    def advantage(self) -> float:
        """How many times better trio_uring is (> 1: better, < 1: worse)."""
        if self.paired is not None:
            return self.paired
        if self.higher_is_better:
            return self.uring / self.stock if self.stock else float("nan")
        return self.stock / self.uring if self.uring else float("nan")


# The echo section's backends at each scale: Trio's own (stock, and our
# manager with Trio's sockets and with native ones), then the peers beside
# them in the same interleaved rounds: asyncio's Protocol echo and the same
# on uvloop from the default scale on, asyncio's streams at full.
ECHO_BACKENDS = {
    QUICK: ("stock", "uring-poll", "uring"),
    DEFAULT: ("stock", "uring-poll", "uring", "asyncio-protocol", "uvloop"),
    FULL: ("stock", "uring-poll", "uring", "asyncio-protocol", "asyncio-streams", "uvloop"),
}


def _echo(
    scale: str, step: Callable[[str], None], *, strace: bool = False
) -> tuple[list[Row], Any]:
    from .bench.echo import run_echo_bench

    cases = ([64, 4096], [50, 1000]) if scale == FULL else ([64], [50])
    duration, warmup, repeat = {QUICK: (2.0, 0.5, 2), DEFAULT: (3.0, 0.5, 3),
                                FULL: (5.0, 1.0, 3)}[scale]  # fmt: skip
    results = run_echo_bench(cases[0], cases[1], duration, warmup, ECHO_BACKENDS[scale], step,
                             repeat=repeat, strace=strace)  # fmt: skip
    # A peer that is not installed (uvloop) is reported in the echo table, not a failure.
    failed = [r for r in results if not r["ok"] and not r.get("skipped")]
    if failed:
        raise RuntimeError(f"echo benchmark failed: {failed[0]['error']}")
    rows = []
    by_case: dict[tuple[int, int], dict[str, Any]] = {}
    for r in results:
        by_case.setdefault((r["size"], r["connections"]), {})[r["backend"]] = r
    for (size, nconn), trio_ in by_case.items():
        stock = trio_["stock"]
        for backend, label in (("uring-poll", "poll path"), ("uring", "native sockets")):
            name = f"echo {size} B x {nconn}c, {label}"
            ours = trio_[backend]
            rows.append(Row(name, "round trips/s", stock["rps"], ours["rps"], True,
                            ours.get("rps_ratio_vs_stock")))  # fmt: skip
            rows.append(Row(name, "server CPU us/round trip", stock["cpu_us_per_rt"],
                            ours["cpu_us_per_rt"], False,
                            ours.get("cpu_ratio_vs_stock")))  # fmt: skip
    return rows, results


def _cancel(scale: str, step: Callable[[str], None]) -> tuple[list[Row], Any]:
    from .bench.cancel import run_cancel_bench

    repeat = {QUICK: 2, DEFAULT: 3, FULL: 5}[scale]
    rows: list[Row] = []
    details: dict[str, Any] = {}
    # Native sockets against Trio's on epoll, then the same program on
    # Trio's own socketpair() sockets on both (see bench/cancel.py).
    for case, name in (
        ("native", "cancel 10,000 receives"),
        ("socketpair", "cancel 10,000 socketpair receives"),
    ):
        step(f"cancellation: 10,000 blocked receives cancelled at once ({case})")
        stock, uring = details[case] = run_cancel_bench(10_000, repeat, case)
        rows.append(Row(name, "us per cancellation", stock["us_per_cancel"],
                        uring["us_per_cancel"], False))  # fmt: skip
        rows.append(Row(name, "peak RSS MiB", stock["peak_rss_mib"], uring["peak_rss_mib"], False))
    return rows, details


def _streaming(scale: str, step: Callable[[str], None]) -> tuple[list[Row], Any]:
    from .bench.streaming import run_streaming_bench

    # One stream of 1 GiB (the case issue 5 sets the bar on), then four at once.
    rows: list[Row] = []
    details: dict[str, Any] = {}
    repeat, one, four = {QUICK: (2, 256, 64), DEFAULT: (3, 512, 128), FULL: (5, 1024, 256)}[scale]
    for connections, mib in ((1, one), (4, four)):
        name = f"streaming {connections} x {mib} MiB"
        step(f"{name} through SocketStream")
        stock, *ours = details[name] = run_streaming_bench(connections, mib, repeat)
        # trio_uring's defaults, then the batched data path.
        for uring, label in zip(ours, ("", ", batched path"), strict=True):
            rows.append(Row(name + label, "GiB/s", stock["gib_per_s"], uring["gib_per_s"], True,
                            uring["ratio"]))  # fmt: skip
            rows.append(Row(name + label, "CPU s per GiB", stock["cpu_s_per_gib"],
                            uring["cpu_s_per_gib"], False, uring["cpu_ratio"]))  # fmt: skip
    return rows, details


def _files(scale: str, step: Callable[[str], None]) -> tuple[list[Row], Any]:
    from .bench.files import run_files_bench

    # The thread-based stock cases do ~5,000 reads/s: they get fewer reads.
    reads, mib, thread_reads = {QUICK: (20_000, 32, 3_000), DEFAULT: (50_000, 64, 6_000),
                                FULL: (200_000, 256, 50_000)}[scale]  # fmt: skip
    result = run_files_bench(reads=reads, tasks=64, mib=mib, thread_reads=thread_reads, step=step)
    rnd = result["random"]
    name = "files 4 KiB x 64 tasks"
    rows = [
        Row(f"{name}, seek+read", "reads/s", rnd["a"]["reads_per_s"], rnd["c"]["reads_per_s"],
            True),
        # Stock Trio's own pread is os.pread in a worker thread.
        Row(f"{name}, pread", "reads/s", rnd["b"]["reads_per_s"], rnd["d"]["reads_per_s"],
            True),
    ]  # fmt: skip
    for size, seq in result["sequential"].items():
        stock, uring = seq["trio.open_file"]["gb_per_s"], seq["trio_uring"]["gb_per_s"]
        rows.append(Row(f"files sequential, {size} reads", "GB/s", stock, uring, True))
    return rows, result


BENCHES: dict[str, Callable[[str, Callable[[str], None]], tuple[list[Row], Any]]] = {
    "echo": _echo,
    "cancel": _cancel,
    "streaming": _streaming,
    "files": _files,
}


def format_table(rows: list[Row]) -> str:
    """The closing table."""
    head = f"{'benchmark':34} {'metric':26} {'stock':>12} {'trio_uring':>12} {'uring is':>10}"
    lines = [head, "-" * len(head)]
    for r in rows:
        adv = r.advantage
        verdict = f"{adv:.2f}x" + (" better" if adv >= 1 else " worse")
        lines.append(
            f"{r.bench:34} {r.metric:26} {r.stock:>12,.2f} {r.uring:>12,.2f} {verdict:>10}"
        )
    lines.append("ratios are oriented so that > 1.00x means trio_uring does better")
    if any(r.paired is not None for r in rows):
        lines.append(
            "echo ratios are medians of per-round ratios (each round runs every backend "
            "back to back), not the ratio of the two medians shown"
        )
    return "\n".join(lines)


def bench_command(args: argparse.Namespace) -> int:
    """Handler of the ``bench`` subcommand."""
    names = list(BENCHES) if args.only is None else args.only.split(",")
    unknown = [n for n in names if n not in BENCHES]
    if unknown or not names:
        print(f"trio_uring bench: --only takes names from {','.join(BENCHES)}", file=sys.stderr)
        return EXIT_USAGE
    try:
        open_ring(Settings(fallback="raise")).close()
    except UringUnavailableError as exc:
        print(f"trio_uring bench: io_uring is unavailable: {exc.cause}", file=sys.stderr)
        return EXIT_UNAVAILABLE
    if args.quick and args.full:
        print("trio_uring bench: --quick and --full exclude each other", file=sys.stderr)
        return EXIT_USAGE
    scale = QUICK if args.quick else FULL if args.full else DEFAULT
    bar = ProgressBar(len(names))
    rows: list[Row] = []
    details: dict[str, Any] = {}
    status = EXIT_OK
    for done, name in enumerate(names):

        def step(text: str, done: int = done) -> None:
            bar.update(done, text)

        run = BENCHES[name]
        if name == "echo" and args.strace:
            run = partial(_echo, strace=True)
        try:
            new_rows, details[name] = run(scale, step)
        except Exception as exc:  # one failed benchmark must not hide the others
            bar.update(done, f"{name} FAILED")
            print(f"\ntrio_uring bench: {name} failed: {exc}", file=sys.stderr)
            details[name] = {"error": str(exc)}
            status = EXIT_FAILED
            continue
        rows += new_rows
        bar.update(done + 1, f"{name} done")
    bar.close()
    if args.json:
        out = {"rows": [{**attrs.asdict(r), "advantage": r.advantage} for r in rows],
               "details": details, "quick": args.quick, "scale": scale}  # fmt: skip
        print(json.dumps(out, indent=2, default=str))
    else:
        print(format_table(rows))
        echo = details.get("echo")
        if isinstance(echo, list) and echo:
            # Every backend of the echo section, the peers included.
            from .bench.echo_report import format_summary as format_echo_summary

            print()
            print(format_echo_summary(echo))
    return status


def add_bench_command(commands: Any) -> None:
    """Register ``bench`` on the CLI's subparsers."""
    parser = commands.add_parser(
        "bench",
        help="benchmarks: stock Trio beside trio_uring, with ratios",
        description=(
            "Run the benchmarks (TCP echo with a C load generator, mass cancellation, "
            "bulk streaming, file reads) on stock Trio and on trio_uring in one run, "
            "interleaved, and "
            "print a table of figures and ratios; the echo benchmark also runs asyncio "
            "and uvloop servers beside Trio's, in the same rounds."
        ),
        epilog=(
            "exit status: 0 if every benchmark ran, 1 if one failed, 2 on a usage error, "
            "3 if io_uring is unavailable"
        ),
    )
    parser.add_argument("--quick", action="store_true", help="about 30 seconds in all")
    parser.add_argument(
        "--full", action="store_true", help="every case at full size: several minutes"
    )
    parser.add_argument(
        "--strace",
        action="store_true",
        help="echo: also count each server's system calls per round trip (one short strace pass)",
    )
    parser.add_argument("--only", default=None, help=f"subset of {','.join(BENCHES)}")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.set_defaults(handler=bench_command)
