"""What the runners of third-party suites share: the sdist, the doc section, one run.

anyio's and trio-websocket's wheels have no tests; their sdists do.
``run_anyio_suite.py`` and ``run_websocket_suite.py`` each download the
sdist of the installed (pinned) version with pip into ``build/`` once, run
its tests with pytest (twice, through ``compare.py``), and read the
differences they accept from their own section of ``docs/conformance.md``.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tarfile
import time
from importlib.metadata import version
from pathlib import Path

from tests.conformance.compare import Outcomes, outcomes

ROOT = Path(__file__).resolve().parent.parent.parent
DOC = ROOT / "docs" / "conformance.md"


def unpacked_sdist(project: str, needed: str) -> Path:
    """The unpacked sdist of the installed ``project``, downloaded once into ``build/``.

    ``needed`` is a path inside the sdist (its tests) without which the
    sdist is of no use; its absence is an error, not an empty run.
    """
    release = version(project)
    cache = ROOT / "build" / f"{project}-sdist"
    # The sdist's file and top folder use the normalized name (PEP 625).
    stem = f"{re.sub(r'[-_.]+', '_', project).lower()}-{release}"
    tree = cache / stem
    if (tree / needed).exists():
        return tree
    cache.mkdir(parents=True, exist_ok=True)
    archive = cache / f"{stem}.tar.gz"
    if not archive.exists():
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
             "--no-binary", ":all:", f"{project}=={release}", "--dest", str(cache)],
            check=True,
        )  # fmt: skip
    with tarfile.open(archive) as tar:
        tar.extractall(cache, filter="data")
    if not (tree / needed).exists():
        raise SystemExit(f"{archive} has no {needed}; cannot run {project}'s suite")
    return tree


def doc_section(heading: str) -> str:
    """The section of docs/conformance.md under ``heading`` (up to the next level-2 one)."""
    text = DOC.read_text("utf-8")
    start = text.find(heading)
    if start < 0:
        raise SystemExit(f"{DOC} has no {heading!r} section")
    end = text.find("\n## ", start + len(heading))
    return text[start : end if end >= 0 else len(text)]


def documented_differences(section: str, suite: str) -> dict[str, str]:
    """Rows ``| suite | `test id` | stock | io_uring | why |`` of a section.

    The first column keeps these rows out of the Trio runner's table parser,
    which reads the whole document.
    """
    row = rf"^\|\s*{re.escape(suite)}\s*\|\s*`([^`]+)`\s*\|\s*(\w+)\s*\|\s*(\w+)\s*\|"
    rows = re.findall(row, section, re.M)
    return {test_id: f"{stock}->{uring}" for test_id, stock, uring in rows}


def run_pytest(label: str, args: list[str], cwd: Path, env: dict[str, str], workdir: Path,
               wrapper: list[str] | None = None) -> Outcomes:  # fmt: skip
    """Run pytest once with ``args`` in ``cwd`` (under ``wrapper``); return its outcomes."""
    junit = workdir / f"{label}.xml"
    cmd = [sys.executable, "-m", "pytest", *args, f"--junitxml={junit}"]
    print(f"== {label}: {' '.join(cmd[1:])}", flush=True)
    started = time.monotonic()
    proc = subprocess.run(
        [*(wrapper or []), *cmd],
        cwd=cwd,
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
