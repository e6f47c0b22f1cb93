"""trio-websocket's own test suite as conformance for a third-party Trio library.

trio-websocket (pinned in requirements-dev.txt) is pure Trio: TCP servers
and clients, TLS, timeouts and cancellation through ``trio.socket``,
``SocketStream`` and ``SSLStream``, with wsproto on top. Its wheel has no
tests, but its sdist ships ``tests/test_connection.py``. This runner
downloads the sdist of the installed version with pip into
``build/trio-websocket-sdist`` (once), and runs those tests against the
installed trio-websocket twice: on stock Trio and with
``TRIO_URING_INSTALL=raise`` (the process-wide switch). The probe plugin
checks io_uring at the start and the end of the session and inside every
test's own ``trio.run`` (``--uring-probe-each-test``). It then compares the
outcomes test by test, like the other runners.

The sdist carries no pytest configuration; the suite is written for
pytest-trio's trio mode (async tests without marks), so the runner turns it
on with ``-o trio_mode=true``. It runs from the sdist's ``tests`` folder, so
the copy of the package beside it in the sdist is not what gets imported.

Exit status: 0 when the two runs agree up to the differences documented in
the "trio-websocket" section of ``docs/conformance.md``.
"""

from __future__ import annotations

import argparse
import sys
import time
from importlib.metadata import version
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
sys.path.insert(0, str(ROOT))  # run as a script: make tests.conformance importable

from tests.conformance.compare import Outcomes, compare  # noqa: E402
from tests.conformance.thirdparty import (  # noqa: E402
    doc_section,
    documented_differences,
    run_pytest,
    unpacked_sdist,
)

PROJECT = "trio-websocket"
DOC_SECTION = "## trio-websocket's suite"

PYTEST_ARGS = [
    "-o", "trio_mode=true",
    "-p", "no:cacheprovider",
    # The suite bounds each test on Trio's clock; this bounds a hang too.
    "--timeout", "60",
    "-q",
    "test_connection.py",
]  # fmt: skip


def main() -> int:
    """Run both suites, compare, report."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("-k", help="only tests matching this expression (debugging)")
    args = parser.parse_args()
    extra = ["-k", args.k] if args.k else []
    started = time.monotonic()

    documented = documented_differences(doc_section(DOC_SECTION), PROJECT)
    tree = unpacked_sdist(PROJECT, "tests/test_connection.py")
    print(f"{PROJECT} {version(PROJECT)} from {tree.relative_to(ROOT)}, "
          f"wsproto {version('wsproto')}, trio {version('trio')}")  # fmt: skip

    def run(label: str, env: dict[str, str], workdir: Path, extra: list[str]) -> Outcomes:
        """Run trio-websocket's suite once, from its tests folder."""
        return run_pytest(label, [*PYTEST_ARGS, *extra], tree / "tests", env, workdir)

    result = compare(run, "websocket-conformance-", extra, documented, bool(args.k),
                     each_test=True)  # fmt: skip
    if result is None:
        return 1
    same, failed = result
    took = time.monotonic() - started
    print(f"trio-websocket conformance ({took:.0f} s): {same} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
