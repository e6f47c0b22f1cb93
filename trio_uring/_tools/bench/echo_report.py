"""The echo benchmark's reporting: medians per backend, paired ratios to stock, the table."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from typing import Any

from .echo_processes import OTHER_LOAD_WARN_CORES


def median(values: Sequence[float | None]) -> float | None:
    """The median of the values that were measured (None: none was)."""
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def summarize(
    size: int, nconn: int, backend: str, runs: list[dict[str, Any]], repeat: int
) -> dict[str, Any]:
    """Reduce one backend's runs of a case to medians and an rps range."""
    good = [r for r in runs if r["ok"]]
    entry: dict[str, Any] = {
        "size": size,
        "connections": nconn,
        "backend": backend,
        "ok": len(good) == repeat,
        "error": None,
        "repeat": repeat,
        "runs_ok": len(good),
    }
    if not entry["ok"]:
        failed = next((r for r in runs if not r["ok"]), None)
        if failed is None:
            entry["error"] = f"only {len(runs)} of {repeat} runs were made"
        else:
            entry["error"] = (
                f"run {failed['round'] + 1}/{repeat} failed "
                f"({len(good)}/{repeat} ok): {failed['error']}"
            )
    if good:
        rps = [float(r["rps"]) for r in good]
        entry["rps"] = statistics.median(rps)
        entry["rps_min"] = min(rps)
        entry["rps_max"] = max(rps)
        entry["p50_us"] = median([r.get("p50_us") for r in good])
        entry["p99_us"] = median([r.get("p99_us") for r in good])
        entry["cpu_us_per_rt"] = median([r.get("cpu_us_per_rt") for r in good])
        entry["sqes_per_enter"] = median([r.get("sqes_per_enter") for r in good])
        entry["round_trips_total"] = sum(int(r["round_trips"]) for r in good)
    entry["errors"] = sum(int(r.get("errors") or 0) for r in runs)
    entry["runs"] = runs
    return entry


def paired_ratios(
    runs: Sequence[dict[str, Any]],
    stock_runs: Sequence[dict[str, Any]],
    key: str,
    *,
    invert: bool = False,
) -> list[float]:
    """Per round, this backend's ``key`` over stock's in the same round (both ok).

    ``invert`` gives stock's over this backend's instead. On a noisy machine
    the two runs of one round (back to back, ABBA order) share most of the
    drift, so their ratio varies far less than either figure does.
    """
    stock_by_round = {r["round"]: r for r in stock_runs if r["ok"] and r.get(key)}
    ratios = []
    for run in runs:
        stock = stock_by_round.get(run["round"])
        if stock is None or not run["ok"] or not run.get(key):
            continue
        ours, theirs = float(run[key]), float(stock[key])
        ratios.append(theirs / ours if invert else ours / theirs)
    return ratios


def add_ratios(case: list[dict[str, Any]]) -> None:
    """Set the paired rps and CPU-per-round-trip ratios against stock on the non-stock entries.

    ``rps_ratio_vs_stock`` and ``cpu_ratio_vs_stock`` are medians of the
    per-round ratios (see ``paired_ratios``); ``rps_ratio_of_medians`` is
    kept beside them for comparison.
    """
    stock = next((r for r in case if r["backend"] == "stock"), None)
    if stock is None:
        return
    for entry in case:
        if entry is stock:
            continue
        rps = paired_ratios(entry["runs"], stock["runs"], "rps")
        entry["rps_ratios_per_round"] = rps
        entry["rps_ratio_vs_stock"] = median(rps)
        # Inverted relative to rps (stock over this backend) so that > 1
        # means "better than stock" in both ratio columns.
        cpu = paired_ratios(entry["runs"], stock["runs"], "cpu_us_per_rt", invert=True)
        entry["cpu_ratio_vs_stock"] = median(cpu)
        if stock.get("rps") and entry.get("rps"):
            entry["rps_ratio_of_medians"] = entry["rps"] / stock["rps"]


def fmt(value: Any, spec: str) -> str:
    """``value`` formatted with ``spec``, or ``-`` where it was not measured."""
    return "-" if value is None else format(value, spec)


def fmt_ratio(value: float | None) -> str:
    """A ratio as ``1.23x``, or ``-`` where it was not measured."""
    return "-" if value is None else f"{value:.2f}x"


