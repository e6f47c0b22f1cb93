"""The documentation builds, with every Sphinx warning an error."""

from __future__ import annotations

import re
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


ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "trio_uring"
ARCHITECTURE = DOCS / "architecture.md"
_LAYERS = "_core|_files|_sockets|lowlevel|_integrations|_tools"
_LAYER_PATH = re.compile(rf"`((?:{_LAYERS})/[\w/]*\.(?:py|c|h))`")


def _section(text: str, heading: str) -> str:
    start = text.index(heading)
    end = text.find("\n## ", start + len(heading))
    return text[start : end if end != -1 else len(text)]


def test_architecture_names_only_modules_that_exist() -> None:
    text = ARCHITECTURE.read_text(encoding="utf-8")
    named = set(_LAYER_PATH.findall(text))
    assert len(named) > 10, "the page no longer names modules by path"
    missing = sorted(p for p in named if not (PACKAGE / p).is_file())
    assert not missing, f"docs/architecture.md names modules that do not exist: {missing}"
    # The core's table names its modules bare, as the rows of one folder.
    table = _section(text, "## `_core`, module by module")
    bare = set(re.findall(r"`(\w+\.(?:py|c|h))`", table))
    assert "manager.py" in bare
    missing = sorted(m for m in bare if not (PACKAGE / "_core" / m).is_file())
    assert not missing, f"the core's table names modules that do not exist: {missing}"
    # And it names every module the core has.
    present = {p.name for p in (PACKAGE / "_core").iterdir() if p.suffix in (".py", ".c", ".h")}
    unnamed = sorted(present - bare - {"__init__.py"})
    assert not unnamed, f"the core's table leaves out: {unnamed}"


def test_architecture_draws_every_layer_as_a_folder() -> None:
    drawing = ARCHITECTURE.read_text(encoding="utf-8").split("```text", 1)[1].split("```", 1)[0]
    drawn = set(re.findall(r"\b(_?[a-z]+)/ ", drawing))
    folders = {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").is_file()}
    assert drawn == folders, f"drawn {sorted(drawn)}, folders {sorted(folders)}"


def test_architecture_upper_layers_table_matches_the_folders() -> None:
    """Each row of the upper layers' table names modules of its layer, and none is left out."""
    table = _section(
        ARCHITECTURE.read_text(encoding="utf-8"), "## The layers above, module by module"
    )
    layer = ""
    named: dict[str, set[str]] = {}
    for row in table.splitlines():
        cells = [c.strip() for c in row.strip().strip("|").split("|")]
        if len(cells) != 3 or not cells[1].startswith("`"):
            continue
        layer = cells[0].strip("`") or layer
        named.setdefault(layer, set()).update(re.findall(r"`([\w/]+\.py)`", cells[1]))
    assert set(named) == {"_files", "_sockets", "lowlevel", "_tools"}
    for layer, modules in named.items():
        folder = PACKAGE / layer
        missing = sorted(m for m in modules if not (folder / m).is_file())
        assert not missing, f"{layer}: the table names modules that do not exist: {missing}"
        present = {
            str(p.relative_to(folder)) for p in folder.rglob("*.py") if p.name != "__init__.py"
        }
        # The tools' table names the engines users meet, not every helper.
        if layer != "_tools":
            unnamed = sorted(present - modules)
            assert not unnamed, f"{layer}: the table leaves out {unnamed}"
