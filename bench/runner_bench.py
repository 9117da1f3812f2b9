"""Benchmark of the sandboxed runner: latency, throughput and overhead, in one run.

What it measures, against real bubblewrap sandboxes: a `WarmPool` of 2 in this process, and
the runner service (``python -m runner serve``, pool of 2) in a subprocess over real HTTP:

1. Latency of ``print("hi")``, warm. Before each sample both pools are waited on until all
   their sandboxes are warm again, so this is warm-start latency, not refill. Direct: from
   calling ``pool.run`` to the ``started`` event and to the first ``output`` event. HTTP: from
   sending ``POST /v1/runs`` (on a kept-alive connection) to the ``started`` line and to the
   first ``output`` line of the NDJSON stream. Cold: a fresh
   ``python -c "import torch; print('hi')"``, time to the first byte of its stdout. Samples are
   interleaved (direct, HTTP, cold, direct, HTTP, cold ...). Target: warm p50 to first output
   <= 50 ms, and cold p50 / warm p50 >= 40x (for both warm paths).
2. Throughput: 40 ``print(i)`` jobs (``--throughput-jobs``) submitted at once to the pool of 2
   (queue of 64). Every one must complete (lost = 40 - completed = 0); reports the wall time
   and the p95 queue wait (submission to ``started``). Each job needs a fresh sandbox, so this
   mostly measures how fast the pool refills.
3. Overhead: the seed exercise's solution.py in the runner (``done.t - started.t``) against
   the same code ``exec``-ed in a plain, already warm Python process (torch, sklearn.datasets,
   torchinfo, matplotlib and dojo imported, and one optimizer step taken, as the sandbox
   harness does before a job), with the same OMP/MKL thread count as the sandboxes. Pairs are
   interleaved (runner, plain, runner, plain ...; ``--overhead-samples``, default 10); the
   figure is the median of the per-pair ratios runner / plain, with their p90. Target: median
   <= 1.15x.

``--gpu``: the GPU check (``bench/gpu_check.sh`` calls it). Only the service, started as a
GPU host runs it; it fails unless ``/healthz`` and every ``started`` name a CUDA device, runs a
CUDA matmul inside the sandbox (which must see exactly one GPU), then measures 1 (HTTP and
cold) and 3 through the service. No throughput section.

Progress goes to stderr; the Markdown table to stdout; everything, raw samples, the date, the
git commit, the machine and its load average included, to JSON (default
bench/results/runner.json, committed as the evidence behind the README's figures).

Run it with ``make bench`` or ``.venv/bin/python bench/runner_bench.py [--samples N]
[--overhead-samples N] [--json PATH]``. It needs bubblewrap, like the runner itself, and
takes several minutes.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, Protocol

import httpx
from figures import percentile, run_context, summarize  # bench/ is on sys.path as a script

from runner.config import RunnerSettings
from runner.pool import WarmPool
from runner.protocol import Done, Event, Output, RunRequest, Started, parse_event
from runner.sandbox import HARNESS_DIR

ROOT = Path(__file__).resolve().parents[1]
SOLUTION = ROOT / "content/intro-to-deep-learning/01-deep-learning-introduction/solution.py"
DEFAULT_JSON = ROOT / "bench/results/runner.json"

POOL_SIZE = 2
QUEUE_SIZE = 64
THROUGHPUT_JOBS = 40

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

# Inside the sandbox on a GPU host: exactly one GPU, and real work on it.
CUDA_PROBE = """
import torch
assert torch.cuda.is_available(), "torch sees no CUDA device in the sandbox"
x = torch.randn(4096, 4096, device="cuda")
torch.cuda.synchronize()
print(torch.cuda.device_count(), torch.cuda.get_device_name(0), float((x @ x).sum().abs() > 0))
"""


def log(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


# --- the two ways in: the pool in this process, and the service over HTTP ---------------------


class Target(Protocol):
    name: str
    threads: int

    def run(self, request: RunRequest) -> AsyncIterator[Event]: ...

    async def wait_warm(self) -> None: ...


class PoolTarget:
    """A `WarmPool` in this process, called directly."""

    name = "pool"

    def __init__(self, pool: WarmPool) -> None:
        self.pool = pool
        self.threads = pool.threads

    def run(self, request: RunRequest) -> AsyncIterator[Event]:
        return self.pool.run(request)

    async def wait_warm(self) -> None:
        await self.pool.wait_warm()


class ServiceTarget:
    """``python -m runner serve`` in a subprocess, called over HTTP like the web app does."""

    name = "http"

    def __init__(self, python: str, size: int, log_file: Path) -> None:
        self.size, self.log_file = size, log_file
        self.threads = max(1, (os.cpu_count() or 1) // size)
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        env = {
            **os.environ,
            "RUNNER_POOL_SIZE": str(size),
            "RUNNER_QUEUE_SIZE": str(QUEUE_SIZE),
            "RUNNER_LOG_LEVEL": "warning",
        }
        port = self.url.rpartition(":")[2]
        self._log = open(log_file, "wb")  # noqa: SIM115 -- open as long as the service runs
        self.process = subprocess.Popen(
            [python, "-m", "runner", "serve", "--port", port],
            cwd=ROOT,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        self.client = httpx.AsyncClient(base_url=self.url, timeout=600)

    async def health(self) -> dict[str, Any]:
        return dict((await self.client.get("/healthz")).json())

    async def wait_warm(self, timeout: float = 600) -> None:
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"the runner service exited; see {self.log_file}")
            with contextlib.suppress(httpx.HTTPError):
                health = await self.health()
                if health["pool"]["warm"] == self.size and health["pool"]["busy"] == 0:
                    return
            if time.monotonic() > deadline:
                raise RuntimeError(f"the runner service did not get warm; see {self.log_file}")
            await asyncio.sleep(0.05)

    async def run(self, request: RunRequest) -> AsyncIterator[Event]:
        body = request.model_dump(mode="json", exclude_none=True)
        async with self.client.stream("POST", "/v1/runs", json=body) as response:
            if response.status_code != 200:
                raise RuntimeError(f"POST /v1/runs: {response.status_code}")
            async for line in response.aiter_lines():
                if line:
                    yield parse_event(line)

    async def close(self) -> None:
        await self.client.aclose()
        self.process.terminate()
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
        self._log.close()


async def wait_all_warm(targets: list[Target]) -> None:
    for target in targets:
        await target.wait_warm()


# --- 1. latency -------------------------------------------------------------------------------


async def warm_sample(target: Target, others: list[Target]) -> tuple[float, float, float, str]:
    """One warm ``print("hi")``: seconds from the request to started, first output and done,
    and `started.device`. Waits first until every target is warm and idle."""
    await wait_all_warm(others)
    started = first_output = done = None
    device = "?"
    request = RunRequest(code='print("hi")')
    t0 = time.perf_counter()
    async for event in target.run(request):
        now = time.perf_counter() - t0
        if isinstance(event, Started):
            started, device = now, event.device
        elif isinstance(event, Output) and first_output is None:
            first_output = now
        elif isinstance(event, Done):
            if event.status != "completed":
                raise RuntimeError(f"warm sample ended {event.status}: {event.error}")
            done = now  # what the learner sees; the sandbox's teardown comes after
    if started is None or first_output is None or done is None:
        raise RuntimeError("warm sample: no started, output or done event")
    return started, first_output, done, device


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


async def measure_latency(targets: list[Target], python: str, samples: int) -> dict[str, Any]:
    warm: dict[str, dict[str, list[float]]] = {
        t.name: {"started": [], "output": [], "done": []} for t in targets
    }
    devices: dict[str, set[str]] = {t.name: set() for t in targets}
    cold: list[float] = []
    for i in range(samples):
        for target in targets:
            started, output, done, device = await warm_sample(target, targets)
            warm[target.name]["started"].append(started)
            warm[target.name]["output"].append(output)
            warm[target.name]["done"].append(done)
            devices[target.name].add(device)
        await wait_all_warm(targets)  # no refill may compete with the cold process for CPU
        cold.append(cold_sample(python))
        shown = ", ".join(f"{n} {w['output'][-1] * 1000:.1f} ms" for n, w in warm.items())
        log(f"latency {i + 1}/{samples}: warm {shown}; cold {cold[-1] * 1000:.0f} ms")
    result: dict[str, Any] = {"cold_to_first_output": summarize(cold), "met": True}
    cold_p50 = result["cold_to_first_output"]["p50_ms"]
    for name, times in warm.items():
        section: dict[str, Any] = {
            "started_device": sorted(devices[name]),
            "to_started": summarize(times["started"]),
            "to_first_output": summarize(times["output"]),
            "to_done": summarize(times["done"]),
        }
        warm_p50 = section["to_first_output"]["p50_ms"]
        section["cold_over_warm_p50"] = round(cold_p50 / warm_p50, 1)
        section["met"] = (
            warm_p50 <= WARM_P50_TARGET_MS and section["cold_over_warm_p50"] >= SPEEDUP_TARGET
        )
        result["met"] = result["met"] and section["met"]
        result[f"warm_{name}"] = section
    result["target"] = f"warm p50 <= {WARM_P50_TARGET_MS:g} ms and cold/warm >= {SPEEDUP_TARGET:g}x"
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


async def measure_throughput(pool: WarmPool, count: int) -> dict[str, Any]:
    await pool.wait_warm()
    submitted = time.perf_counter()
    jobs = [throughput_job(pool, i, submitted) for i in range(count)]
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
    completed = count - len(failures)
    log(f"throughput: {completed}/{count} completed in {wall:.1f} s")
    return {
        "jobs": count,
        "pool_size": POOL_SIZE,
        "completed": completed,
        "lost": count - completed,
        "failures": failures,
        "wall_s": round(wall, 3),
        "jobs_per_s": round(completed / wall, 3),
        "queue_wait": summarize(waits) if waits else None,
        "target": "lost = 0",
        "met": completed == count,
    }


# --- 3. overhead ------------------------------------------------------------------------------


async def runner_exec_time(
    target: Target, others: list[Target], source: str
) -> tuple[float, float, str]:
    """Seconds from started to done, and to the last output (so without the sandbox's
    teardown), for one run of `source` in a warm sandbox; and `started.device`."""
    await wait_all_warm(others)
    started_t = last_output_t = None
    device = "?"
    async for event in target.run(RunRequest(code=source)):
        if isinstance(event, Started):
            started_t, device = event.t, event.device
        elif isinstance(event, Output):
            last_output_t = event.t
        elif isinstance(event, Done):
            if event.status != "completed" or started_t is None or last_output_t is None:
                raise RuntimeError(
                    f"the solution ended {event.status} in the runner: {event.error}"
                )
            return event.t - started_t, last_output_t - started_t, device
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


async def measure_overhead(
    target: Target, others: list[Target], python: str, samples: int
) -> dict[str, Any]:
    source = SOLUTION.read_text()
    runner_times, to_last_output, plain_times, ratios = [], [], [], []
    devices = set()
    for i in range(samples):
        to_done, to_output, device = await runner_exec_time(target, others, source)
        devices.add(device)
        await wait_all_warm(others)  # the refill must not compete with the plain process
        plain = plain_exec_time(python, source, target.threads)
        runner_times.append(to_done)
        to_last_output.append(to_output)
        plain_times.append(plain)
        ratios.append(to_done / plain)
        log(
            f"overhead {i + 1}/{samples}: runner {to_done * 1000:.0f} ms, "
            f"plain {plain * 1000:.0f} ms, ratio {ratios[-1]:.2f}"
        )
    ratio_median = statistics.median(ratios)
    return {
        "exercise": str(SOLUTION.relative_to(ROOT)),
        "via": target.name,
        "started_device": sorted(devices),
        "threads": target.threads,
        "samples": samples,
        "runner_median_ms": round(statistics.median(runner_times) * 1000, 1),
        "plain_median_ms": round(statistics.median(plain_times) * 1000, 1),
        "runner_to_last_output_median_ms": round(statistics.median(to_last_output) * 1000, 1),
        "runner_samples_ms": [round(t * 1000, 1) for t in runner_times],
        "runner_to_last_output_samples_ms": [round(t * 1000, 1) for t in to_last_output],
        "plain_samples_ms": [round(t * 1000, 1) for t in plain_times],
        "ratios": [round(r, 3) for r in ratios],
        "ratio_median": round(ratio_median, 3),
        "ratio_p90": round(percentile(ratios, 90), 3),
        "target": f"median of the runner / plain ratios <= {OVERHEAD_TARGET}x",
        "met": ratio_median <= OVERHEAD_TARGET,
    }


# --- GPU check --------------------------------------------------------------------------------


async def check_cuda(service: ServiceTarget) -> dict[str, Any]:
    """/healthz and a run's `started` name a CUDA device; the sandbox sees one GPU and uses it."""
    await service.wait_warm()
    health = (await service.health())["device"]
    events = [event async for event in service.run(RunRequest(code=CUDA_PROBE))]
    started, done = events[0], events[-1]
    stdout = "".join(e.text for e in events if isinstance(e, Output) and e.stream == "stdout")
    stderr = "".join(e.text for e in events if isinstance(e, Output) and e.stream == "stderr")
    device = started.device if isinstance(started, Started) else "?"
    status = done.status if isinstance(done, Done) else "no done event"
    result = {
        "healthz_device": health,
        "started_device": device,
        "probe_status": status,
        "probe_stdout": stdout.strip(),
        "probe_stderr": stderr[-2000:],
        "visible_gpus": stdout.split(" ", 1)[0] if stdout else None,
        # started → done, CUDA's start in a fresh sandbox included
        "probe_duration_ms": done.duration_ms if isinstance(done, Done) else None,
    }
    result["met"] = (
        health.startswith("cuda")
        and device.startswith("cuda")
        and status == "completed"
        and result["visible_gpus"] == "1"
    )
    log(f"cuda: healthz {health!r}, started {device!r}, probe {status}: {stdout.strip()!r}")
    return result


