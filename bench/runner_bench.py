"""Benchmark of the sandboxed runner: latency, throughput and overhead, in one run.

What it measures (all against a real `WarmPool` of bubblewrap sandboxes):

1. Latency of ``print("hi")``. Warm: a pool of 2; before each sample the pool is waited on
   until both sandboxes are warm again, so this is warm-start latency, not refill. Time from
   calling ``pool.run`` to the ``started`` event and to the first ``output`` event. Cold: a
   fresh ``python -c "import torch; print('hi')"``, time to the first byte of its stdout.
   Target: warm p50 to first output <= 50 ms, and cold p50 / warm p50 >= 40x.
2. Throughput: 40 ``print(i)`` jobs submitted at once to the pool of 2 (queue of 64). Every
   one must complete (lost = 40 - completed = 0); reports the wall time and the p95 queue
   wait (submission to ``started``). Each job needs a fresh sandbox, so this mostly measures
   how fast the pool refills.
3. Overhead: the seed exercise's solution.py in the runner (``done.t - started.t``) against
   the same code ``exec``-ed in a plain, already warm Python process (torch, sklearn.datasets,
   torchinfo, matplotlib and dojo imported, and one optimizer step taken, as the sandbox
   harness does before a job), with the same OMP/MKL thread count as the sandboxes. Median
   of 3 each. Target: runner / plain <= 1.15x. Also shown: started to the last output (``done``
   comes as soon as the harness reports its result; the sandbox is torn down after).

Samples are interleaved where it matters (warm, cold, warm, cold ...) so a machine whose load
changes during the run skews both sides alike. Progress goes to stderr; the Markdown table to
stdout; everything, raw samples included, to JSON (default bench/results/runner.json).

Run it with ``make bench`` or ``.venv/bin/python bench/runner_bench.py [--samples N]
[--json PATH]``. It needs bubblewrap, like the runner itself, and takes several minutes.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from figures import summarize  # bench/figures.py: this folder is on sys.path when run as a script

from runner.config import RunnerSettings
from runner.pool import WarmPool
from runner.protocol import Done, Output, RunRequest, Started
from runner.sandbox import HARNESS_DIR

ROOT = Path(__file__).resolve().parents[1]
SOLUTION = ROOT / "content/intro-to-deep-learning/01-deep-learning-introduction/solution.py"
DEFAULT_JSON = ROOT / "bench/results/runner.json"

POOL_SIZE = 2
QUEUE_SIZE = 64
THROUGHPUT_JOBS = 40
OVERHEAD_REPEATS = 3

WARM_P50_TARGET_MS = 50.0
SPEEDUP_TARGET = 40.0
OVERHEAD_TARGET = 1.15

# The plain-Python side of the overhead comparison: warm up as the sandbox harness does
# (runner/harness/main.py), then time compiling and running the solution read from stdin.
PLAIN_WARM_EXEC = """
import json, sys, time
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot, numpy, sklearn.datasets, torch, torch.nn, torchinfo
import dojo
layer = torch.nn.Linear(4, 2)
for opt in (torch.optim.SGD(layer.parameters(), lr=0.1), torch.optim.Adam(layer.parameters())):
    torch.nn.functional.cross_entropy(layer(torch.randn(3, 4)), torch.tensor([0, 1, 0])).backward()
    opt.step()
    opt.zero_grad()
