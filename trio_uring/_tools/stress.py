"""The cancellation stress suite: exactly-once data while everything gets cancelled.

One engine serves ``python -m trio_uring stress`` and ``tests/test_stress.py``.
A *round* is one Trio run. In it, for every transport (socket pairs, pipes,
regular files) a number of channels each carry a seeded pseudo-random
payload from a writer task to a reader task. Both sides move the data in
random-sized single operations, and both are cancelled at random: by short
deadlines around an operation, and by a chaos task that cancels whichever
operations happen to be in flight. What must hold, whatever was cancelled:

* **exactly-once data**: the reader assembles exactly the payload, every
  byte once and in order. A cancelled operation either happened (its
  result is delivered: "the result wins") or had no effect at all;
* **no fd leaked**: ``/proc/self/fd`` counts the same before and after;
* **no op left in flight** when the round's work is done, and nothing in
  the manager's graveyard of unreaped ops after the run;
* **flat RSS** over repeated rounds;
* **nothing hangs**: each round has a wall-time bound.

On the ``"uring"`` backend the operations are native (``trio_uring.lowlevel``);
on ``"stock"`` they are Trio's own (``trio.socket``, readiness plus a
non-blocking syscall for pipes, ``trio.open_file`` for files). The stock run
is the control: the suite is about semantics, which both must honour.
"""

from __future__ import annotations

import os
import random
import resource
import tempfile
import time
import traceback
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any

import attrs
import trio

from .stress_endpoints import Backend, Endpoint, open_channel

BACKENDS: tuple[Backend, ...] = ("stock", "uring")
TRANSPORTS: tuple[str, ...] = ("socket", "pipe", "file")

# RSS may grow this much between the second round and the last before it
# counts as a leak (the first round warms caches and the allocator).
RSS_SLACK_BYTES = 16 * 1024 * 1024


