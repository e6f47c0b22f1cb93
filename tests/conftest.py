"""Shared fixtures: every test here runs its Trio code through trio_uring."""

from __future__ import annotations

import os
import resource

import pytest


def open_fds() -> int:
    """How many fds this process has open right now."""
    return len(os.listdir("/proc/self/fd"))


@pytest.fixture
def many_fds() -> None:
    """Raise the soft fd limit to the hard one (the 10,000-fd tests need it)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = 16384
    if hard < want:
        try:
            # Root (CI here) may raise the hard limit too.
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, want))
        except (ValueError, OSError):
            pytest.skip(f"RLIMIT_NOFILE hard limit {hard} < {want} and cannot be raised")
    else:
        resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, want), hard))