source = sys.stdin.read()
start = time.perf_counter()
exec(compile(source, "main.py", "exec"), {"__name__": "__main__"})
elapsed = time.perf_counter() - start
sys.stdout.flush()
print("\\n@@elapsed " + json.dumps(elapsed))
"""


def log(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


# --- 1. latency -------------------------------------------------------------------------------


async def warm_sample(pool: WarmPool) -> tuple[float, float, float]:
    """One warm ``print("hi")``: seconds from the request to started, first output, done."""
    await pool.wait_warm()
    started = first_output = done = None
    request = RunRequest(code='print("hi")')
    t0 = time.perf_counter()
    async for event in pool.run(request):
        now = time.perf_counter() - t0
        if isinstance(event, Started):
            started = now
        elif isinstance(event, Output) and first_output is None:
            first_output = now
        elif isinstance(event, Done):
            if event.status != "completed":
                raise RuntimeError(f"warm sample ended {event.status}: {event.error}")
            done = now  # what the learner sees; the sandbox's teardown comes after
    if started is None or first_output is None or done is None:
        raise RuntimeError("warm sample: no started, output or done event")
    return started, first_output, done


def cold_sample(python: str) -> float:
    """Seconds from spawning a fresh Python that imports torch to the first byte of its stdout."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    t0 = time.perf_counter()
    with subprocess.Popen(
        [python, "-c", "import torch; print('hi')"], stdout=subprocess.PIPE, env=env
    ) as process:
        assert process.stdout is not None
        first = process.stdout.read(1)
        elapsed = time.perf_counter() - t0
        process.stdout.read()
    if first != b"h" or process.returncode != 0:
        raise RuntimeError(f"cold sample failed (first byte {first!r}, exit {process.returncode})")
    return elapsed


async def measure_latency(pool: WarmPool, samples: int) -> dict[str, Any]:
    to_started, to_output, to_done, cold = [], [], [], []
    for i in range(samples):
        started, output, done = await warm_sample(pool)
        to_started.append(started)
        to_output.append(output)
        to_done.append(done)
        await pool.wait_warm()  # the refill must not compete with the cold process for CPU
        cold.append(cold_sample(pool.settings.python))  # blocking is fine: the pool is idle
        log(
            f"latency {i + 1}/{samples}: warm {output * 1000:.1f} ms, cold {cold[-1] * 1000:.0f} ms"
        )
    result: dict[str, Any] = {
        "warm_to_started": summarize(to_started),
        "warm_to_first_output": summarize(to_output),
        "warm_to_done": summarize(to_done),
        "cold_to_first_output": summarize(cold),
    }
    warm_p50 = result["warm_to_first_output"]["p50_ms"]
    speedup = result["cold_to_first_output"]["p50_ms"] / warm_p50
    result["cold_over_warm_p50"] = round(speedup, 1)
    result["target"] = f"warm p50 <= {WARM_P50_TARGET_MS:g} ms and cold/warm >= {SPEEDUP_TARGET:g}x"
    result["met"] = warm_p50 <= WARM_P50_TARGET_MS and speedup >= SPEEDUP_TARGET
    return result


# --- 2. throughput ----------------------------------------------------------------------------


async def throughput_job(pool: WarmPool, i: int, submitted: float) -> tuple[float | None, str]:
    """One ``print(i)``: (queue wait in seconds or None, Done status)."""
    queue_wait, status, stdout = None, "no done event", ""
    async for event in pool.run(RunRequest(code=f"print({i})")):
        if isinstance(event, Started):
            queue_wait = time.perf_counter() - submitted
        elif isinstance(event, Output) and event.stream == "stdout":
            stdout += event.text
        elif isinstance(event, Done):
            status = event.status
    if status == "completed" and stdout != f"{i}\n":
        status = f"completed with wrong output {stdout!r}"
    return queue_wait, status


async def measure_throughput(pool: WarmPool) -> dict[str, Any]:
    await pool.wait_warm()
    submitted = time.perf_counter()
    jobs = [throughput_job(pool, i, submitted) for i in range(THROUGHPUT_JOBS)]
    results = await asyncio.gather(*jobs, return_exceptions=True)
    wall = time.perf_counter() - submitted
    waits, failures = [], []
    for result in results:
        if isinstance(result, BaseException):
            failures.append(f"{type(result).__name__}: {result}")
            continue
        queue_wait, status = result
        if queue_wait is not None:
            waits.append(queue_wait)
        if status != "completed":
            failures.append(status)
    completed = THROUGHPUT_JOBS - len(failures)
    log(f"throughput: {completed}/{THROUGHPUT_JOBS} completed in {wall:.1f} s")
    return {
        "jobs": THROUGHPUT_JOBS,
        "completed": completed,
        "lost": THROUGHPUT_JOBS - completed,
        "failures": failures,
        "wall_s": round(wall, 3),
        "jobs_per_s": round(completed / wall, 3),
        "queue_wait": summarize(waits) if waits else None,
        "target": "lost = 0",
        "met": completed == THROUGHPUT_JOBS,
    }


