"""The soak's verdict: pure functions over the per-interval samples.

Kept apart from the runner (``soak.py``) so the rules can be tested on
made-up curves (``tests/test_soak_verdict.py``) without a ten-minute run.

"Flat" is defined on the samples after warm-up (the first
``WARMUP_FRACTION`` of the intervals, at least one, are dropped: imports,
caches and hypercorn's first connections settle there). The rest is cut in
thirds; the median of the last third is compared with the median of the
first third, so one noisy sample cannot pass or fail the run alone.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field

#: Fraction of the intervals treated as warm-up and left out of the verdict.
WARMUP_FRACTION = 0.1
#: RSS may grow by this fraction of the first third's median ...
RSS_GROWTH_FRACTION = 0.10
#: ... or by this many KiB, whichever is larger (small heaps wobble by pages).
RSS_GROWTH_FLOOR_KIB = 4096
#: Open fds may grow by this many (connections come and go between samples).
FD_GROWTH = 16
#: The last third's median p99 may be at most this factor of the first's ...
P99_FACTOR = 3.0
#: ... or this many ms above it: below that, a loaded 2-core machine's
#: scheduling noise is larger than anything the server does.
P99_FLOOR_MS = 20.0


@dataclass
class Sample:
    """One interval of the soak: the server's state at its end, the clients' counts during it."""

    t: float
    rss_kib: int
    fds: int
    ok: int
    failed: int
    status_5xx: int
    p50_ms: float
    p99_ms: float
    rude: int = 0
    slow_ok: int = 0


@dataclass
class Verdict:
    """What the soak concluded: ``passed`` and one line per check."""

    passed: bool
    lines: list[str] = field(default_factory=list)


def _thirds(values: list[float]) -> tuple[float, float]:
    """Medians of the first and last third of ``values`` (at least one value each)."""
    third = max(1, len(values) // 3)
    return statistics.median(values[:third]), statistics.median(values[-third:])


def judge(samples: list[Sample]) -> Verdict:
    """Apply every check to ``samples``; a run too short to judge fails."""
    lines: list[str] = []
    ok = True
    warmup = max(1, int(len(samples) * WARMUP_FRACTION))
    steady = samples[warmup:]
    if len(steady) < 3:
        return Verdict(False, [f"FAIL too few intervals after warm-up ({len(steady)} < 3)"])

    def check(passed: bool, text: str) -> None:
        nonlocal ok
        ok = ok and passed
        lines.append(("PASS " if passed else "FAIL ") + text)

    first, last = _thirds([float(s.rss_kib) for s in steady])
    allowed = max(first * RSS_GROWTH_FRACTION, RSS_GROWTH_FLOOR_KIB)
    check(
        last - first <= allowed,
        f"RSS flat: last third median {last / 1024:.1f} MiB vs first third "
        f"{first / 1024:.1f} MiB (growth {(last - first) / 1024:+.1f} MiB, "
        f"allowed {allowed / 1024:.1f} MiB)",
    )
    first, last = _thirds([float(s.fds) for s in steady])
    check(
        last - first <= FD_GROWTH,
        f"fds flat: last third median {last:.0f} vs first third {first:.0f} (allowed +{FD_GROWTH})",
    )
    total_5xx = sum(s.status_5xx for s in samples)
    check(total_5xx == 0, f"no 5xx: {total_5xx} in the whole run")
    failed = sum(s.failed for s in samples)
    total_ok = sum(s.ok for s in samples)
    check(failed == 0, f"no failed well-behaved requests: {failed} failed, {total_ok} ok")
    check(total_ok > 0, f"requests were served: {total_ok}")
    first, last = _thirds([s.p99_ms for s in steady])
    limit = max(first * P99_FACTOR, first + P99_FLOOR_MS)
    check(
        last <= limit,
        f"p99 stable: last third median {last:.1f} ms vs first third {first:.1f} ms "
        f"(allowed {limit:.1f} ms)",
    )
    return Verdict(ok, lines)
