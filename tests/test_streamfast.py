"""The C stream methods' coroutine protocol (``_sockets/_streamfast.c``), driven by hand.

``test_stream.py`` runs them the way programs do, against Trio's own
methods; here each call's awaitable is stepped directly inside a run (no
schedule point is really passed), to reach the states a scheduler
seldom shows: an exception thrown in at the schedule point, a call
closed there, an Outcome used twice, a finished call awaited again.
"""

from __future__ import annotations

import os
import subprocess
import sys
import traceback
from collections.abc import Awaitable, Callable
from typing import Any

import outcome
import pytest
import trio
import trio.testing
from trio._core._traps import CancelShieldedCheckpoint

import trio_uring
from trio_uring._sockets import _streamfast
from trio_uring._sockets import stream as _stream

from .conftest import tcp_stream_pair

Check = Callable[[trio.SocketStream, trio.SocketStream], Awaitable[None]]


def run_c(check: Check) -> None:
    """``check`` on a native stream pair, with the C methods on ``trio.SocketStream``."""
    assert _stream.install()
    receive, send = _stream.IMPLEMENTATIONS["c"]
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(trio.SocketStream, "receive_some", receive)
        patch.setattr(trio.SocketStream, "send_all", send)

        async def main() -> None:
            a, b = await tcp_stream_pair()
            async with a, b:
                # A socket's first receive decides whether it receives
                # ahead (the Python way); after it, calls take the C path.
                for x, y in ((a, b), (b, a)):
                    await x.send_all(b"warm")
                    assert await y.receive_some(10) == b"warm"
                await check(a, b)

        trio_uring.run(main, fallback="raise")


def result_of(call: Any, value: Any) -> Any:
    """Resume ``call`` with ``value`` and return what it returned (its StopIteration)."""
    with pytest.raises(StopIteration) as info:
        call.send(value)
    return info.value.value


def test_a_receive_yields_the_schedule_point_then_returns_the_bytes() -> None:
    async def check(a: trio.SocketStream, b: trio.SocketStream) -> None:
        await a.send_all(b"hello")
        await trio.testing.wait_all_tasks_blocked()
        call = b.receive_some(10)
        assert type(call) is _streamfast.FastCall
        assert call.send(None) is CancelShieldedCheckpoint  # recv(2) made, then the yield
        assert call.cr_await is None
        assert call.cr_frame is None
        assert result_of(call, outcome.Value(None)) == b"hello"
        with pytest.raises(RuntimeError, match="cannot reuse already awaited coroutine"):
            call.send(None)

    run_c(check)


def test_an_outcome_used_twice_raises_as_outcome_does() -> None:
    async def check(a: trio.SocketStream, b: trio.SocketStream) -> None:
        await a.send_all(b"x")
        await trio.testing.wait_all_tasks_blocked()
        used = outcome.Value(None)
        used.unwrap()
        call = b.receive_some(10)
        assert call.send(None) is CancelShieldedCheckpoint
        with pytest.raises(outcome.AlreadyUsedError):
            call.send(used)

    run_c(check)


def test_an_error_outcome_is_raised_and_an_oserror_becomes_a_stream_error() -> None:
    async def check(a: trio.SocketStream, b: trio.SocketStream) -> None:
        for thrown, expected in ((KeyError("k"), KeyError), (OSError(104, "reset"), None)):
            await a.send_all(b"x")
            await trio.testing.wait_all_tasks_blocked()
            call = b.receive_some(10)
            assert call.send(None) is CancelShieldedCheckpoint
            if expected is KeyError:
                with pytest.raises(KeyError):
                    call.send(outcome.Error(thrown))
            else:
                with pytest.raises(trio.BrokenResourceError) as info:
                    call.throw(thrown)
                assert info.value.__cause__ is thrown
                assert info.value.__context__ is thrown

    run_c(check)


def test_a_send_closed_at_its_schedule_point_lets_go_of_the_detector() -> None:
    async def check(a: trio.SocketStream, b: trio.SocketStream) -> None:
        call = a.send_all(b"sent")
        assert call.send(None) is CancelShieldedCheckpoint
        assert a._send_conflict_detector._held  # as Trio's holds it across the yield
        call.close()
        assert not a._send_conflict_detector._held
        assert await b.receive_some(10) == b"sent"  # the bytes had gone: send(2) was made
        # And a bytearray is held exported while the call stands there.
        data = bytearray(b"held")
        call = a.send_all(data)
        assert call.send(None) is CancelShieldedCheckpoint
        with pytest.raises(BufferError):
            data.extend(b"!")
        assert result_of(call, outcome.Value(None)) is None
        data.extend(b"!")
        assert not a._send_conflict_detector._held

    run_c(check)


def test_a_call_never_started_does_nothing_and_a_bad_first_send_is_refused() -> None:
    async def check(a: trio.SocketStream, b: trio.SocketStream) -> None:
        call = a.send_all(b"never")
        with pytest.raises(TypeError, match="non-None value"):
            call.send(1)
        del call
        a.send_all(b"never").close()
        b.receive_some(10).close()
        await a.send_all(b"only")
        assert await b.receive_some(10) == b"only"
        assert not a._send_conflict_detector._held

    run_c(check)


def test_a_waiting_receive_delegates_and_shows_its_frames() -> None:
    async def check(a: trio.SocketStream, b: trio.SocketStream) -> None:
        frames: list[str] = []

        async def receiver(task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
            task_status.started(trio.lowlevel.current_task())
            frames.append((await b.receive_some(10)).decode())

        async with trio.open_nursery() as nursery:
            task = await nursery.start(receiver)
            await trio.testing.wait_all_tasks_blocked()
            # Parked in the Python continuation: Trio can walk into it.
            summary = traceback.StackSummary.extract(task.iter_await_frames())
            names = [f.name for f in summary]
            assert names[:3] == ["receiver", "_receive_rest", "_recv_waiting"], names
            await a.send_all(b"woken")
        assert frames == ["woken"]

    run_c(check)


OFF_SWITCH = """
import trio, trio_uring
from trio_uring._sockets import stream

async def main():
    pass

trio_uring.run(main, fallback="raise")
print(type(vars(trio.SocketStream)["receive_some"]).__name__,
      type(vars(trio.SocketStream)["send_all"]).__name__)
"""


@pytest.mark.parametrize(
    ("value", "expected"), [("0", "function function"), ("1", "instancemethod instancemethod")]
)
def test_the_environment_switch_keeps_the_python_methods(value: str, expected: str) -> None:
    env = {**os.environ, "TRIO_URING_STREAMFAST": value}
    proc = subprocess.run(
        [sys.executable, "-c", OFF_SWITCH], capture_output=True, text=True, timeout=60,
        check=False, env=env, cwd=os.path.dirname(__file__),
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == expected.split()
