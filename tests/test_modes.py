"""The ring's modes (``Settings.mode``): interrupt-driven, and SQPOLL.

With ``mode="sqpoll"`` a kernel thread submits what the program queues.
What a program can observe must not change: every byte once and in order,
cancellation losing nothing, a full SQ waited out. What changes is who
submits, so the tests also check the part only this mode has: the thread
falls asleep when idle, and the next submission must wake it (or it would
never be submitted at all).
"""

from __future__ import annotations

import errno
import os
import select
import socket
import subprocess
import sys
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import trio
import trio.testing

import trio_uring
from trio_uring import UringStatistics, UringUnavailableError
from trio_uring import lowlevel as ll
from trio_uring._core import ring as _ring
from trio_uring._core.abi import OP, SETUP_DEFER_TASKRUN, SETUP_SINGLE_ISSUER, SETUP_SQPOLL
from trio_uring._core.settings import Settings

from .conftest import tcp_stream_pair


def run_sqpoll(fn: Callable[[], Awaitable[None]], **kwargs: Any) -> None:
    kwargs.setdefault("data_path", "batched")
    trio_uring.run(fn, fallback="raise", mode="sqpoll", **kwargs)


def io_stats() -> UringStatistics:
    stats = trio.lowlevel.current_statistics().io_statistics
    assert isinstance(stats, UringStatistics)
    return stats


@pytest.mark.parametrize("data_path", ["direct", "batched"])
def test_an_sqpoll_run_says_so_and_moves_every_byte_once_in_order(data_path: str) -> None:
    async def main() -> None:
        assert io_stats().mode == "sqpoll"
        a, b = await tcp_stream_pair()
        payloads = [os.urandom(n) for n in (1, 64, 4096, 70_000, 1 << 20)] * 3
        received = bytearray()

        async def sink() -> None:
            while len(received) < sum(map(len, payloads)):
                received.extend(await b.receive_some(65536))

        async with trio.open_nursery() as nursery:
            nursery.start_soon(sink)
            for p in payloads:
                await a.send_all(p)
        assert received == b"".join(payloads)
        await a.aclose()
        await b.aclose()
        assert io_stats().sqes_submitted > 0

    run_sqpoll(main, data_path=data_path)


def test_interrupt_mode_is_the_default_and_never_wakes_a_poller() -> None:
    async def main() -> None:
        await ll.nop()
        stats = io_stats()
        assert (stats.mode, stats.sq_wakeups) == ("interrupt", 0)

    trio_uring.run(main, fallback="raise")


_WAKE_CHILD = """
import trio, trio_uring
from trio_uring import lowlevel as ll

async def main():
    stats = trio.lowlevel.current_statistics
    await ll.nop()
    for _ in range(3):
        before = stats().io_statistics.sq_wakeups
        await trio.sleep(0.2)
        await ll.nop()
        assert stats().io_statistics.sq_wakeups > before, "submitted without a wake-up?"
    print("woken", stats().io_statistics.sq_wakeups)

trio_uring.run(main, fallback="raise", mode="sqpoll", sqpoll_idle=0.01)
"""


def test_the_idle_poller_is_woken_by_the_next_submission() -> None:
    # A 10 ms idle time: after each sleep the kernel thread sleeps too, and
    # the nop is submitted only if the submission wakes it. Without the
    # wake-up nothing would ever reach the kernel (not even a cancel), so
    # the scenario runs in a child whose hang the timeout turns into a
    # failure here.
    child = subprocess.run(
        [sys.executable, "-c", _WAKE_CHILD], capture_output=True, text=True, timeout=60
    )
    assert child.returncode == 0, child.stderr
    word, count = child.stdout.split()
    assert word == "woken"
    assert int(count) >= 3


def test_a_busy_poller_takes_submissions_without_being_woken() -> None:
    # With an hour of idle time the thread, once woken, never sleeps during
    # the test: a thousand submissions need a handful of wake-ups at most
    # (one, normally; the bound leaves room for a loaded machine).
    async def main() -> None:
        await ll.nop()
        before = io_stats().sq_wakeups
        for _ in range(1000):
            await ll.nop()
        assert io_stats().sq_wakeups - before <= 10

    run_sqpoll(main, sqpoll_idle=3600)