@attrs.frozen
class StressConfig:
    """How much stress: scale, mix and seed. Every round is reproducible from ``seed``."""

    seed: int = 0
    rounds: int = 3
    """Trio runs; RSS flatness compares the second with the last."""
    duration: float | None = None
    """If set, keep starting rounds until this many seconds have passed."""
    channels: int = 8
    """Writer/reader pairs per transport and round."""
    payload: int = 64 * 1024
    """Bytes each channel carries."""
    max_chunk: int = 8192
    """Largest single read or write."""
    transports: tuple[str, ...] = TRANSPORTS
    cancel_probability: float = 0.3
    """Chance that an operation runs under a random short deadline."""
    round_timeout: float = 60.0
    """A round taking longer than this counts as a hang."""

    def __attrs_post_init__(self) -> None:
        for name in ("rounds", "channels", "payload", "max_chunk"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int, not {value!r}")
        unknown = set(self.transports) - set(TRANSPORTS)
        if unknown or not self.transports:
            raise ValueError(f"transports must be a non-empty subset of {TRANSPORTS}")
        if not 0 <= self.cancel_probability <= 1:
            raise ValueError("cancel_probability must be between 0 and 1")
        if self.duration is not None and self.duration <= 0:
            raise ValueError("duration must be positive")


@attrs.define
class StressReport:
    """What a stress run did and every invariant it found broken."""

    backend: Backend
    rounds: int = 0
    ops: int = 0
    """Reads, writes, receives and sends started."""
    cancels: int = 0
    """Operations whose cancel scope was cancelled while they ran."""
    results_won: int = 0
    """Cancelled operations that completed anyway and delivered their result.

    On io_uring, the manager's count of cancel requests that lost to a real
    result (``cancels_lost_to_result``). On stock Trio, operations that
    returned a result inside a scope cancelled meanwhile (file reads and
    writes in worker threads, which cannot be cancelled).
    """
    timeouts_fired: int = 0
    """Kernel-linked timeouts that fired (io_uring only)."""
    bytes_verified: int = 0
    fds_leaked: int = 0
    ops_left_in_flight: int = 0
    peak_rss: int = 0
    """Peak resident set size of the process, in bytes."""
    rss_after_round: list[int] = attrs.Factory(list)
    violations: list[str] = attrs.Factory(list)

    @property
    def ok(self) -> bool:
        """True if no invariant was broken."""
        return not self.violations


def _fd_count() -> int:
    return len(os.listdir("/proc/self/fd"))


def _rss() -> int:
    with open("/proc/self/statm", encoding="ascii") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _peak_rss() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


# ---------------------------------------------------------------------------
# One round
# ---------------------------------------------------------------------------


@attrs.define
class _Counters:
    ops: int = 0
    cancels: int = 0
    results_won: int = 0
    bytes_verified: int = 0


class _Chaos:
    """Cancels operations in flight at random moments."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.in_flight: list[trio.CancelScope] = []

    @contextmanager
    def scope(self, deadline_probability: float) -> Iterator[trio.CancelScope]:
        scope = trio.CancelScope()
        if self.rng.random() < deadline_probability:
            # From "already expired" to a couple of milliseconds.
            scope.deadline = trio.current_time() + self.rng.choice((0.0, 1e-4, 5e-4, 2e-3))
        self.in_flight.append(scope)
        try:
            with scope:
                yield scope
        finally:
            self.in_flight.remove(scope)

    async def run(self, done: trio.Event) -> None:
        while not done.is_set():
            await trio.sleep(self.rng.choice((0.0, 1e-4, 1e-3)))
            if self.in_flight:
                self.rng.choice(self.in_flight).cancel()


async def _one_op(
    chaos: _Chaos,
    counters: _Counters,
    probability: float,
    op: Callable[[Any], Awaitable[Any]],
    arg: Any,
) -> Any:
    """Run ``op(arg)`` under a random cancellation; return its result or None if cancelled."""
    counters.ops += 1
    result = None
    with chaos.scope(probability) as scope:
        result = await op(arg)
        # Nothing between the op's return and here may checkpoint: a result
        # that won over a cancel must be recorded before Cancelled lands.
    if scope.cancel_called:
        counters.cancels += 1
        if result is not None:
            counters.results_won += 1
    return result


async def _writer(
    end: Endpoint,
    payload: bytes,
    rng: random.Random,
    chaos: _Chaos,
    counters: _Counters,
    config: StressConfig,
    close_when_done: bool,
) -> None:
    view = memoryview(payload)
    sent = 0
    while sent < len(payload):
        size = rng.randint(1, config.max_chunk)
        chunk = view[sent : sent + size]
        n = await _one_op(chaos, counters, config.cancel_probability, end.send, chunk)
        if n is not None:
            sent += n
    if close_when_done:
        await end.aclose()


async def _reader(
    end: Endpoint,
    expected: bytes,
    rng: random.Random,
    chaos: _Chaos,
    counters: _Counters,
    config: StressConfig,
    until_eof: bool,
    violations: list[str],
    label: str,
) -> None:
    got = bytearray()
    while True:
        if not until_eof and len(got) >= len(expected):
            break
        size = rng.randint(1, config.max_chunk)
        data = await _one_op(chaos, counters, config.cancel_probability, end.receive, size)
        if data is None:
            continue
        if not data:
            if until_eof:
                break
            # A file reader can catch up with its writer: try again later.
            await trio.sleep(0)
            continue
        got += data
    await end.aclose()
    if got != expected:
        where = next(
            (i for i, (a, b) in enumerate(zip(got, expected, strict=False)) if a != b),
            min(len(got), len(expected)),
        )
        violations.append(
            f"{label}: received {len(got)} bytes, expected {len(expected)}; "
            f"first difference at byte {where}"
        )
    else:
        counters.bytes_verified += len(got)


async def _round_main(
    backend: Backend,
    config: StressConfig,
    rng: random.Random,
    counters: _Counters,
    violations: list[str],
    workdir: str,
) -> int:
    """One round's work; returns the native ops left in flight at its end."""
    baseline = _ops_in_flight(backend)
    chaos = _Chaos(random.Random(rng.random()))
    done = trio.Event()
    files: list[tuple[str, bytes]] = []
    with trio.fail_after(config.round_timeout):
        async with trio.open_nursery() as chaos_nursery:
            chaos_nursery.start_soon(chaos.run, done)
            async with trio.open_nursery() as nursery:
                for kind in config.transports:
                    for i in range(config.channels):
                        payload = rng.randbytes(config.payload)
                        w, r, path = await open_channel(backend, kind, workdir, i)
                        label = f"{kind} channel {i}"
                        streaming = kind != "file"
                        nursery.start_soon(
                            _writer, w, payload, random.Random(rng.random()), chaos,
                            counters, config, True,
                        )  # fmt: skip
                        nursery.start_soon(
                            _reader, r, payload, random.Random(rng.random()), chaos,
                            counters, config, streaming, violations, label,
                        )  # fmt: skip
                        if path is not None:
                            files.append((path, payload))
            done.set()
    for path, payload in files:
        with open(path, "rb") as f:
            if f.read() != payload:
                violations.append(f"file {path}: contents differ from what was written")
    # Cancels and orphaned requests retire within a tick or two.
    for _ in range(100):
        left = _ops_in_flight(backend) - baseline
        if left <= 0:
            return 0
        await trio.sleep(0.001)
    return left


def _ops_in_flight(backend: Backend) -> int:
    """Native ops (and the cancels and timers serving them) the kernel still holds.

    Readiness polls are not counted: Trio's own system tasks keep one
    waiting for the whole run.
    """
    if backend == "stock":
        return 0
    from .._core import ops as _ops
    from .._core.manager import running_manager

    io = running_manager()
    if io is None:
        return 0
    return sum(1 for op in io._ops.values() if op.kind in (_ops.NATIVE, _ops.INTERNAL))


def _uring_counts() -> tuple[int, int]:
    """(linked timeouts fired, cancels that lost to a result) in this run."""
    from .._core.manager import running_manager

    io = running_manager()
    if io is None:
        return 0, 0
    stats = io.statistics()
    return stats.linked_timeouts_fired, stats.cancels_lost_to_result


def run_stress(
    backend: Backend,
    config: StressConfig | None = None,
    progress: Callable[[int, int | None, StressReport], None] | None = None,
) -> StressReport:
    """Run the stress suite on ``backend``; return what happened.

    ``progress(round_done, rounds_total_or_None, report)`` is called after
    every round. Raises ``UringUnavailableError`` if ``backend`` is
    ``"uring"`` and io_uring cannot be had: a stress run never falls back.
    """
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, not {backend!r}")
    config = config if config is not None else StressConfig()
    from .._core import manager as _manager
    from .._integrations.run import run as uring_run

    if backend == "uring":
        # Fail before any work if a run would not get io_uring.
        from .._core.availability import open_ring
        from .._core.settings import Settings

        open_ring(Settings(fallback="raise")).close()
    report = StressReport(backend=backend)
    rng = random.Random(config.seed)
    started = time.monotonic()
    unreaped_before = len(_manager._UNREAPED)
    with tempfile.TemporaryDirectory(prefix="trio-uring-stress-") as workdir:
        fds_before = _fd_count()
        while True:
            counters = _Counters()
            violations: list[str] = []
            round_rng = random.Random(rng.random())

            async def one_round(
                round_rng: random.Random = round_rng,
                counters: _Counters = counters,
                violations: list[str] = violations,
            ) -> tuple[int, int, int]:
                left = await _round_main(backend, config, round_rng, counters, violations, workdir)
                fired, lost = _uring_counts() if backend == "uring" else (0, 0)
                return left, fired, lost

            label = f"round {report.rounds + 1}"
            try:
                if backend == "uring":
                    left, fired, lost = uring_run(one_round, fallback="raise")
                    counters.results_won = lost
                else:
                    left, fired, _ = trio.run(one_round)
            except trio.TooSlowError:
                violations.append(f"{label}: hung (over {config.round_timeout} s)")
                left, fired = 0, 0
            except Exception as exc:
                # A broken invariant, not a crash of the tool: report it with
                # the rest (the traceback's last line says where).
                text = "".join(traceback.format_exception(exc)).rstrip()
                violations.append(f"{label}: {type(exc).__name__}: {exc}\n{text}")
                left, fired = 0, 0
            report.rounds += 1
            report.ops += counters.ops
            report.cancels += counters.cancels
            report.results_won += counters.results_won
            report.bytes_verified += counters.bytes_verified
            report.timeouts_fired += fired
            report.ops_left_in_flight += left
            if left:
                violations.append(f"{label}: {left} ops still in flight after the work was done")
            leaked = _fd_count() - fds_before
            if leaked > 0:
                report.fds_leaked += leaked
                violations.append(f"{label}: {leaked} fds leaked")
                fds_before += leaked
            report.rss_after_round.append(_rss())
            report.violations += violations
            if progress is not None:
                progress(report.rounds, None if config.duration else config.rounds, report)
            if config.duration is not None:
                if time.monotonic() - started >= config.duration:
                    break
            elif report.rounds >= config.rounds:
                break
    if len(_manager._UNREAPED) != unreaped_before:
        report.violations.append("a run closed with ops the kernel still held")
    rss = report.rss_after_round
    if len(rss) >= 3 and rss[-1] - rss[1] > RSS_SLACK_BYTES:
        report.violations.append(
            f"RSS grew by {(rss[-1] - rss[1]) / 2**20:.1f} MiB from round 2 to round {len(rss)}"
        )
    report.peak_rss = _peak_rss()
    return report
