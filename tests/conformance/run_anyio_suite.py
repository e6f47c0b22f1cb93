"""anyio's own test suite, Trio backend only, as conformance for the anyio integration.

anyio's wheel has no tests, but its sdist does. This runner downloads the
sdist of the pinned anyio (the version installed here, pinned in
requirements-dev.txt) with pip into ``build/anyio-sdist``, unpacks it, and
runs its ``tests`` against the installed anyio twice: on stock Trio and with
``trio_uring.install()`` in effect in every process (``TRIO_URING_INSTALL=raise``
reaches child processes through the start-up hook; the probe plugin of the
Trio conformance run proves io_uring was in effect at the start and the end).
It then compares the outcomes test by test, like ``run_trio_suite.py``.

Which tests: every test except those parametrized to run on an asyncio
backend (this module is also the pytest plugin that deselects them, loaded
with ``-p run_anyio_suite``), and except ``INTERNET_TESTS``, which need the
internet (this machine and CI have none). Tests that take no
``anyio_backend`` run too: several of them drive ``anyio.run(backend="trio")``
or anyio's pytest plugin themselves.

Exit status: 0 when the two runs agree up to the differences documented in
the "anyio" section of ``docs/conformance.md``.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import socket
import subprocess
import sys
import tarfile
import tempfile
import time
import xml.etree.ElementTree as ET
from importlib.metadata import version
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
DOC = ROOT / "docs" / "conformance.md"
CACHE = ROOT / "build" / "anyio-sdist"
DOC_SECTION = "## anyio's suite"

# The only tests deselected by name: they reach the internet, which neither
# this machine nor CI has. Each is listed in docs/conformance.md too.
INTERNET_TESTS = (
    # Resolves "faß.de" through DNS.
    "tests/test_sockets.py::test_getaddrinfo[trio]",
)

# anyio's own configuration (its pyproject.toml) applies as it is: its
# timeout, its warnings-as-errors, its plugins.
PYTEST_ARGS = ["-p", "run_anyio_suite", "-p", "no:cacheprovider", "-q"]


def _backend_name(item: pytest.Item) -> str | None:
    """The anyio backend a test is parametrized with, if any."""
    callspec = getattr(item, "callspec", None)
    if callspec is None or "anyio_backend" not in callspec.params:
        return None
    backend = callspec.params["anyio_backend"]
    return str(backend[0] if isinstance(backend, tuple) else backend)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Keep the Trio-backend and backend-less tests; drop asyncio and internet tests."""
    keep: list[pytest.Item] = []
    drop: list[pytest.Item] = []
    for item in items:
        if _backend_name(item) not in (None, "trio") or item.nodeid in INTERNET_TESTS:
            drop.append(item)
        else:
            keep.append(item)
    # A renamed test would silently stop being deselected: refuse instead.
    unmatched = set(INTERNET_TESTS) - {item.nodeid for item in items}
    if unmatched and not config.getoption("keyword"):
        raise pytest.UsageError(f"deselected tests not found in anyio's suite: {unmatched}")
    config.hook.pytest_deselected(items=drop)
    items[:] = keep


def anyio_sdist() -> Path:
    """The unpacked sdist of the installed anyio, downloaded once into ``build/``."""
    anyio_version = version("anyio")
    tree = CACHE / f"anyio-{anyio_version}"
    if (tree / "tests" / "conftest.py").exists():
        return tree
    CACHE.mkdir(parents=True, exist_ok=True)
    archive = CACHE / f"anyio-{anyio_version}.tar.gz"
    if not archive.exists():
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
             "--no-binary", ":all:", f"anyio=={anyio_version}", "--dest", str(CACHE)],
            check=True,
        )  # fmt: skip
    with tarfile.open(archive) as tar:
        tar.extractall(CACHE, filter="data")
    if not (tree / "tests" / "conftest.py").exists():
        raise SystemExit(f"{archive} has no tests/conftest.py; cannot run anyio's suite")
    return tree


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


def doc_section() -> str:
    """The anyio section of docs/conformance.md (up to the next level-2 heading)."""
    text = DOC.read_text("utf-8")
    start = text.find(DOC_SECTION)
    if start < 0:
        raise SystemExit(f"{DOC} has no {DOC_SECTION!r} section")
    end = text.find("\n## ", start + len(DOC_SECTION))
    return text[start : end if end >= 0 else len(text)]


