"""The documentation builds, with every Sphinx warning an error."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parent.parent / "docs"


@pytest.mark.timeout(300)
def test_docs_build_without_warnings(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html",
         "-d", str(tmp_path / "doctrees"), str(DOCS), str(tmp_path / "html")],
        capture_output=True, text=True, timeout=280, check=False,
    )  # fmt: skip
    assert out.returncode == 0, out.stdout + out.stderr
    html = (tmp_path / "html" / "api.html").read_text(encoding="utf-8")
    # autodoc really ran: a docstring of ours is in the page.
    assert "Drop-in for" in html