# --- report -----------------------------------------------------------------------------------


def p50_p95(summary: dict[str, Any], digits: int = 1, scale: float = 1, unit: str = "ms") -> str:
    p50, p95 = summary["p50_ms"] / scale, summary["p95_ms"] / scale
    return f"{p50:.{digits}f} / {p95:.{digits}f} {unit}"


def verdict(met: bool) -> str:
    return "yes" if met else "**no**"


WAYS = {"pool": "pool called directly", "http": "service over HTTP (`POST /v1/runs`)"}


def markdown_table(results: dict[str, Any]) -> str:
    lat = results["latency"]
    rows: list[tuple[str, ...]] = []
    if "cuda" in results:
        cuda = results["cuda"]
        rows.append(
            (
                "gpu",
                "healthz / started device",
                f"{cuda['started_device']}",
                "cuda",
                verdict(cuda["met"]),
            )
        )
    for name, way in WAYS.items():
        if f"warm_{name}" not in lat:
            continue
        warm = lat[f"warm_{name}"]
        warm_p50 = warm["to_first_output"]["p50_ms"]
        rows += [
            (
                "latency",
                f"warm, {way}: request → `started`, p50 / p95",
                p50_p95(warm["to_started"], 2),
            ),
            (
                "latency",
                f"warm, {way}: request → first `output`, p50 / p95",
                p50_p95(warm["to_first_output"]),
                f"p50 ≤ {WARM_P50_TARGET_MS:g} ms",
                verdict(warm_p50 <= WARM_P50_TARGET_MS),
            ),
            ("latency", f"warm, {way}: request → `done`, p50 / p95", p50_p95(warm["to_done"])),
            (
                "latency",
                f"cold p50 / warm p50 ({name})",
                f"{warm['cold_over_warm_p50']:g}x",
                f"≥ {SPEEDUP_TARGET:g}x",
                verdict(warm["cold_over_warm_p50"] >= SPEEDUP_TARGET),
            ),
        ]
    rows.append(
        (
            "latency",
            "cold `import torch; print` → first byte, p50 / p95",
            p50_p95(lat["cold_to_first_output"], 0),
        )
    )
    if "throughput" in results:
        thr = results["throughput"]
        waits = thr["queue_wait"]
        rows += [
            (
                "throughput",
                f"{thr['jobs']} jobs at once, pool of {thr['pool_size']}: completed / lost",
                f"{thr['completed']} / {thr['lost']}",
                "lost = 0",
                verdict(thr["met"]),
            ),
            (
                "throughput",
                "wall time (jobs/s)",
                f"{thr['wall_s']:.1f} s ({thr['jobs_per_s']:.2f}/s)",
            ),
            (
                "throughput",
                "queue wait (jobs that started) p50 / p95",
                p50_p95(waits, scale=1000, unit="s") if waits else "n/a",
            ),
        ]
    ovh = results["overhead"]
    pairs = f"{ovh['samples']} interleaved pairs, via {ovh['via']}"
    rows += [
        (
            "overhead",
            f"seed exercise in the runner, started → done, median ({pairs})",
            f"{ovh['runner_median_ms']:.0f} ms",
        ),
        (
            "overhead",
            f"same code, plain warm Python, {ovh['threads']} thread(s), median",
            f"{ovh['plain_median_ms']:.0f} ms",
        ),
        (
            "overhead",
            "runner / plain, per pair: median (p90)",
            f"{ovh['ratio_median']:.2f}x ({ovh['ratio_p90']:.2f}x)",
            f"median ≤ {OVERHEAD_TARGET}x",
            verdict(ovh["met"]),
        ),
    ]
    lines = ["| section | metric | measured | target | met |", "|---|---|---|---|---|"]
    lines += ["| " + " | ".join((*row, "", "")[:5]) + " |" for row in rows]
    return "\n".join(lines)


