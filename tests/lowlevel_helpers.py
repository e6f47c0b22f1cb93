"""Shared helpers for the ``trio_uring.lowlevel`` tests."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest

import trio_uring
from trio_uring._core.manager import UringIOManager


def run(fn: Callable[[], Awaitable[None]]) -> None:
    """Run ``fn`` on io_uring; never fall back (a fallback would hide everything)."""
    trio_uring.run(fn, fallback="raise")


def manager() -> UringIOManager:
    """The running io_uring manager."""
    found = trio_uring._core.manager.running_manager()
    assert found is not None
    return found


def stdlib_error(fn: Callable[[], Any]) -> BaseException:
    """The exception the stdlib call raises (it must raise one)."""
    with pytest.raises(BaseException) as info:  # noqa: PT011 - any type: we compare it next
        fn()
    return info.value


async def assert_same_error(ours: Callable[[], Awaitable[Any]], theirs: Callable[[], Any]) -> None:
    """Our op fails exactly like the stdlib call: same type, same ``str``."""
    expected = stdlib_error(theirs)
    with pytest.raises(type(expected)) as info:
        await ours()
    assert type(info.value) is type(expected)
    assert str(info.value) == str(expected)
    if isinstance(expected, OSError):
        assert isinstance(info.value, OSError)
        assert (info.value.errno, info.value.filename, info.value.filename2) == (
            expected.errno,
            expected.filename,
            expected.filename2,
        )


def holds(container: Any, target: object) -> bool:
    """Whether ``target`` (by identity) is somewhere inside nested tuples/lists."""
    if container is target:
        return True
    if isinstance(container, (tuple, list)):
        return any(holds(item, target) for item in container)
    return False