def format_table(results: Sequence[dict[str, Any]]) -> str:
    """Render results as a fixed-width text table of per-backend medians."""
    width = max([7, *(len(r["backend"]) for r in results)])
    header = (
        f"{'case':<16} {'backend':<{width}} {'rps':>9} {'rps min-max':>17} {'p50 us':>7} "
        f"{'p99 us':>7} {'cpu us/rt':>9} {'sys/rt':>6} {'sqe/enter':>9} {'rps x':>6} "
        f"{'cpu x':>6}"
    )
    lines = [header, "-" * len(header)]
    for r in results:
        case = f"{r['size']}B x {r['connections']}c"
        if r.get("skipped"):
            lines.append(f"{case:<16} {r['backend']:<{width}} {r['error']}")
            continue
        if not r["ok"]:
            # First line says what failed; the last usually names the
            # exception (e.g. from a server traceback). Full text goes to stderr.
            msg = [ln.strip() for ln in str(r["error"] or "failed").splitlines() if ln.strip()]
            summary = msg[0] if len(msg) == 1 else f"{msg[0]} {msg[-1]}"
            lines.append(f"{case:<16} {r['backend']:<{width}} FAILED: {summary}")
            continue
        span = f"{fmt(r.get('rps_min'), ',.0f')}-{fmt(r.get('rps_max'), ',.0f')}"
        lines.append(
            f"{case:<16} {r['backend']:<{width}} {fmt(r.get('rps'), ',.0f'):>9} {span:>17} "
            f"{fmt(r.get('p50_us'), '.0f'):>7} {fmt(r.get('p99_us'), '.0f'):>7} "
            f"{fmt(r.get('cpu_us_per_rt'), '.1f'):>9} {fmt(r.get('syscalls_per_rt'), '.2f'):>6} "
            f"{fmt(r.get('sqes_per_enter'), '.2f'):>9} "
            f"{fmt_ratio(r.get('rps_ratio_vs_stock')):>6} "
            f"{fmt_ratio(r.get('cpu_ratio_vs_stock')):>6}"
        )
    repeats = sorted({r["repeat"] for r in results})
    lines.append("")
    lines.append(f"medians of {'/'.join(map(str, repeats))} interleaved runs per backend")
    lines.append(
        "rps x = median over rounds of rps / stock's rps in the same round; cpu x likewise "
        "of stock cpu us/rt / cpu us/rt (> 1: cheaper)"
    )
    lines.append(
        "sys/rt: server system calls per round trip (--strace); sqe/enter: SQEs per "
        "io_uring_enter over the server's run (trio_uring backends)"
    )
    disturbed = [
        (r, run)
        for r in results
        for run in r["runs"]
        if run["ok"] and (run.get("other_cpu_cores") or 0) > OTHER_LOAD_WARN_CORES
    ]
    if disturbed:
        lines.append("")
        lines.append("runs disturbed by other load on the machine (still included above):")
        for r, run in disturbed:
            lines.append(
                f"  {r['size']}B x {r['connections']}c {r['backend']} round {run['round'] + 1}: "
                f"{run['rps']:,.0f} rps with {run['other_cpu_cores']:.2f} cores used by others"
            )
    tops = [r for r in results if r["ok"] and r.get("syscalls_top_per_rt")]
    if tops:
        lines.append("")
        lines.append("top server syscalls per round trip (one strace pass, start-up subtracted):")
        for r in tops:
            detail = ", ".join(f"{k} {v:.2f}" for k, v in r["syscalls_top_per_rt"].items())
            lines.append(f"  {r['size']}B x {r['connections']}c {r['backend']}: {detail}")
    return "\n".join(lines)


def format_summary(results: Sequence[dict[str, Any]]) -> str:
    """A compact table of every backend's figures, for ``trio-uring bench``.

    One line per (case, backend): round trips/s, the paired ratio to stock
    Trio, server CPU per round trip, and where they were measured system
    calls per round trip (``--strace``) and SQEs per ``io_uring_enter``.
    A backend that is not installed gets a line saying so.
    """
    width = max([7, *(len(r["backend"]) for r in results)])
    header = (
        f"{'echo case':<16} {'backend':<{width}} {'round trips/s':>13} {'vs stock':>8} "
        f"{'cpu us/rt':>9} {'syscalls/rt':>11} {'SQEs/enter':>10}"
    )
    lines = [header, "-" * len(header)]
    for r in results:
        case = f"{r['size']} B x {r['connections']}c"
        if not r["ok"]:
            why = r["error"] if r.get("skipped") else "FAILED"
            lines.append(f"{case:<16} {r['backend']:<{width}} {why}")
            continue
        ratio = "1.00x" if r["backend"] == "stock" else fmt_ratio(r.get("rps_ratio_vs_stock"))
        lines.append(
            f"{case:<16} {r['backend']:<{width}} {fmt(r.get('rps'), ',.0f'):>13} {ratio:>8} "
            f"{fmt(r.get('cpu_us_per_rt'), '.1f'):>9} {fmt(r.get('syscalls_per_rt'), '.2f'):>11} "
            f"{fmt(r.get('sqes_per_enter'), '.2f'):>10}"
        )
    repeats = sorted({r["repeat"] for r in results})
    lines.append(
        f"medians of {'/'.join(map(str, repeats))} interleaved rounds; vs stock: the median "
        "of each round's ratio to stock Trio's run in the same round"
    )
    lines.append(
        "syscalls/rt: with --strace; SQEs/enter: SQEs per io_uring_enter over the server's "
        "run (backends on trio_uring)"
    )
    return "\n".join(lines)