async def run_all(args: argparse.Namespace) -> dict[str, Any]:
    context = run_context()
    results: dict[str, Any] = {
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "machine": context,
        "samples": args.samples,
    }
    python = RunnerSettings().python
    service_log = args.json.with_suffix(".service.log")
    log(f"starting the runner service (pool of {POOL_SIZE}; log {service_log}) ...")
    service = ServiceTarget(python, POOL_SIZE, service_log)
    targets: list[Target] = [service]
    pool = None
    try:
        if not args.gpu:
            pool = WarmPool(
                RunnerSettings(pool_size=POOL_SIZE, queue_size=QUEUE_SIZE), size=POOL_SIZE
            )
            log(f"starting a pool of {POOL_SIZE} here ({pool.threads} thread(s) each) ...")
            started = time.perf_counter()
            await pool.start()
            results["pool_start_s"] = round(time.perf_counter() - started, 3)
            targets.insert(0, PoolTarget(pool))
        await service.wait_warm()
        results["healthz_device"] = (await service.health())["device"]
        if args.gpu:
            results["cuda"] = await check_cuda(service)
            if not results["cuda"]["met"]:
                return results
        results["latency"] = await measure_latency(targets, python, args.samples)
        results["overhead"] = await measure_overhead(
            targets[0], targets, python, args.overhead_samples
        )
        if pool is not None:
            results["throughput"] = await measure_throughput(pool, args.throughput_jobs)
    finally:
        await service.close()
        if pool is not None:
            await pool.close()
    results["machine"]["load_avg_at_end"] = [round(x, 2) for x in os.getloadavg()]
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, default=30, help="latency samples (warm and cold)")
    parser.add_argument(
        "--overhead-samples", type=int, default=10, help="interleaved runner/plain pairs"
    )
    parser.add_argument(
        "--throughput-jobs", type=int, default=THROUGHPUT_JOBS, help="jobs submitted at once"
    )
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON, help="where to write results")
    parser.add_argument(
        "--gpu", action="store_true", help="the GPU check: the service only, on CUDA or fail"
    )
    args = parser.parse_args()
    if min(args.samples, args.overhead_samples, args.throughput_jobs) < 1:
        parser.error("--samples, --overhead-samples and --throughput-jobs must be at least 1")
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    args.json.parent.mkdir(parents=True, exist_ok=True)

    results = asyncio.run(run_all(args))
    args.json.write_text(json.dumps(results, indent=2) + "\n")
    machine = results["machine"]
    if args.gpu and not results["cuda"]["met"]:
        print(f"GPU check failed: {json.dumps(results['cuda'], indent=2)}\nJSON: {args.json}")
        sys.exit(1)
    print(
        f"Runner benchmark, {machine['date']}, commit {machine['git_commit'][:12]}"
        f"{' (dirty)' if machine['git_dirty'] else ''}: {machine['cpus']} CPUs, "
        f"torch {machine['torch']}, load {machine['load_avg_at_start'][0]} → "
        f"{machine['load_avg_at_end'][0]}, {args.samples} latency samples\n"
    )
    print(markdown_table(results))
    print(f"\nJSON: {args.json}")


if __name__ == "__main__":
    main()
