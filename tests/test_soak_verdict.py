"""The soak's verdict (``benchmarks/soak_verdict.py``) on made-up curves.

The soak itself runs for ten minutes outside ``make test`` (``make soak``);
what it concludes from its samples is checked here, so that a leak, a 5xx
or a latency drift cannot pass it.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest


def _load() -> ModuleType:
    path = Path(__file__).resolve().parent.parent / "benchmarks" / "soak_verdict.py"
    spec = importlib.util.spec_from_file_location("soak_verdict", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["soak_verdict"] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


verdict = _load()


def curve(n: int = 30, **changes: Any) -> list[Any]:
    """A healthy soak of ``n`` intervals; ``changes`` maps a field to f(i) -> value."""
    samples = []
    for i in range(n):
        fields: dict[str, Any] = {
            "t": 20.0 * (i + 1), "rss_kib": 38_000 + (i % 3) * 100, "fds": 120 + (i % 5),
            "ok": 12_000, "failed": 0, "status_5xx": 0, "p50_ms": 6.0, "p99_ms": 40.0,
        }  # fmt: skip
        for name, f in changes.items():
            fields[name] = f(i)
        samples.append(verdict.Sample(**fields))
    return samples


def test_a_flat_run_passes() -> None:
    result = verdict.judge(curve())
    assert result.passed, result.lines
    assert all(line.startswith("PASS") for line in result.lines)


@pytest.mark.parametrize(
    ("field", "f", "words"),
    [
        ("rss_kib", lambda i: 38_000 + i * 1_000, "RSS flat"),  # ~1 MiB per interval
        ("fds", lambda i: 120 + i * 3, "fds flat"),
        ("status_5xx", lambda i: int(i == 17), "no 5xx"),
        ("failed", lambda i: int(i == 3), "no failed"),
        ("p99_ms", lambda i: 40.0 if i < 20 else 400.0, "p99 stable"),
        ("ok", lambda i: 0, "requests were served"),
    ],
)
def test_each_fault_fails_its_own_check(field: str, f: Any, words: str) -> None:
    result = verdict.judge(curve(**{field: f}))
    assert not result.passed
    failed = [line for line in result.lines if line.startswith("FAIL")]
    assert len(failed) == 1, result.lines
    assert words in failed[0]


def test_warm_up_growth_is_not_a_leak() -> None:
    # The first interval (imports, first connections) is left out.
    result = verdict.judge(curve(rss_kib=lambda i: 20_000 if i == 0 else 38_000))
    assert result.passed, result.lines


def test_a_run_too_short_to_judge_fails() -> None:
    result = verdict.judge(curve(n=3))
    assert not result.passed
    assert "too few intervals" in result.lines[0]
