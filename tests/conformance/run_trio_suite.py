"""Trio's own test suite as our conformance suite.

Runs the suite that ships in the installed trio wheel twice in one go, on
stock Trio and with ``trio_uring.install()`` in effect for every process
(``TRIO_URING_INSTALL=raise`` reaches child processes through the start-up
hook), then compares the outcomes test by test. Every difference must be
explained in ``docs/conformance.md``; an explained difference that no
longer happens is reported too, so the document cannot go stale.

Exit status: 0 when the two runs agree up to the documented differences.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
sys.path.insert(0, str(ROOT))  # run as a script: make tests.conformance importable

from tests.conformance.compare import Outcomes, compare, outcomes  # noqa: E402

DOC = ROOT / "docs" / "conformance.md"

PYTEST_ARGS = [
    "-p", "trio._tests.pytest_plugin",
    "--pyargs", "trio",
    "--run-slow",
    # The only tests skipped on purpose: checks of optional third-party
    # imports (jedi, pylint, pyright) that say nothing about I/O.
    "--skip-optional-imports",
    "-p", "no:cacheprovider",
    "--timeout", "300",
    "-q",
]  # fmt: skip


def documented_differences() -> dict[str, str]:
    """Test ids listed in the differences table of docs/conformance.md."""
    rows = re.findall(
        r"^\|\s*`([^`]+)`\s*\|\s*(\w+)\s*\|\s*(\w+)\s*\|", DOC.read_text("utf-8"), re.M
    )
    return {test_id: f"{stock}->{uring}" for test_id, stock, uring in rows}


def run_suite(label: str, env: dict[str, str], workdir: Path, extra: list[str]) -> Outcomes:
    """Run Trio's suite once; return its outcomes."""
    junit = workdir / f"{label}.xml"
    cmd = [sys.executable, "-m", "pytest", *PYTEST_ARGS, *extra, f"--junitxml={junit}"]
    print(f"== {label}: {' '.join(cmd[1:])}", flush=True)
    proc = subprocess.run(cmd, cwd=workdir, env=env, stdout=subprocess.PIPE, text=True)
    tail = proc.stdout.strip().splitlines()[-1:] if proc.stdout else []
    print(f"   {label}: {tail[0] if tail else '(no output)'}", flush=True)
    if not junit.exists():
        sys.stdout.write(proc.stdout)
        raise SystemExit(f"{label} run produced no report (exit {proc.returncode})")
    return outcomes(junit)


def main() -> int:
    """Run both suites, compare, report."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("-k", help="only tests matching this expression (debugging)")
    parser.add_argument(
        "--data-path", choices=["direct", "batched"], default="direct",
        help="the io_uring run's data path (TRIO_URING_DATA_PATH); the same differences hold",
    )  # fmt: skip
    args = parser.parse_args()
    extra = ["-k", args.k] if args.k else []

    settings = {"TRIO_URING_DATA_PATH": args.data_path}
    print(f"== io_uring run on the {args.data_path} data path", flush=True)
    result = compare(
        run_suite, "trio-conformance-", extra, documented_differences(), bool(args.k),
        uring_settings=settings,
    )  # fmt: skip
    if result is None:
        return 1
    same, failed = result
    print(f"conformance: {same} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
