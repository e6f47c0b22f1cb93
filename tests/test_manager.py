"""The I/O manager against Trio's contract, on a real ring."""

from __future__ import annotations

import errno
import gc
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Awaitable, Callable

import pytest
import trio
import trio.testing

import trio_uring
from trio_uring import Settings, UringIOManager, UringStatistics

from .conftest import open_fds


def run(fn: Callable[[], Awaitable[None]], **kwargs: object) -> None:
    trio_uring.run(fn, fallback="raise", **kwargs)  # type: ignore[arg-type]


def fill_send_buffer(sock: socket.socket) -> None:
    """Send until the kernel refuses: the socket is then not writable."""
    sock.setblocking(False)
    try:
        while True:
            sock.send(b"x" * 65536)
    except BlockingIOError:
        pass


def io_stats() -> UringStatistics:
    stats = trio.lowlevel.current_statistics().io_statistics
    assert isinstance(stats, UringStatistics)
    return stats


def test_run_uses_io_uring_and_restores_the_switch() -> None:
    seen: list[str] = []

    async def main() -> None:
        seen.append(io_stats().backend)

    before = getattr(trio._core._run, "TheIOManager")  # noqa: B009
    run(main)
    assert seen == ["io_uring"]
    assert getattr(trio._core._run, "TheIOManager") is before  # noqa: B009
    assert not trio_uring.is_installed()


def test_install_switches_every_run_and_uninstall_restores() -> None:
    async def backend() -> str:
        return str(trio.lowlevel.current_statistics().io_statistics.backend)

    assert trio_uring.install(fallback="raise")
    try:
        assert trio_uring.is_installed()
        assert trio.run(backend) == "io_uring"
    finally:
        trio_uring.uninstall()
    assert trio.run(backend) == "epoll"


@pytest.mark.parametrize("kind", ["socketpair", "pipe", "eventfd"])
def test_readiness(kind: str) -> None:
    async def main() -> None:
        if kind == "socketpair":
            a, b = socket.socketpair()
            r, w, closers = a.fileno(), b.fileno(), [a.close, b.close]
        elif kind == "pipe":
            r, w = os.pipe()
            closers = [lambda: os.close(r), lambda: os.close(w)]
        else:
            r = w = os.eventfd(0, os.EFD_NONBLOCK)
            closers = [lambda: os.close(r)]
        try:
            os.set_blocking(r, False)
            # Writable at once.
            with trio.fail_after(5):
                await trio.lowlevel.wait_writable(w)
            # Not readable until written.
            with trio.move_on_after(0.05) as scope:
                await trio.lowlevel.wait_readable(r)
            assert scope.cancelled_caught
            async with trio.open_nursery() as nursery:
                done = trio.Event()

                async def reader() -> None:
                    await trio.lowlevel.wait_readable(r)
                    done.set()

                nursery.start_soon(reader)
                await trio.testing.wait_all_tasks_blocked()
                assert not done.is_set()
                assert io_stats().tasks_waiting_read >= 1
                os.write(w, (1).to_bytes(8, sys.byteorder))
                with trio.fail_after(5):
                    await done.wait()
        finally:
            for close in closers:
                close()

    run(main)


def test_busy_resource_and_reuse_after_cancel() -> None:
    async def main() -> None:
        a, b = socket.socketpair()
        with a, b:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(trio.lowlevel.wait_readable, a)
                await trio.testing.wait_all_tasks_blocked()
                with pytest.raises(trio.BusyResourceError):
                    await trio.lowlevel.wait_readable(a)
                # A writer on the same fd is not busy.
                await trio.lowlevel.wait_writable(a)
                nursery.cancel_scope.cancel()
            # The cancelled waits are gone at once: the fd can be waited again.
            b.send(b"x")
            with trio.fail_after(5):
                await trio.lowlevel.wait_readable(a)

    run(main)


def test_statistics_counts_waiters() -> None:
    """What Trio's test_io_manager_statistics checks, with our backend name."""

    async def main() -> None:
        pairs = [socket.socketpair() for _ in range(3)]
        # Trio's own entry-queue task waits on a socket once it has started.
        await trio.testing.wait_all_tasks_blocked()
        base = io_stats()
        try:
            async with trio.open_nursery() as nursery:
                # Three readers (one of them on the other end of a pair)...
                nursery.start_soon(trio.lowlevel.wait_readable, pairs[0][0])
                nursery.start_soon(trio.lowlevel.wait_readable, pairs[1][0])
                nursery.start_soon(trio.lowlevel.wait_readable, pairs[0][1])
                # ...and a writer, blocked by a full send buffer.
                a2 = pairs[2][1]
                fill_send_buffer(a2)
                nursery.start_soon(trio.lowlevel.wait_writable, a2)
                await trio.testing.wait_all_tasks_blocked()
                stats = io_stats()
                assert stats.tasks_waiting_read == base.tasks_waiting_read + 3
                assert stats.tasks_waiting_write == base.tasks_waiting_write + 1
                assert stats.ops_in_flight >= base.ops_in_flight + 4
                assert stats.enter_calls > 0
                assert stats.sqes_submitted >= base.sqes_submitted + 4
                nursery.cancel_scope.cancel()
            after = io_stats()
            assert after.tasks_waiting_read == base.tasks_waiting_read
            assert after.tasks_waiting_write == base.tasks_waiting_write
        finally:
            for a, b in pairs:
                a.close()
                b.close()

    run(main)