def documented_differences(section: str) -> dict[str, str]:
    """Rows ``| anyio | `test id` | stock | io_uring | why |`` of the anyio section.

    The first column keeps these rows out of the Trio runner's table parser,
    which reads the whole document.
    """
    rows = re.findall(r"^\|\s*anyio\s*\|\s*`([^`]+)`\s*\|\s*(\w+)\s*\|\s*(\w+)\s*\|", section, re.M)
    return {test_id: f"{stock}->{uring}" for test_id, stock, uring in rows}


def localhost_wrapper(workdir: Path) -> list[str]:
    """A command prefix that gives the suite a ``localhost`` with an IPv6 address.

    anyio's socket tests bind to ``("localhost", 0)`` for IPv6 too. Where
    ``/etc/hosts`` maps localhost to 127.0.0.1 only (this sandbox), those
    tests fail on both backends before doing any I/O, which would compare
    equal and prove nothing. As root, a private mount namespace can show the
    suite an ``/etc/hosts`` that adds ``::1 localhost`` without touching the
    machine's. Elsewhere the suite runs as it is, and says so.
    """
    try:
        socket.getaddrinfo("localhost", 0, socket.AF_INET6)
    except socket.gaierror:
        pass
    else:
        return []
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        print("   note: localhost has no IPv6 address here; anyio's IPv6 tests fail on both")
        return []
    hosts = workdir / "hosts"
    hosts.write_text(
        Path("/etc/hosts").read_text("utf-8") + "\n::1 localhost ip6-localhost ip6-loopback\n",
        "utf-8",
    )
    return ["unshare", "--mount", "--", "sh", "-c",
            'mount --bind "$0" /etc/hosts && exec "$@"', str(hosts)]  # fmt: skip


def run_suite(label: str, env: dict[str, str], tree: Path, workdir: Path,
              extra: list[str]) -> dict[str, str]:  # fmt: skip
    """Run anyio's suite once; return its outcomes."""
    junit = workdir / f"{label}.xml"
    cmd = [sys.executable, "-m", "pytest", *PYTEST_ARGS, *extra, f"--junitxml={junit}"]
    print(f"== {label}: {' '.join(cmd[1:])}", flush=True)
    started = time.monotonic()
    proc = subprocess.run(
        [*localhost_wrapper(workdir), *cmd],
        cwd=tree,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    tail = proc.stdout.strip().splitlines()[-1:] if proc.stdout else []
    took = time.monotonic() - started
    print(f"   {label}: {tail[0] if tail else '(no output)'} [{took:.0f} s]", flush=True)
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


def run_both(tree: Path, extra: list[str]) -> tuple[dict[str, str], dict[str, str], bool]:
    """One stock run and one io_uring run; the flag says the probe confirmed io_uring."""
    base_env = {k: v for k, v in os.environ.items() if not k.startswith("TRIO_URING")}
    base_env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(HERE), base_env.get("PYTHONPATH", "")) if p
    )
    with tempfile.TemporaryDirectory(prefix="anyio-conformance-") as tmp:
        workdir = Path(tmp)
        stock = run_suite("stock", base_env, tree, workdir, extra)
        probe_out = workdir / "probe.txt"
        uring_env = dict(base_env)
        uring_env["TRIO_URING_INSTALL"] = "raise"
        uring_env["TRIO_URING_PROBE_OUT"] = str(probe_out)
        uring = run_suite("io_uring", uring_env, tree, workdir, [*extra, "-p", "uring_probe"])
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
    started = time.monotonic()

    section = doc_section()
    missing_docs = [t for t in INTERNET_TESTS if f"`{t}`" not in section]
    for test_id in missing_docs:
        print(f"FAIL: {test_id} is deselected but docs/conformance.md does not name it")
    tree = anyio_sdist()
    print(f"anyio {version('anyio')} from {tree.relative_to(ROOT)}, trio {version('trio')}")

    stock, uring, probe_ok = run_both(tree, extra)
    if not probe_ok:
        return 1
    documented = documented_differences(section)
    if differing(stock, uring) - set(documented):
        # Some tests are timing-sensitive on a loaded 2-core box. A difference
        # counts only if a second pair of runs shows it too.
        print("   unexplained differences: running both suites once more to rule out flakes")
        stock2, uring2, probe_ok = run_both(tree, extra)
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
    failed = len(undocumented) + len(stale) + len(missing_docs)
    print(f"anyio conformance ({time.monotonic() - started:.0f} s): {same} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
