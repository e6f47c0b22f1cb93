"""User-space instructions per echo round trip, counted by callgrind: stock Trio vs trio_uring.

Wall-clock rates on a small shared machine scatter by +-25 % from run to
run; instruction counts do not. This runs the echo server of
``bench_echo.py`` under ``valgrind --tool=callgrind`` (which counts every
instruction the process executes in user space, the kernel's work not
included), drives it with the same C load generator, and takes two runs of
different length per backend: the difference in instructions divided by
the difference in round trips, so start-up and shutdown cancel out.

The kernel's share (system calls, TCP on loopback) is not in these counts;
``bench_echo.py --strace`` counts the system calls.

Usage::

    python benchmarks/bench_echo_instructions.py [--backends stock,uring-poll,uring]
        [--connections 50] [--size 64] [--short 3] [--long 12]

Needs valgrind. Each backend takes about a minute (the server runs about
50 times slower under callgrind).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from trio_uring._tools.bench.echo_processes import BACKENDS, HOST, SERVER_MODULE, build_client

READY_TIMEOUT = 120.0  # Python starts slowly under valgrind


def _instructions(out_file: Path) -> int:
    """The total instruction count (``Ir``) a callgrind output file reports."""
    for line in out_file.read_text().splitlines():
        if line.startswith(("summary:", "totals:")):
            return int(line.split()[1])
    raise RuntimeError(f"no instruction total in {out_file}")


def one_run(
    backend: str, connections: int, size: int, seconds: float, workdir: Path
) -> tuple[int, int]:
    """Serve under callgrind for ``seconds`` of load; return (instructions, round trips)."""
    valgrind = shutil.which("valgrind")
    if valgrind is None:
        raise SystemExit("valgrind not found: it is what counts the instructions")
    stamp = f"{backend}-{seconds}-{time.monotonic_ns()}"
    ready = workdir / f"ready-{stamp}"
    out_file = workdir / f"callgrind-{stamp}.out"
    server = subprocess.Popen(
        [valgrind, "--tool=callgrind", f"--callgrind-out-file={out_file}", "--dump-instr=no",
         sys.executable, "-m", SERVER_MODULE, "--backend", backend, "--port", "0",
         "--ready-file", str(ready)],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + READY_TIMEOUT
        while not ready.exists():
            if server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{backend} server did not start under valgrind")
            time.sleep(0.1)
        port = ready.read_text().strip()
        client = subprocess.run(
            [str(build_client()), "--host", HOST, "--port", port, "--connections",
             str(connections), "--size", str(size), "--duration", str(seconds), "--warmup", "0"],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        round_trips = int(json.loads(client.stdout.strip().splitlines()[-1])["round_trips"])
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(server.pid, signal.SIGINT)
        try:
            server.wait(READY_TIMEOUT)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
    return _instructions(out_file), round_trips


def main() -> int:
    """Run every backend twice (short, long) and print instructions per round trip."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--backends", default=",".join(BACKENDS))
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--short", type=float, default=3.0, help="seconds of load, first run")
    parser.add_argument("--long", type=float, default=12.0, help="seconds of load, second run")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    backends = args.backends.split(",")
    if unknown := set(backends) - set(BACKENDS):
        parser.error(f"unknown backends: {sorted(unknown)}")
    if not 0 < args.short < args.long:
        parser.error("need 0 < --short < --long")
    results = []
    with tempfile.TemporaryDirectory(prefix="trio-uring-callgrind-") as tmp:
        for backend in backends:
            ir_short, rt_short = one_run(
                backend, args.connections, args.size, args.short, Path(tmp)
            )
            ir_long, rt_long = one_run(backend, args.connections, args.size, args.long, Path(tmp))
            if rt_long <= rt_short:
                raise SystemExit(f"{backend}: the long run made no more round trips than the short")
            per_rt = (ir_long - ir_short) / (rt_long - rt_short)
            results.append({
                "backend": backend, "round_trips": [rt_short, rt_long],
                "instructions": [ir_short, ir_long], "per_round_trip": per_rt,
            })  # fmt: skip
    if args.json:
        print(json.dumps(results, indent=2))
        return 0
    base = results[0]["per_round_trip"]
    print(f"{'backend':12} {'instructions/rt':>16} {'round trips':>18} {'x':>6}")
    for r in results:
        rts = f"{r['round_trips'][0]}+{r['round_trips'][1]}"
        print(f"{r['backend']:12} {r['per_round_trip']:>16,.0f} {rts:>18} "
              f"{base / r['per_round_trip']:>5.2f}x")  # fmt: skip
    print(f"{args.size} B x {args.connections} connections; x = {results[0]['backend']} / backend "
          "(> 1: fewer instructions)")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
