"""trio_uring: run Trio on Linux's io_uring.

>>> import trio, trio_uring
>>> async def main() -> None:
...     await trio.sleep(0)
>>> trio_uring.run(main)

``trio_uring.run`` is a drop-in for ``trio.run``; ``trio_uring.install()``
switches every later run in the process. Once imported, ``"trio_uring"`` is
also an anyio backend name (``anyio.run(main, backend="trio_uring")``).

PYTEST_DONT_REWRITE: the package carries a pytest plugin, so pytest would
rewrite it, and warn when ``TRIO_URING_INSTALL``'s start-up hook has
imported it before pytest started (an error under ``filterwarnings=error``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._core.availability import Availability, Cause, UringUnavailableError
from ._core.availability import check as check_availability
from ._core.compat import UnsupportedTrioError
from ._core.manager import UringIOManager, UringStatistics
from ._core.settings import Settings
from ._core.version import VERSION
from ._files.base import AsyncFile
from ._files.binary import AsyncBinaryFile
from ._files.open import open_file
from ._files.path import Path
from ._files.text import AsyncTextFile
from ._integrations.anyio import register as _register_anyio_backend
from ._integrations.run import install, is_installed, run, uninstall

__version__ = VERSION


if not TYPE_CHECKING:
    # Hidden from type checkers, which would route every submodule import
    # through it; they resolve ``trio_uring.lowlevel`` as a module anyway.

    def __getattr__(name: str) -> Any:
        # ``trio_uring.lowlevel`` is imported on first use, not with the
        # package: it loads the C extension, which ``import trio_uring`` avoids.
        if name == "lowlevel":
            import importlib

            return importlib.import_module(".lowlevel", __name__)
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# anyio.run(backend="trio_uring") and anyio_backend = "trio_uring" work once
# trio_uring is imported; this imports nothing from anyio (see _integrations/anyio.py).
_register_anyio_backend()

__all__ = [
    "AsyncBinaryFile",
    "AsyncFile",
    "AsyncTextFile",
    "Availability",
    "Cause",
    "Path",
    "Settings",
    "UnsupportedTrioError",
    "UringIOManager",
    "UringStatistics",
    "UringUnavailableError",
    "__version__",
    "check_availability",
    "install",
    "is_installed",
    "open_file",
    "run",
    "uninstall",
]
