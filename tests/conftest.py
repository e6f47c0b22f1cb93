"""Shared fixtures: every test here runs its Trio code through trio_uring."""

from __future__ import annotations

import os
import resource
from pathlib import Path

import pytest
import trio

import trio_uring

# The package's source tree sits beside tests/, but the tests must exercise
# the installed package (with its compiled shim and load generator). pytest
# appends the root to sys.path (--import-mode=append) and `make` runs it
# from tests/; refuse outright if the source tree got imported anyway.
_SOURCE_TREE = Path(__file__).resolve().parent.parent / "trio_uring"
if Path(trio_uring.__file__).resolve().parent == _SOURCE_TREE:
    raise pytest.UsageError(
        f"trio_uring was imported from the source tree ({_SOURCE_TREE}), not the installed "
        "package: run the tests with `make unit`, or `cd tests && python -m pytest`"
    )


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


async def tcp_stream_pair() -> tuple[trio.SocketStream, trio.SocketStream]:
    """Two ends of a TCP connection on 127.0.0.1, as ``SocketStream`` objects (inside a run)."""
    listener = trio.socket.socket()
    await listener.bind(("127.0.0.1", 0))
    listener.listen()
    client = trio.socket.socket()
    await client.connect(listener.getsockname())
    server, _ = await listener.accept()
    listener.close()
    return trio.SocketStream(client), trio.SocketStream(server)
