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
backend (the pytest plugin ``anyio_selection``, loaded with
``-p anyio_selection``, deselects them), and except ``INTERNET_TESTS``, which need the
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
import time
from importlib.metadata import version
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
sys.path.insert(0, str(ROOT))  # run as a script: make tests.conformance importable

from tests.conformance.anyio_selection import INTERNET_TESTS  # noqa: E402
from tests.conformance.compare import Outcomes, compare, outcomes  # noqa: E402

DOC = ROOT / "docs" / "conformance.md"
CACHE = ROOT / "build" / "anyio-sdist"
DOC_SECTION = "## anyio's suite"

# anyio's own configuration (its pyproject.toml) applies as it is: its
# timeout, its warnings-as-errors, its plugins.
PYTEST_ARGS = ["-p", "anyio_selection", "-p", "no:cacheprovider", "-q"]


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
              extra: list[str]) -> Outcomes:  # fmt: skip
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

    def run(label: str, env: dict[str, str], workdir: Path, extra: list[str]) -> Outcomes:
        return run_suite(label, env, tree, workdir, extra)

    documented = documented_differences(section)
    result = compare(run, "anyio-conformance-", extra, documented, bool(args.k))
    if result is None:
        return 1
    same, failed = result
    failed += len(missing_docs)
    print(f"anyio conformance ({time.monotonic() - started:.0f} s): {same} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