def test_notify_closing_wakes_waiters_with_closed_resource_error() -> None:
    async def main() -> None:
        a, b = socket.socketpair()
        results: list[str] = []

        async def wait(fn: Callable[[int], Awaitable[None]]) -> None:
            try:
                await fn(a.fileno())
            except trio.ClosedResourceError:
                results.append(fn.__name__)

        fill_send_buffer(a)  # so the writer blocks too
        async with trio.open_nursery() as nursery:
            nursery.start_soon(wait, trio.lowlevel.wait_readable)
            nursery.start_soon(wait, trio.lowlevel.wait_writable)
            await trio.testing.wait_all_tasks_blocked()
            trio.lowlevel.notify_closing(a)
            a.close()
        assert sorted(results) == ["wait_readable", "wait_writable"]
        # No waiter left, and notify_closing on an unknown fd is a no-op.
        trio.lowlevel.notify_closing(b.fileno())
        b.close()
        await trio.sleep(0.01)

    run(main)


def test_wait_on_closed_or_negative_fd() -> None:
    async def main() -> None:
        s = socket.socket()
        fd = s.fileno()
        s.close()
        for wait in (trio.lowlevel.wait_readable, trio.lowlevel.wait_writable):
            with pytest.raises(OSError, match=r"^\[Errno 9\] Bad file descriptor$") as info:
                await wait(fd)
            assert info.value.errno == errno.EBADF
            with pytest.raises(ValueError, match="negative"):
                await wait(-1)

    run(main)


def test_cancellation_is_instant_and_late_completion_ignored() -> None:
    async def main() -> None:
        a, b = socket.socketpair()
        with a, b:
            for _ in range(200):
                with trio.CancelScope() as scope:
                    scope.cancel()
                    await trio.lowlevel.wait_readable(a)
            # Cancel after submission, then make the fd ready: the stale CQE
            # must not wake anybody or break the next wait.
            with trio.move_on_after(0.01):
                await trio.lowlevel.wait_readable(a)
            b.send(b"x")
            await trio.sleep(0.01)
            with trio.fail_after(5):
                await trio.lowlevel.wait_readable(a)
            assert a.recv(1) == b"x"
        await trio.sleep(0.01)
        assert io_stats().ops_in_flight <= 3  # wakeup poll + Trio's own waits

    run(main)


# -- get_events / force_wakeup, driven directly --------------------------


def test_get_events_timeout_is_falsy_and_on_time() -> None:
    manager = UringIOManager(Settings())
    try:
        start = time.monotonic()
        assert not manager.get_events(0.2)
        elapsed = time.monotonic() - start
        assert 0.19 <= elapsed < 0.5
        assert not manager.get_events(0)
    finally:
        manager.close()


def test_force_wakeup_from_another_thread() -> None:
    manager = UringIOManager(Settings())
    try:
        timer = threading.Timer(0.1, manager.force_wakeup)
        start = time.monotonic()
        timer.start()
        events = manager.get_events(10)
        assert events
        assert time.monotonic() - start < 5
        manager.process_events(events)  # drains and re-arms without Trio tasks
        # Once drained, the next wait times out again.
        assert not manager.get_events(0.05)
        timer.join()
    finally:
        manager.close()


def test_force_wakeup_from_a_signal_handler() -> None:
    manager = UringIOManager(Settings())
    old = signal.signal(signal.SIGALRM, lambda *_: manager.force_wakeup())
    try:
        signal.setitimer(signal.ITIMER_REAL, 0.1)
        start = time.monotonic()
        assert manager.get_events(10)
        assert time.monotonic() - start < 5
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
        manager.close()