# --- 3. overhead ------------------------------------------------------------------------------


async def runner_exec_time(pool: WarmPool, source: str) -> tuple[float, float]:
    """Seconds from started to done, and to the last output (so without the sandbox's
    teardown), for one run of `source` in a warm sandbox."""
    await pool.wait_warm()
    started_t = last_output_t = None
    async for event in pool.run(RunRequest(code=source)):
        if isinstance(event, Started):
            started_t = event.t
        elif isinstance(event, Output):
            last_output_t = event.t
        elif isinstance(event, Done):
            if event.status != "completed" or started_t is None or last_output_t is None:
                raise RuntimeError(
                    f"the solution ended {event.status} in the runner: {event.error}"
                )
            return event.t - started_t, last_output_t - started_t
    raise RuntimeError("the runner sent no done event")


def plain_exec_time(python: str, source: str, threads: int) -> float:
    """Seconds to exec `source` in a fresh Python that has already imported and warmed up."""
    env = {
        **os.environ,
        "PYTHONPATH": str(HARNESS_DIR),  # so `import dojo` works as in the sandbox
        "OMP_NUM_THREADS": str(threads),
        "MKL_NUM_THREADS": str(threads),
        "MPLBACKEND": "Agg",
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    done = subprocess.run(
        [python, "-c", PLAIN_WARM_EXEC], input=source, capture_output=True, text=True, env=env
    )
    marker = done.stdout.rpartition("@@elapsed ")[2]
    if done.returncode != 0 or not marker:
        raise RuntimeError(f"the plain run failed (exit {done.returncode}): {done.stderr[-2000:]}")
    return float(marker)


async def measure_overhead(pool: WarmPool) -> dict[str, Any]:
    source = SOLUTION.read_text()
    runner_times, to_last_output, plain_times = [], [], []
    for i in range(OVERHEAD_REPEATS):
        to_done, to_output = await runner_exec_time(pool, source)
        runner_times.append(to_done)
        to_last_output.append(to_output)
        await pool.wait_warm()  # the refill must not compete with the plain process
        plain_times.append(plain_exec_time(pool.settings.python, source, pool.threads))
        log(
            f"overhead {i + 1}/{OVERHEAD_REPEATS}: runner {runner_times[-1] * 1000:.0f} ms, "
            f"plain {plain_times[-1] * 1000:.0f} ms"
        )
    runner_ms = statistics.median(runner_times) * 1000
    plain_ms = statistics.median(plain_times) * 1000
    ratio = runner_ms / plain_ms
    return {
        "exercise": str(SOLUTION.relative_to(ROOT)),
        "threads": pool.threads,
        "runner_median_ms": round(runner_ms, 1),
        "plain_median_ms": round(plain_ms, 1),
        "runner_to_last_output_median_ms": round(statistics.median(to_last_output) * 1000, 1),
        "runner_samples_ms": [round(t * 1000, 1) for t in runner_times],
        "runner_to_last_output_samples_ms": [round(t * 1000, 1) for t in to_last_output],
        "plain_samples_ms": [round(t * 1000, 1) for t in plain_times],
        "ratio": round(ratio, 3),
        "target": f"runner / plain <= {OVERHEAD_TARGET}x",
        "met": ratio <= OVERHEAD_TARGET,
    }


# --- report -----------------------------------------------------------------------------------


def p50_p95(summary: dict[str, Any], digits: int = 1, scale: float = 1, unit: str = "ms") -> str:
    p50, p95 = summary["p50_ms"] / scale, summary["p95_ms"] / scale
    return f"{p50:.{digits}f} / {p95:.{digits}f} {unit}"


def verdict(met: bool) -> str:
    return "yes" if met else "**no**"


def markdown_table(results: dict[str, Any]) -> str:
    lat, thr, ovh = results["latency"], results["throughput"], results["overhead"]
    warm_p50 = lat["warm_to_first_output"]["p50_ms"]
    speedup = lat["cold_over_warm_p50"]
    waits = thr["queue_wait"]
    repeats = f"median of {OVERHEAD_REPEATS}"
    rows = [
        ("latency", "warm request → started, p50 / p95", p50_p95(lat["warm_to_started"], 2)),
        (
            "latency",
            "warm request → first output, p50 / p95",
            p50_p95(lat["warm_to_first_output"]),
            f"p50 ≤ {WARM_P50_TARGET_MS:g} ms",
            verdict(warm_p50 <= WARM_P50_TARGET_MS),
        ),
        ("latency", "warm request → done, p50 / p95", p50_p95(lat["warm_to_done"])),
        (
            "latency",
            "cold `import torch; print` → first byte, p50 / p95",
            p50_p95(lat["cold_to_first_output"], 0),
        ),
        (
            "latency",
            "cold p50 / warm p50 (first output)",
            f"{speedup:g}x",
            f"≥ {SPEEDUP_TARGET:g}x",
            verdict(speedup >= SPEEDUP_TARGET),
        ),
        (
            "throughput",
            f"{thr['jobs']} jobs at once, pool of {POOL_SIZE}: completed / lost",
            f"{thr['completed']} / {thr['lost']}",
            "lost = 0",
            verdict(thr["met"]),
        ),
        ("throughput", "wall time (jobs/s)", f"{thr['wall_s']:.1f} s ({thr['jobs_per_s']:.2f}/s)"),
        (
            "throughput",
            "queue wait (jobs that started) p50 / p95",
            p50_p95(waits, scale=1000, unit="s") if waits else "n/a",
        ),
        (
            "overhead",
            f"solution.py in the runner, started → done ({repeats})",
            f"{ovh['runner_median_ms']:.0f} ms",
        ),
        (
            "overhead",
            "runner started → last output (sandbox exit excluded)",
            f"{ovh['runner_to_last_output_median_ms']:.0f} ms",
        ),
        (
            "overhead",
            f"same code, plain warm Python, {ovh['threads']} thread(s) ({repeats})",
            f"{ovh['plain_median_ms']:.0f} ms",
        ),
        (
            "overhead",
            "runner / plain",
            f"{ovh['ratio']:.2f}x",
            f"≤ {OVERHEAD_TARGET}x",
            verdict(ovh["met"]),
        ),
    ]
    lines = ["| section | metric | measured | target | met |", "|---|---|---|---|---|"]
    lines += ["| " + " | ".join((*row, "", "")[:5]) + " |" for row in rows]
    return "\n".join(lines)


def machine_info() -> dict[str, Any]:
    import torch

    return {
        "cpus": os.cpu_count(),
        "load_avg_at_start": [round(x, 2) for x in os.getloadavg()],
        "python": platform.python_version(),
        "torch": torch.__version__,
        "platform": platform.platform(),
    }


async def run_all(samples: int) -> dict[str, Any]:
    results: dict[str, Any] = {"machine": machine_info(), "samples": samples}
    settings = RunnerSettings(pool_size=POOL_SIZE, queue_size=QUEUE_SIZE)
    pool = WarmPool(settings, size=POOL_SIZE)
    log(f"starting a pool of {POOL_SIZE} ({pool.threads} thread(s) per sandbox) ...")
    started = time.perf_counter()
    await pool.start()
    results["pool_start_s"] = round(time.perf_counter() - started, 3)
    try:
        results["latency"] = await measure_latency(pool, samples)
        results["overhead"] = await measure_overhead(pool)
        results["throughput"] = await measure_throughput(pool)
    finally:
        await pool.close()
    results["machine"]["load_avg_at_end"] = [round(x, 2) for x in os.getloadavg()]
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, default=30, help="latency samples (warm and cold)")
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON, help="where to write results")
    args = parser.parse_args()
    if args.samples < 1:
        parser.error("--samples must be at least 1")
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")

    results = asyncio.run(run_all(args.samples))
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results, indent=2) + "\n")
    machine = results["machine"]
    print(
        f"Runner benchmark: {machine['cpus']} CPUs, torch {machine['torch']}, "
        f"load {machine['load_avg_at_start'][0]} → {machine['load_avg_at_end'][0]}, "
        f"{args.samples} latency samples\n"
    )
    print(markdown_table(results))
    print(f"\nJSON: {args.json}")


if __name__ == "__main__":
    main()
