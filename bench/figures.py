"""What the benchmarks report: percentiles of samples in milliseconds, and where they ran."""

from __future__ import annotations

import datetime
import os
import platform
import subprocess
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


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


def run_context() -> dict[str, Any]:
    """Where and when a benchmark ran: the machine, the date (UTC), the git commit it measured
    (and whether the working tree differed from it), and the load average at the start."""
    import torch

    def git(*args: str) -> str:
        try:
            return subprocess.run(
                ["git", *args], cwd=ROOT, capture_output=True, text=True, check=True
            ).stdout.strip()
        except (OSError, subprocess.CalledProcessError):
            return "unknown"

    return {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "git_commit": git("rev-parse", "HEAD"),
        "git_dirty": git("status", "--porcelain", "--untracked-files=no") != "",
        "host": platform.node(),
        "cpus": os.cpu_count(),
        "load_avg_at_start": [round(x, 2) for x in os.getloadavg()],
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "platform": platform.platform(),
    }


def machine_info() -> dict[str, Any]:
    """The machine and its load, for the benchmarks of the web tier (no torch import: that is
    run_context, for the runner's)."""
    return {
        "cpus": os.cpu_count(),
        "load_avg_at_start": [round(x, 2) for x in os.getloadavg()],
        "python": platform.python_version(),
        "platform": platform.platform(),
    }
