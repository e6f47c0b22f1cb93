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
import shutil
import socket
import sys
import time
from importlib.metadata import version
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
sys.path.insert(0, str(ROOT))  # run as a script: make tests.conformance importable

from tests.conformance.anyio_selection import INTERNET_TESTS  # noqa: E402
from tests.conformance.compare import Outcomes, compare  # noqa: E402
from tests.conformance.thirdparty import (  # noqa: E402
    doc_section,
    documented_differences,
    run_pytest,
    unpacked_sdist,
)

DOC_SECTION = "## anyio's suite"

# anyio's own configuration (its pyproject.toml) applies as it is: its
# timeout, its warnings-as-errors, its plugins.
PYTEST_ARGS = ["-p", "anyio_selection", "-p", "no:cacheprovider", "-q"]


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


def main() -> int:
    """Run both suites, compare, report."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("-k", help="only tests matching this expression (debugging)")
    args = parser.parse_args()
    extra = ["-k", args.k] if args.k else []
    started = time.monotonic()

    section = doc_section(DOC_SECTION)
    missing_docs = [t for t in INTERNET_TESTS if f"`{t}`" not in section]
    for test_id in missing_docs:
        print(f"FAIL: {test_id} is deselected but docs/conformance.md does not name it")
    tree = unpacked_sdist("anyio", "tests/conftest.py")
    print(f"anyio {version('anyio')} from {tree.relative_to(ROOT)}, trio {version('trio')}")

    def run(label: str, env: dict[str, str], workdir: Path, extra: list[str]) -> Outcomes:
        """Run anyio's suite once, in its tree (its own pytest configuration)."""
        return run_pytest(label, [*PYTEST_ARGS, *extra], tree, env, workdir,
                          localhost_wrapper(workdir))  # fmt: skip

    documented = documented_differences(section, "anyio")
    result = compare(run, "anyio-conformance-", extra, documented, bool(args.k))
    if result is None:
        return 1
    same, failed = result
    failed += len(missing_docs)
    print(f"anyio conformance ({time.monotonic() - started:.0f} s): {same} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
