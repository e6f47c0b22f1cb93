"""Imported at interpreter start-up by ``trio_uring_autoinstall.pth`` when
``TRIO_URING_INSTALL`` is set: ``1``/``warn`` installs with the warn policy,
``raise`` with the raise policy. ``TRIO_URING_MODE`` (``interrupt`` or
``sqpoll``) and ``TRIO_URING_DATA_PATH`` (``direct`` or ``batched``) choose
those settings. Child processes inherit the variables, so a whole process
tree runs on io_uring, set up the same way."""

from __future__ import annotations

import os
import warnings
from typing import Any

from .._core.settings import Settings
from .run import install, switch_on

_value = os.environ.get("TRIO_URING_INSTALL", "").strip().lower()
_chosen: dict[str, Any] = {}
for _name, _var in (("mode", "TRIO_URING_MODE"), ("data_path", "TRIO_URING_DATA_PATH")):
    _setting = os.environ.get(_var, "").strip().lower()
    if not _setting:
        continue
    _one: dict[str, Any] = {_name: _setting}
    try:
        Settings(**_one)  # checked alone, so the warning names this variable
    except ValueError as exc:
        # An exception here would only be printed by site.py, and the switch
        # silently left off: say what is ignored, and go on with the default.
        warnings.warn(f"{_var}={_setting!r} is ignored: {exc}", RuntimeWarning, stacklevel=1)
    else:
        _chosen[_name] = _setting
if _value == "raise":
    # Deferred: the first trio.run raises UringUnavailableError, where the
    # program sees it. Raising here would only print a note from site.py.
    switch_on(Settings(fallback="raise", **_chosen))
else:
    install(fallback="warn", **_chosen)