def test_cancelling_many_receives_loses_nothing_and_leaves_no_op() -> None:
    # On an SQPOLL ring an SQE already published can't be turned back into a
    # NOP (the thread may be reading it), so every cancel is the kernel's.
    async def main() -> None:
        pairs = [socket.socketpair() for _ in range(300)]
        await trio.testing.wait_all_tasks_blocked()  # Trio's own tasks parked on their fds
        internal = io_stats().ops_in_flight  # their waits: the run's, not ours
        try:
            with trio.move_on_after(0.2):
                async with trio.open_nursery() as nursery:
                    for a, _ in pairs:
                        nursery.start_soon(ll.recv, a.fileno(), 100)
            # A linked timeout's own CQE may come a little after its op's
            # (the poller posts them): none may be left for good.
            with trio.fail_after(5):
                while io_stats().ops_in_flight != internal:
                    await trio.sleep(0.001)
            for a, b in pairs:
                b.send(b"kept")
                assert await ll.recv(a.fileno(), 100) == b"kept"
        finally:
            for a, b in pairs:
                a.close()
                b.close()

    run_sqpoll(main)


def test_a_full_sq_is_waited_out_not_lost() -> None:
    # Two SQ entries for two hundred ops at once: each push that finds the
    # SQ full waits for the thread to make room (IORING_ENTER_SQ_WAIT).
    async def main() -> None:
        assert io_stats().ring_entries == 2
        pairs = [socket.socketpair() for _ in range(100)]
        got: dict[int, bytes] = {}

        async def one(i: int, a: socket.socket, b: socket.socket) -> None:
            await ll.send(b.fileno(), b"%d" % i)
            got[i] = await ll.recv(a.fileno(), 100)

        try:
            async with trio.open_nursery() as nursery:
                for i, (a, b) in enumerate(pairs):
                    nursery.start_soon(one, i, a, b)
                    nursery.start_soon(ll.nop)
        finally:
            for a, b in pairs:
                a.close()
                b.close()
        assert got == {i: b"%d" % i for i in range(100)}

    run_sqpoll(main, entries=2)


def test_a_refused_sqpoll_ring_names_the_cause(monkeypatch: pytest.MonkeyPatch) -> None:
    # The kernel refuses SQPOLL with DEFER_TASKRUN (EINVAL): a real refusal
    # of the SQPOLL ring on a kernel that sets up other rings.
    refused = SETUP_SQPOLL | SETUP_SINGLE_ISSUER | SETUP_DEFER_TASKRUN
    monkeypatch.setattr(_ring, "SQPOLL_SETUPS", (refused,))

    async def main() -> None:
        raise AssertionError("the run must not start")

    with pytest.raises(UringUnavailableError) as info:
        run_sqpoll(main)
    assert info.value.cause.code == "sqpoll"
    assert "SQPOLL" in str(info.value)
    assert "mode='interrupt'" in str(info.value)


@pytest.mark.parametrize(
    ("kwargs", "error", "words"),
    [
        ({"mode": "iopoll"}, ValueError, "IOPOLL ring refuses socket and poll operations"),
        ({"mode": "SQPOLL"}, ValueError, "mode must be one of"),
        ({"mode": None}, ValueError, "mode must be one of"),
        ({"sqpoll_idle": 0}, ValueError, "between 0.001 and 3600"),
        ({"sqpoll_idle": float("nan")}, ValueError, "between 0.001 and 3600"),
        ({"sqpoll_idle": float("inf")}, ValueError, "between 0.001 and 3600"),
        ({"sqpoll_idle": -1}, ValueError, "between 0.001 and 3600"),
        ({"sqpoll_idle": True}, TypeError, "number of seconds"),
        ({"sqpoll_idle": "1"}, TypeError, "number of seconds"),
    ],
)
def test_bad_modes_and_idle_times_are_refused_before_any_ring(
    kwargs: dict[str, Any], error: type[Exception], words: str
) -> None:
    with pytest.raises(error, match=words):
        Settings(**kwargs)
    with pytest.raises(error, match=words):
        trio_uring.run(trio.sleep, 0, fallback="raise", **kwargs)


