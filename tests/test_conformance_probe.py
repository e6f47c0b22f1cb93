"""The conformance probe catches a test that ran on stock Trio.

``make conformance`` trusts ``uring_probe`` (tests/conformance) to prove
that the io_uring run of a suite was on io_uring. This runs the probe, as
the trio-websocket runner does (``--uring-probe-each-test``, pytest-trio's
trio mode), over a tiny suite in which one sync test switches io_uring off
half-way: the next async test must fail, the report must say so, and
``compare.probe_verdict`` must reject it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

from .conformance.compare import probe_verdict

CONFORMANCE = Path(__file__).resolve().parent / "conformance"

SUITE = """
import trio
import trio_uring

async def test_before():
    await trio.sleep(0)

def test_switch_off():
    trio_uring.uninstall()

async def test_after():
    await trio.sleep(0)
"""


def test_the_probe_fails_a_test_that_ran_on_epoll(tmp_path: Path) -> None:
    (tmp_path / "test_suite.py").write_text(SUITE)
    probe, junit = tmp_path / "probe.txt", tmp_path / "junit.xml"
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRIO_URING")}
    env.update(
        TRIO_URING_INSTALL="raise", TRIO_URING_PROBE_OUT=str(probe), PYTHONPATH=str(CONFORMANCE)
    )
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-o", "trio_mode=true", "-p", "no:cacheprovider",
         "-p", "uring_probe", "--uring-probe-each-test", "-q", f"--junitxml={junit}",
         "test_suite.py"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    lines = probe.read_text("utf-8").splitlines()
    assert lines == ["start io_uring", "test io_uring", "test epoll", "finish epoll"], proc.stdout
    failures = {
        case.get("name"): failure.get("message", "")
        for case in ET.parse(junit).getroot().iter("testcase")
        if (failure := case.find("failure")) is not None
    }
    assert list(failures) == ["test_after"], proc.stdout
    assert "was not on io_uring: epoll" in failures["test_after"]
    # The session's own check at the end refuses the run as a whole too.
    assert "not on io_uring (finish: epoll)" in proc.stderr
    assert probe_verdict(lines, each_test=True) is not None
    assert probe_verdict([*lines[:2], "finish io_uring"], each_test=True) is None
    assert probe_verdict(["start io_uring", "finish io_uring"], each_test=True) is not None
    assert probe_verdict(["start io_uring", "finish io_uring"], each_test=False) is None
