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
import os
import re
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
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


def outcomes(junit: Path) -> dict[str, str]:
    """Map test id -> passed | failed | skipped | xfailed | error."""
    result: dict[str, str] = {}
    for case in ET.parse(junit).getroot().iter("testcase"):
        test_id = f"{case.get('classname')}::{case.get('name')}"
        outcome = "passed"
        for child in case:
            if child.tag in ("failure", "error"):
                outcome = "failed" if child.tag == "failure" else "error"
            elif child.tag == "skipped":
                outcome = "xfailed" if child.get("type") == "pytest.xfail" else "skipped"
        result[test_id] = outcome
    return result


def documented_differences() -> dict[str, str]:
    """Test ids listed in the differences table of docs/conformance.md."""
    rows = re.findall(
        r"^\|\s*`([^`]+)`\s*\|\s*(\w+)\s*\|\s*(\w+)\s*\|", DOC.read_text("utf-8"), re.M
    )
    return {test_id: f"{stock}->{uring}" for test_id, stock, uring in rows}


def run_suite(label: str, env: dict[str, str], workdir: Path, extra: list[str]) -> dict[str, str]:
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


def summarize(result: dict[str, str]) -> str:
    """Counts by outcome, in pytest's order."""
    counts: dict[str, int] = {}
    for outcome in result.values():
        counts[outcome] = counts.get(outcome, 0) + 1
    order = ["passed", "failed", "error", "skipped", "xfailed"]
    return ", ".join(f"{counts[k]} {k}" for k in order if k in counts)


def differing(stock: dict[str, str], uring: dict[str, str]) -> set[str]:
    """Test ids whose outcome differs between the two runs."""
    return {
        t for t in set(stock) | set(uring) if stock.get(t, "missing") != uring.get(t, "missing")
    }


def run_both(extra: list[str]) -> tuple[dict[str, str], dict[str, str], bool]:
    """One stock run and one io_uring run; the flag says the probe confirmed io_uring."""
    base_env = {k: v for k, v in os.environ.items() if not k.startswith("TRIO_URING")}
    with tempfile.TemporaryDirectory(prefix="trio-conformance-") as tmp:
        workdir = Path(tmp)
        stock = run_suite("stock", base_env, workdir, extra)
        probe_out = workdir / "probe.txt"
        uring_env = dict(base_env)
        uring_env["TRIO_URING_INSTALL"] = "raise"
        uring_env["TRIO_URING_PROBE_OUT"] = str(probe_out)
        uring_env["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(HERE), base_env.get("PYTHONPATH", "")) if p
        )
        uring = run_suite("io_uring", uring_env, workdir, [*extra, "-p", "uring_probe"])
        probe = probe_out.read_text("utf-8").split() if probe_out.exists() else []
    if probe != ["start", "io_uring", "finish", "io_uring"]:
        print(f"FAIL: the io_uring run did not prove it ran on io_uring: {probe}")
        return stock, uring, False
    return stock, uring, True


def main() -> int:
    """Run both suites, compare, report."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("-k", help="only tests matching this expression (debugging)")
    args = parser.parse_args()
    extra = ["-k", args.k] if args.k else []

    stock, uring, probe_ok = run_both(extra)
    if not probe_ok:
        return 1
    documented = documented_differences()
    if differing(stock, uring) - set(documented):
        # Some of Trio's tests are timing-sensitive on a loaded 2-core box.
        # A difference counts only if a second pair of runs shows it too.
        print("   unexplained differences: running both suites once more to rule out flakes")
        stock2, uring2, probe_ok = run_both(extra)
        if not probe_ok:
            return 1
        for test_id in differing(stock, uring) - differing(stock2, uring2):
            print(f"   flaky, not a difference: {test_id}")
            uring[test_id] = stock[test_id] = stock2.get(test_id, "missing")
    undocumented: list[str] = []
    seen: set[str] = set()
    for test_id in sorted(set(stock) | set(uring)):
        a, b = stock.get(test_id, "missing"), uring.get(test_id, "missing")
        if a == b:
            continue
        seen.add(test_id)
        if documented.get(test_id) == f"{a}->{b}":
            print(f"   explained: {test_id}: {a} -> {b}")
        else:
            undocumented.append(f"{test_id}: stock {a}, io_uring {b}")
    stale = [t for t in documented if t not in seen and (not args.k or t in stock)]

    print(f"stock Trio : {summarize(stock)}")
    print(f"trio_uring : {summarize(uring)}")
    for line in undocumented:
        print(f"FAIL: unexplained difference: {line}")
    for test_id in stale:
        print(f"FAIL: docs/conformance.md explains {test_id}, which no longer differs")
    same = sum(1 for t in stock if stock[t] == uring.get(t))
    print(f"conformance: {same} passed, {len(undocumented) + len(stale)} failed")
    return 1 if undocumented or stale else 0


if __name__ == "__main__":
    sys.exit(main())
