"""Imported at interpreter start-up by ``trio_uring_autoinstall.pth`` when
``TRIO_URING_INSTALL`` is set: ``1``/``warn`` installs with the warn policy,
``raise`` with the raise policy. Child processes inherit the variable, so a
whole process tree runs on io_uring."""

from __future__ import annotations

import os

from .._core.settings import Settings
from .run import install, switch_on

_value = os.environ.get("TRIO_URING_INSTALL", "").strip().lower()
if _value == "raise":
    # Deferred: the first trio.run raises UringUnavailableError, where the
    # program sees it. Raising here would only print a note from site.py.
    switch_on(Settings(fallback="raise"))
else:
    install(fallback="warn")
