"""The package's version, in one place (``pyproject.toml`` repeats it for the build)."""

from __future__ import annotations

from typing import Final

VERSION: Final = "0.1.0"
