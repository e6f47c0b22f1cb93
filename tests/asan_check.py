"""Fail unless the C code in use is the AddressSanitizer build (``make asan``).

Without this, a broken PYTHONPATH would silently run the ASan job on the
normal build and prove nothing. Both of our C modules are checked: the
shim (``_core/shim.c``) and the stream methods (``_sockets/_streamfast.c``).
"""

from __future__ import annotations

import sys

import trio_uring._core._uring as shim

import trio_uring._sockets._streamfast as streamfast

for name, module in (("the C shim", shim), ("the C stream methods", streamfast)):
    path = module.__file__
    assert path is not None
    if "/build/asan/site/" not in path:
        sys.exit(f"asan: {name} was loaded from {path}, not from build/asan/site")
    with open(path, "rb") as f:
        if b"__asan_init" not in f.read():
            sys.exit(f"asan: {path} is not instrumented (no __asan_init)")
    print(f"asan: using the instrumented {name[4:]} {path}")
