"""Fail unless the C shim in use is the AddressSanitizer build (``make asan``).

Without this, a broken PYTHONPATH would silently run the ASan job on the
normal build and prove nothing.
"""

from __future__ import annotations

import sys

import trio_uring._core._uring as shim

path = shim.__file__
if "/build/asan/site/" not in path:
    sys.exit(f"asan: the C shim was loaded from {path}, not from build/asan/site")
with open(path, "rb") as f:
    if b"__asan_init" not in f.read():
        sys.exit(f"asan: {path} is not instrumented (no __asan_init)")
print(f"asan: using the instrumented shim {path}")
