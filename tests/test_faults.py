"""Faults injected into a run: each ends as on stock Trio, or goes on serving, losing nothing."""

from __future__ import annotations

import socket
import subprocess
import sys
import time

import pytest

from trio_uring import Settings, UringIOManager
from trio_uring._core import manager as _manager
from trio_uring._core.ops import INTERNAL, Op

# -- a run abandoned by an exception from a signal handler ----------------------------

SIGNAL_ESCAPE = """
import signal, sys, time, trio, trio_uring

class Alarm(Exception):
    pass

def handler(signum, frame):
    raise Alarm("from the handler")

signal.signal(signal.SIGALRM, handler)

async def main():
    signal.setitimer(signal.ITIMER_REAL, 0.2)
    if sys.argv[2] == "socket":
        a, b = trio.socket.socketpair()
        await a.recv(10)
    elif sys.argv[2] == "native-socket":
        a, b = trio_uring.socket.socketpair()
        await a.recv(10)
    else:
        await trio.sleep_forever()

import trio_uring.socket
runner = trio_uring.run if sys.argv[1] == "uring" else trio.run
kwargs = {"fallback": "raise"} if sys.argv[1] == "uring" else {}
start = time.monotonic()
try:
    runner(main, **kwargs)
except Alarm as exc:
    print("escaped", exc, flush=True)
print("exiting", flush=True)
"""


@pytest.mark.parametrize("backend", ["stock", "uring"])
@pytest.mark.parametrize("wait", ["sleep", "socket", "native-socket"])
def test_exception_from_a_signal_handler_abandons_the_run_and_the_process_exits(
    backend: str, wait: str
) -> None:
    # As pytest-timeout's signal method does: the handler raises wherever
    # the main thread is, here inside the scheduler's wait. The run is
    # abandoned; closing it (at garbage collection) must be bounded.
    start = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-c", SIGNAL_ESCAPE, backend, wait],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    elapsed = time.monotonic() - start
    assert proc.returncode == 0, proc.stderr
    assert "escaped from the handler" in proc.stdout
    assert "exiting" in proc.stdout
    # Nothing waits out the drain's bound: the lost completions are
    # recognised (their cancels find nothing in the kernel).
    assert elapsed < _manager.DRAIN_TIMEOUT, (elapsed, proc.stderr)


def _push_fake_op(manager: UringIOManager, fd: int) -> tuple[int, Op, bytearray]:
    """A poll on ``fd`` in the table and the SQ, pinning a buffer, as an op would."""
    ring = manager._ring
    ud = ring.next_user_data()
    pinned = bytearray(64)
    op = Op(ud, INTERNAL, fd, 6, None)
    op.pins = pinned
    manager._ops[ud] = op
    ring.push_poll(fd, 1, ud)
    return ud, op, pinned


def test_close_retires_an_op_whose_completion_was_reaped_and_lost() -> None:
    manager = UringIOManager(Settings())
    ring = manager._ring
    ud = ring.next_user_data()
    manager._ops[ud] = Op(ud, INTERNAL, -1, 0, None)
    ring.push(0, -1, ud)  # a NOP: it completes at once
    # Reaped, then dropped on the floor, as when an exception hits between
    # get_events and process_events.
    assert manager.get_events(1)
    assert ud in manager._ops
    unreaped = len(_manager._UNREAPED)
    start = time.monotonic()
    manager.close()
    assert time.monotonic() - start < 1.0
    assert manager._ops == {}
    assert len(_manager._UNREAPED) == unreaped


def test_close_gives_up_after_its_bound_and_leaks_what_the_kernel_holds(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(_manager, "DRAIN_TIMEOUT", 0.3)
    manager = UringIOManager(Settings())
    a, b = socket.socketpair()
    try:
        ud, op, pinned = _push_fake_op(manager, a.fileno())
        assert not manager.get_events(0)  # submitted: the kernel holds it now
        # Cancels that get nowhere (as if the kernel could not cancel it).
        monkeypatch.setattr(manager, "_queue_cancel", lambda target: -1)
        start = time.monotonic()
        manager.close()
        elapsed = time.monotonic() - start
        assert 0.3 <= elapsed < 2.0
        assert any(t.get(ud) is op and op.pins is pinned for t in _manager._UNREAPED)
        assert manager._ring.closed
    finally:
        a.close()
        b.close()


# -- fork() inside a run -------------------------------------------------------------

FORK_IN_A_RUN = """
import os, socket, sys, trio, trio_uring

async def main():
    a, b = trio_uring.socket.socketpair()
    await a.send(b"before")
    assert await b.recv(10) == b"before"
    pid = os.fork()
    if pid == 0:
        # The child goes on with its parent's run: its first wait must
        # refuse clearly, and never reach the parent's ring.
        try:
            await b.recv(10)
        except BaseException as exc:
            os.write(1, f"child: {type(exc).__name__}: {exc}\\n".encode())
            os._exit(0)
        os._exit(1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, status
    # The parent's ring is untouched: I/O goes on, nothing lost.
    await a.send(b"after")
    with trio.fail_after(5):
        assert await b.recv(10) == b"after"
    print("parent: ok", trio.lowlevel.current_statistics().io_statistics.backend, flush=True)

import trio_uring.socket
trio_uring.run(main, fallback="raise")
"""


def test_fork_inside_a_run_gives_the_child_a_clear_error_and_leaves_the_parent_ring() -> None:
    proc = subprocess.run(
        [sys.executable, "-c", FORK_IN_A_RUN],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "child: RingForkedError: this io_uring ring belongs to the process" in proc.stdout
    assert "parent: ok io_uring" in proc.stdout
