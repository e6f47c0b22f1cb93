"""Imported at interpreter start-up by ``trio_uring_autoinstall.pth`` when
``TRIO_URING_INSTALL`` is set: ``1``/``warn`` installs with the warn policy,
``raise`` with the raise policy. Child processes inherit the variable, so a
whole process tree runs on io_uring."""

from __future__ import annotations

import os

from ._run import install

_value = os.environ.get("TRIO_URING_INSTALL", "").strip().lower()
install(fallback="raise" if _value == "raise" else "warn")
