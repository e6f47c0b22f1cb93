"""What every conformance runner shares: one suite run twice, compared test by test.

``run_trio_suite.py`` (Trio's suite), ``run_anyio_suite.py`` (anyio's) and
``run_websocket_suite.py`` (trio-websocket's) differ in where the tests
come from and how one run is started; the rest is here: reading pytest's
junit report, running the stock/io_uring pair with the probe that proves
the second run of each pair was on io_uring, ruling out flakes with a
second pair, and checking every difference against the table in
``docs/conformance.md`` (which must not go stale either).
"""

from __future__ import annotations

import os
import tempfile
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent

Outcomes = dict[str, str]
# run(label, env, workdir, extra pytest args) -> outcomes of one run
RunSuite = Callable[[str, dict[str, str], Path, list[str]], Outcomes]


def outcomes(junit: Path) -> Outcomes:
    """Map test id -> passed | failed | skipped | xfailed | error."""
    result: Outcomes = {}
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


def summarize(result: Outcomes) -> str:
    """Counts by outcome, in pytest's order."""
    counts: dict[str, int] = {}
    for outcome in result.values():
        counts[outcome] = counts.get(outcome, 0) + 1
    order = ["passed", "failed", "error", "skipped", "xfailed"]
    return ", ".join(f"{counts[k]} {k}" for k in order if k in counts)


def differing(stock: Outcomes, uring: Outcomes) -> set[str]:
    """Test ids whose outcome differs between the two runs."""
    return {
        t for t in set(stock) | set(uring) if stock.get(t, "missing") != uring.get(t, "missing")
    }


def probe_verdict(lines: list[str], each_test: bool) -> str | None:
    """Why the probe's report does not prove io_uring throughout; None if it does.

    The report is ``uring_probe``'s: ``start``, one ``test`` line per
    pytest-trio test when ``each_test``, ``finish``, each with the backend.
    """
    events = [line.split() for line in lines]
    if not events or events[0] != ["start", "io_uring"] or events[-1] != ["finish", "io_uring"]:
        return f"no io_uring start and finish in {lines[:1] + lines[-1:]}"
    wrong = [line for line, event in zip(lines, events, strict=True) if event[1:] != ["io_uring"]]
    if wrong:
        return f"{len(wrong)} checks not on io_uring, first: {wrong[0]}"
    if each_test and len(events) == 2:
        return "no test was probed (is pytest-trio loaded?)"
    return None


def run_pair(
    run: RunSuite,
    prefix: str,
    extra: list[str],
    each_test: bool = False,
    uring_settings: dict[str, str] | None = None,
) -> tuple[Outcomes, Outcomes, bool]:
    """One stock run and one io_uring run; the flag says the probe confirmed io_uring.

    The io_uring run has ``TRIO_URING_INSTALL=raise`` (every process,
    children included, through the start-up hook) and loads ``uring_probe``,
    which records the backend a fresh ``trio.run`` gets at start and finish,
    and with ``each_test`` the backend of every pytest-trio test's own run.
    ``uring_settings``: more of the start-up hook's variables for that run
    (``TRIO_URING_DATA_PATH``...).
    """
    base_env = {k: v for k, v in os.environ.items() if not k.startswith("TRIO_URING")}
    base_env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(HERE), base_env.get("PYTHONPATH", "")) if p
    )
    probe_args = ["-p", "uring_probe", *(["--uring-probe-each-test"] if each_test else [])]
    with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
        workdir = Path(tmp)
        stock = run("stock", base_env, workdir, extra)
        probe_out = workdir / "probe.txt"
        uring_env = dict(base_env)
        uring_env["TRIO_URING_INSTALL"] = "raise"
        uring_env.update(uring_settings or {})
        uring_env["TRIO_URING_PROBE_OUT"] = str(probe_out)
        uring = run("io_uring", uring_env, workdir, [*extra, *probe_args])
        probe = probe_out.read_text("utf-8").splitlines() if probe_out.exists() else []
    verdict = probe_verdict(probe, each_test)
    if verdict is not None:
        print(f"FAIL: the io_uring run did not prove it ran on io_uring: {verdict}")
        return stock, uring, False
    if each_test:
        print(f"   probe: io_uring at start and finish and in each of {len(probe) - 2} tests")
    return stock, uring, True


def compare(
    run: RunSuite,
    prefix: str,
    extra: list[str],
    documented: dict[str, str],
    subset: bool,
    each_test: bool = False,
    uring_settings: dict[str, str] | None = None,
) -> tuple[int, int] | None:
    """Run the pair, compare, print the report; return (agreeing, failures), None if unproven.

    ``documented`` maps test id -> "stock->io_uring" outcome, from the docs.
    ``subset`` (a ``-k`` run) limits the stale check to the tests that ran.
    ``each_test``: the probe checks inside every pytest-trio test too.
    ``uring_settings``: see ``run_pair``.
    """
    stock, uring, probe_ok = run_pair(run, prefix, extra, each_test, uring_settings)
    if not probe_ok:
        return None
    if differing(stock, uring) - set(documented):
        # Some tests are timing-sensitive on a loaded 2-core box. A
        # difference counts only if a second pair of runs shows it too.
        print("   unexplained differences: running both suites once more to rule out flakes")
        stock2, uring2, probe_ok = run_pair(run, prefix, extra, each_test, uring_settings)
        if not probe_ok:
            return None
        for test_id in sorted(differing(stock, uring)):
            # The same difference both times counts; any other second
            # outcome (the same on both, or the other way round: a test
            # that failed on stock first and on io_uring second) is a flake.
            first = (stock.get(test_id, "missing"), uring.get(test_id, "missing"))
            second = (stock2.get(test_id, "missing"), uring2.get(test_id, "missing"))
            if first == second:
                continue
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
    stale = [t for t in documented if t not in seen and (not subset or t in stock)]

    print(f"stock Trio : {summarize(stock)}")
    print(f"trio_uring : {summarize(uring)}")
    for line in undocumented:
        print(f"FAIL: unexplained difference: {line}")
    for test_id in stale:
        print(f"FAIL: docs/conformance.md explains {test_id}, which no longer differs")
    same = sum(1 for t in stock if stock[t] == uring.get(t))
    return same, len(undocumented) + len(stale)
