"""What both benchmarks report: percentiles of samples, in milliseconds."""

from __future__ import annotations

from typing import Any


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0-100), linear between the closest ranks (as numpy's default)."""
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def summarize(values_s: list[float]) -> dict[str, Any]:
    """p50/p95 in milliseconds, with the raw samples (empty: no figures)."""
    ms = [round(v * 1000, 3) for v in values_s]
    if not ms:
        return {"n": 0, "p50_ms": None, "p95_ms": None, "samples_ms": []}
    return {
        "n": len(ms),
        "p50_ms": round(percentile(ms, 50), 3),
        "p95_ms": round(percentile(ms, 95), 3),
        "samples_ms": ms,
    }
