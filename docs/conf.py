"""Sphinx configuration for trio_uring's documentation.

Built by ``tests/test_docs.py`` with warnings as errors, so the docs cannot
rot: a broken reference, a missing docstring target or a page left out of
every toctree fails the test suite.
"""

from __future__ import annotations

project = "trio_uring"
author = "the trio_uring developers"
copyright = "2026, the trio_uring developers"  # noqa: A001 - Sphinx's name

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.intersphinx",
]
source_suffix = {".md": "markdown", ".rst": "restructuredtext"}
root_doc = "index"
exclude_patterns = ["_build"]
myst_heading_anchors = 3
autodoc_member_order = "bysource"
autodoc_typehints = "description"
# No network in CI: intersphinx would need objects.inv from python.org and
# trio.readthedocs.io. External names are written as plain text instead.
intersphinx_mapping: dict[str, tuple[str, str | None]] = {}
html_theme = "alabaster"
html_title = "trio_uring"
nitpicky = False