def test_idle_time_is_whole_milliseconds_and_only_for_sqpoll() -> None:
    assert Settings(mode="sqpoll", sqpoll_idle=0.0014).sqpoll_idle_ms == 1
    assert Settings(mode="sqpoll", sqpoll_idle=2.5).sqpoll_idle_ms == 2500
    assert Settings(sqpoll_idle=2.5).sqpoll_idle_ms is None


def test_the_anyio_backend_takes_the_mode_as_an_option() -> None:
    anyio = pytest.importorskip("anyio")

    async def main() -> str:
        return str(io_stats().mode)

    options = {"mode": "sqpoll", "sqpoll_idle": 0.05, "fallback": "raise"}
    assert anyio.run(main, backend="trio_uring", backend_options=options) == "sqpoll"


def test_a_guest_run_on_an_sqpoll_ring() -> None:
    # A guest run's get_events runs in worker threads: an SQPOLL ring is not
    # tied to a submitting thread, so it serves a guest run too.
    import queue

    todo: queue.Queue[Callable[[], object]] = queue.Queue()
    outcome: list[Any] = []

    async def main() -> None:
        assert io_stats().mode == "sqpoll"
        a, b = socket.socketpair()
        with a, b:
            await ll.send(b.fileno(), b"guest")
            assert await ll.recv(a.fileno(), 10) == b"guest"

    def done(result: Any) -> None:
        outcome.append(result)
        todo.put(lambda: None)

    settings = Settings(mode="sqpoll", fallback="raise")
    from trio_uring._integrations.anyio import uring_selected

    with uring_selected(settings):
        trio.lowlevel.start_guest_run(
            main,
            run_sync_soon_threadsafe=todo.put,
            done_callback=done,
        )
    while not outcome:
        todo.get(timeout=10)()
    outcome[0].unwrap()


def test_why_iopoll_is_no_mode_an_iopoll_ring_refuses_polls_and_receives() -> None:
    # The reason the "iopoll" mode is refused, checked on this kernel: an
    # IOPOLL ring answers POLL_ADD and RECV with EINVAL (a NOP it runs).
    iopoll = 1 << 0  # IORING_SETUP_IOPOLL
    ring = _ring.Ring(8, flags=iopoll)
    a, b = socket.socketpair()
    try:
        ring.push(OP["POLL_ADD"], a.fileno(), 1, op_flags=select.POLLIN)
        ring.push(OP["RECV"], a.fileno(), 2, length=0)
        ring.push(OP["NOP"], -1, 3)
        got: dict[int, int] = {}
        while len(got) < 3:
            events = ring.get_events(5)
            assert events is not None, f"only {got} completed"
            got.update(zip(events[0], events[1], strict=True))
        assert got == {1: -errno.EINVAL, 2: -errno.EINVAL, 3: 0}
    finally:
        ring.close()
        a.close()
        b.close()


def test_closing_a_socket_a_task_waits_on_wakes_it_with_closed_resource_error() -> None:
    # Trio's test_interrupted_by_close: the waiter's op may still be in the
    # SQ when the socket closes (an SQPOLL ring can't turn it into a NOP).
    # The close must wait until the poller has read it, or the poller looks
    # the fd up after the close (EBADF, or another file that took the fd
    # number).
    async def reader(a: trio.socket.SocketType, started: list[bool]) -> None:
        started.append(True)
        with pytest.raises(trio.ClosedResourceError):
            await a.recv(1)  # an op, queued just before the close

    async def main() -> None:
        for _ in range(20):
            # The poller falls asleep (1 ms idle): an SQE queued now waits in
            # the SQ until a submission wakes it, which the close comes before.
            await trio.sleep(0.005)
            a, b = trio.socket.socketpair()
            started: list[bool] = []
            with b:
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(reader, a, started)
                    # Closed in the same batch of steps as the reader's wait
                    # (Trio runs a batch in random order: often enough).
                    while not started:
                        await trio.lowlevel.checkpoint()
                    a.close()

    run_sqpoll(main, data_path="direct", sqpoll_idle=0.001)
