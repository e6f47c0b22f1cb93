"""Small shared type aliases."""

from __future__ import annotations

from typing import Protocol


class HasFileno(Protocol):
    """Anything with a ``fileno()`` method, as Trio's own ``_HasFileNo``."""

    def fileno(self) -> int:
        """The file descriptor."""
        ...
