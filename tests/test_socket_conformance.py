"""Trio's socket and high-level test files really run on native sockets.

``make conformance`` runs Trio's whole suite with ``install()`` in effect,
which sets our socket factory. This test proves the factory is what those
tests get: it runs the socket, high-level, SSL and DTLS test files the same
way (``TRIO_URING_INSTALL=raise`` in a child process) with a small plugin
that reports ``trio_uring.socket.statistics()`` at the end of the session.
Native sockets must have been created, must have waited in io_uring ops and
used a multishot accept, and the only failures must be the two that
``docs/conformance.md`` explains.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

PLUGIN = """
import json, os
def pytest_sessionfinish(session, exitstatus):
    import trio_uring.socket
    stats = trio_uring.socket.statistics()
    with open(os.environ["NATIVE_SOCKET_STATS"], "w") as f:
        json.dump({name: getattr(stats, name) for name in (
            "sockets", "direct", "ops", "multishot_armed", "multishot_accepted")}, f)
"""

TRIO_FILES = [
    "trio._tests.test_socket",
    "trio._tests.test_highlevel_socket",
    "trio._tests.test_highlevel_open_tcp_stream",
    "trio._tests.test_highlevel_open_tcp_listeners",
    "trio._tests.test_highlevel_serve_listeners",
    "trio._tests.test_highlevel_open_unix_stream",
    "trio._tests.test_highlevel_generic",
    "trio._tests.test_highlevel_ssl_helpers",
    "trio._tests.test_ssl",
    "trio._tests.test_dtls",
]

DOC = Path(__file__).resolve().parent.parent / "docs" / "conformance.md"
EXPLAINED = {"test_custom_socket_factory"}


def test_trios_socket_tests_run_on_native_sockets(tmp_path: Path) -> None:
    (tmp_path / "native_probe.py").write_text(PLUGIN)
    stats_file = tmp_path / "stats.json"
    junit = tmp_path / "junit.xml"
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRIO_URING")}
    env.update(
        TRIO_URING_INSTALL="raise",
        NATIVE_SOCKET_STATS=str(stats_file),
        PYTHONPATH=str(tmp_path),
    )
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "trio._tests.pytest_plugin", "-p", "native_probe",
         "--pyargs", *TRIO_FILES, "--run-slow", "-p", "no:cacheprovider", "-q",
         f"--junitxml={junit}"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    failed = set()
    passed = 0
    for case in ET.parse(junit).getroot().iter("testcase"):
        if any(child.tag in ("failure", "error") for child in case):
            failed.add(str(case.get("name")))
        elif not any(child.tag == "skipped" for child in case):
            passed += 1
    assert failed == EXPLAINED, (failed, proc.stdout[-1500:])
    assert passed > 150
    doc = DOC.read_text("utf-8")
    for name in EXPLAINED:
        assert f"| `_tests.test_socket::{name}` | passed | failed |" in doc
    stats = json.loads(stats_file.read_text())
    assert stats["sockets"] > 100
    assert stats["ops"] > 50  # calls that waited did so in io_uring ops
    assert stats["direct"] > 50
    assert stats["multishot_armed"] > 0
    assert stats["multishot_accepted"] > 0