def test_close_with_ops_in_flight_reaps_everything() -> None:
    before = open_fds()
    manager = UringIOManager(Settings(entries=8))
    pairs = [socket.socketpair() for _ in range(100)]
    try:
        # 100 native polls that will never fire (more than the SQ holds, so
        # most are in the kernel and the rest still queued).
        ring = manager._ring
        from trio_uring._core.ops import INTERNAL, Op

        for a, _ in pairs:
            ud = ring.next_user_data()
            manager._ops[ud] = Op(ud, INTERNAL, a.fileno(), 6, None)
            ring.push_poll(a.fileno(), 1, ud)
        assert not manager.get_events(0)
        assert manager.statistics().ops_in_flight == 101  # + the wakeup poll
        manager.close()
        assert manager._ops == {}
        assert ring.closed
    finally:
        for a, b in pairs:
            a.close()
            b.close()
    gc.collect()
    assert open_fds() == before


def test_keyboard_interrupt_while_blocked() -> None:
    code = (
        "import trio, trio_uring, sys\n"
        "async def main():\n"
        "    print('ready', flush=True)\n"
        "    await trio.sleep_forever()\n"
        "try:\n"
        "    trio_uring.run(main, fallback='raise')\n"
        "except KeyboardInterrupt:\n"
        "    print('interrupted', flush=True)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "ready"
    time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=10)
    assert "interrupted" in out
    assert proc.returncode == 0


def test_ten_thousand_fds_on_a_small_ring(many_fds: None) -> None:
    async def main() -> None:
        pairs = [socket.socketpair() for _ in range(5000)]
        try:
            woken = 0

            async def waiter(fd: int, readable: bool) -> None:
                nonlocal woken
                if readable:
                    await trio.lowlevel.wait_readable(fd)
                else:
                    await trio.lowlevel.wait_readable(fd)
                woken += 1

            async with trio.open_nursery() as nursery:
                for a, b in pairs:
                    nursery.start_soon(waiter, a.fileno(), True)
                    nursery.start_soon(waiter, b.fileno(), False)
                await trio.testing.wait_all_tasks_blocked()
                assert io_stats().tasks_waiting_read >= 10000
                for a, b in pairs:
                    a.send(b"x")
                    b.send(b"y")
            assert woken == 10000
            stats = io_stats()
            assert stats.ring_entries == 64
            assert stats.sqes_per_enter > 1
        finally:
            for a, b in pairs:
                a.close()
                b.close()

    run(main, entries=64)


def test_guest_mode_on_asyncio() -> None:
    import asyncio

    async def trio_main() -> str:
        a, b = trio.socket.socketpair()
        with a, b:
            await b.send(b"ping")
            data = await a.recv(10)
            await trio.sleep(0.05)
        assert data == b"ping"
        return str(trio.lowlevel.current_statistics().io_statistics.backend)

    async def host() -> str:
        loop = asyncio.get_running_loop()
        done: asyncio.Future[str] = loop.create_future()

        def finished(outcome: object) -> None:
            done.set_result(outcome.unwrap())  # type: ignore[attr-defined]

        trio.lowlevel.start_guest_run(
            trio_main,
            run_sync_soon_threadsafe=loop.call_soon_threadsafe,
            done_callback=finished,
            host_uses_signal_set_wakeup_fd=True,
        )
        return await asyncio.wait_for(done, 10)

    assert trio_uring.install(fallback="raise")
    try:
        assert asyncio.run(host()) == "io_uring"
    finally:
        trio_uring.uninstall()


def test_interrupted_close_keeps_what_the_kernel_may_still_touch(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A KeyboardInterrupt mid-drain must leak pins, never free them."""
    from trio_uring._core import manager as _manager
    from trio_uring._core.ops import INTERNAL, Op

    manager = UringIOManager(Settings())
    a, b = socket.socketpair()
    try:
        ring = manager._ring
        ud = ring.next_user_data()
        pinned = bytearray(64)
        op = Op(ud, INTERNAL, a.fileno(), 6, None)
        op.pins = pinned
        manager._ops[ud] = op
        ring.push_poll(a.fileno(), 1, ud)
        assert not manager.get_events(0)

        def interrupted(self: object, timeout: float) -> bool:
            raise KeyboardInterrupt

        monkeypatch.setattr(type(ring), "wait", interrupted)
        with pytest.raises(KeyboardInterrupt):
            manager.close()
        assert any(t.get(ud) is op and t[ud].pins is pinned for t in _manager._UNREAPED)
        assert ring.closed
        assert manager._wakeup_fd == -1
    finally:
        a.close()
        b.close()


def test_force_wakeup_after_close_touches_no_reused_fd() -> None:
    manager = UringIOManager(Settings())
    old_fd = manager._wakeup_fd
    r, w = os.pipe()  # opened first, so neither end can take old_fd's number
    manager.close()
    os.dup2(w, old_fd)  # the eventfd's old number now names a pipe's write end
    try:
        manager.force_wakeup()
        os.set_blocking(r, False)
        with pytest.raises(BlockingIOError):
            os.read(r, 64)  # nothing was written into the unrelated pipe
    finally:
        os.close(old_fd)
        os.close(r)
        os.close(w)
