"""Benchmark of the sandboxed runner: latency, capacity, memory and overhead, in one run.

What it measures, against real bubblewrap sandboxes forked by the zygote: a `WarmPool` of 2 in
this process, and the runner service (``python -m runner serve``, pool of 2) in a subprocess
over real HTTP:

1. Latency of ``print("hi")``, warm and idle (both pools waited on until every sandbox is
   warm): request → ``started``, → first ``output``, → ``done``; and a cold
   ``python -c "import torch; print('hi')"`` to its first byte, interleaved.
2. Sustained: 30 runs of ``print("hi")`` submitted 0.3 s apart (not waiting for each other),
   pool of 2, request → first ``output``, direct and over HTTP. Target p50 <= 15 ms, p95 <= 50.
3. Burst: 40 Checks of lesson 1's solution submitted at once to the pool of 2, each by its own
   owner. Target: the last ``done`` within 15 s, every check passed in all 40.
4. Saturated: 300 ``print(i)`` runs at once (queue of 400), completed runs per second from
   the first submission to the last ``done``. Target >= 10 runs/s.
5. Memory: the proportional set size (PSS) of the whole runner service process tree (the
   service, bubblewrap, the zygote, every warm sandbox), warm and idle, for pools of 2, 4 and
   6, measured from a process that has not loaded torch (PSS would split torch's pages with
   it). Target: pool of 4 <= 500 MiB, and (pool 6 - pool 2) / 4 <= 30 MiB a slot.
6. Overhead: the seed exercise's solution.py in the runner (``done.t - started.t``) against
   the same code in a plain Python that has already imported everything and run it once (so
   every lazy import and first call is paid: the best a warm process can do), with the same
   thread count; interleaved pairs, median of the per-pair ratios. Target <= 1.10x. Also
   against a plain Python warmed only as the zygote warms (the harness's warm-up, no first
   run of this code), for comparison.

``--gpu``: the GPU check (``bench/gpu_check.sh`` calls it). Only the service, started as a
GPU host runs it; it fails unless ``/healthz`` and every ``started`` name a CUDA device, runs a
CUDA matmul inside the sandbox (which must see exactly one GPU), then measures 1 (HTTP and
cold) and 6 through the service, and how long CUDA takes to start in a fresh sandbox.

Progress goes to stderr; the Markdown table to stdout; everything, raw samples, the date, the
git commit, the machine and its load average included, to JSON (default
bench/results/runner.json, committed as the evidence behind the README's figures).

Run it with ``make bench`` or ``.venv/bin/python bench/runner_bench.py [--samples N]
[--overhead-samples N] [--json PATH]`` on a quiet machine. It takes about 5 minutes.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import json
import logging
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, Protocol

import httpx
from figures import percentile, run_context, summarize  # bench/ is on sys.path as a script

from runner.config import RunnerSettings
from runner.pool import WarmPool
from runner.protocol import Done, Event, Output, RunRequest, Started, parse_event

ROOT = Path(__file__).resolve().parents[1]
SOLUTION = ROOT / "content/intro-to-deep-learning/01-deep-learning-introduction"
DEFAULT_JSON = ROOT / "bench/results/runner.json"
HARNESS_DIR = ROOT / "runner" / "harness"

POOL_SIZE = 2
QUEUE_SIZE = 400
SUSTAINED_RUNS, SUSTAINED_GAP_S = 30, 0.3
BURST_CHECKS = 40
SATURATED_RUNS = 300
MEMORY_POOLS = (2, 4, 6)

SUSTAINED_TARGET_MS = (15.0, 50.0)  # p50, p95
BURST_TARGET_S = 15.0
SATURATED_TARGET = 10.0  # runs/s
MEMORY_TARGET_MIB, SLOT_TARGET_MIB = 500.0, 30.0
OVERHEAD_TARGET = 1.10

# The plain-Python side of the overhead comparison: the harness's own warm-up (what the zygote
# runs before it forks), then, for "warm", one untimed run of the same code; then the timed run.
PLAIN_EXEC = """
import json, os, sys, time
sys.path.insert(0, os.environ["DOJO_BENCH_ROOT"])
from runner.harness import warmup
warmup.warm_up()
source = sys.stdin.read()
code = compile(source, "main.py", "exec")
if sys.argv[1] == "warm":
    with warmup.quiet():
        exec(code, {"__name__": "__main__"})
start = time.perf_counter()
with warmup.quiet():
    exec(code, {"__name__": "__main__"})
elapsed = time.perf_counter() - start
print("\\n@@elapsed " + json.dumps(elapsed))
"""

# Inside the sandbox on a GPU host: exactly one GPU, real work on it, and how long CUDA took to
# start in this fresh sandbox (its last word, in ms).
CUDA_PROBE = """
import time
import torch
start = time.perf_counter()
assert torch.cuda.is_available(), "torch sees no CUDA device in the sandbox"
torch.zeros(1, device="cuda")
torch.cuda.synchronize()
init_ms = (time.perf_counter() - start) * 1000
x = torch.randn(4096, 4096, device="cuda")
print(torch.cuda.device_count(), torch.cuda.get_device_name(0).replace(" ", "_"),
      float((x @ x).sum().abs() > 0), round(init_ms, 1))
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
    t0 = time.perf_counter()
    async for event in target.run(RunRequest(code='print("hi")')):
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
    result: dict[str, Any] = {"cold_to_first_output": summarize(cold)}
    cold_p50 = result["cold_to_first_output"]["p50_ms"]
    for name, times in warm.items():
        section: dict[str, Any] = {
            "started_device": sorted(devices[name]),
            "to_started": summarize(times["started"]),
            "to_first_output": summarize(times["output"]),
            "to_done": summarize(times["done"]),
        }
        section["cold_over_warm_p50"] = round(cold_p50 / section["to_first_output"]["p50_ms"], 1)
        result[f"warm_{name}"] = section
    return result


# --- 2. sustained ----------------------------------------------------------------------------


async def first_output_of(target: Target, request: RunRequest) -> tuple[float, Done]:
    """Seconds from the request to its first output, and its Done."""
    t0 = time.perf_counter()
    first = None
    done = None
    async for event in target.run(request):
        if isinstance(event, Output) and first is None:
            first = time.perf_counter() - t0
        elif isinstance(event, Done):
            done = event
    if done is None or first is None:
        raise RuntimeError(f"a run sent no output or no done: {done}")
    return first, done


async def measure_sustained(target: Target) -> dict[str, Any]:
    """SUSTAINED_RUNS runs of print("hi"), one every SUSTAINED_GAP_S, none waiting for another."""
    await target.wait_warm()
    runs = []
    for i in range(SUSTAINED_RUNS):
        request = RunRequest(code='print("hi")', owner=f"learner-{i % 5}")
        runs.append(asyncio.create_task(first_output_of(target, request)))
        await asyncio.sleep(SUSTAINED_GAP_S)
    results = await asyncio.gather(*runs)
    statuses = collections.Counter(done.status for _, done in results)
    times = summarize([first for first, _ in results])
    p50, p95 = SUSTAINED_TARGET_MS
    log(f"sustained ({target.name}): p50 {times['p50_ms']:.1f} ms, p95 {times['p95_ms']:.1f} ms")
    return {
        "runs": SUSTAINED_RUNS,
        "gap_s": SUSTAINED_GAP_S,
        "statuses": dict(statuses),
        "to_first_output": times,
        "target": f"p50 <= {p50:g} ms, p95 <= {p95:g} ms",
        "met": times["p50_ms"] <= p50 and times["p95_ms"] <= p95 and set(statuses) == {"completed"},
    }


# --- 3. burst --------------------------------------------------------------------------------


async def measure_burst(target: Target) -> dict[str, Any]:
    """BURST_CHECKS Checks of lesson 1's solution at once, each by its own owner."""
    await target.wait_warm()
    code = (SOLUTION / "solution.py").read_text()
    checks = (SOLUTION / "checks.py").read_text()
    t0 = time.perf_counter()

    async def one(i: int) -> tuple[float, Done]:
        request = RunRequest(code=code, mode="check", checks=checks, owner=f"learner-{i}")
        done = None
        async for event in target.run(request):
            if isinstance(event, Done):
                done = event
        assert done is not None
        return time.perf_counter() - t0, done

    results = await asyncio.gather(*(one(i) for i in range(BURST_CHECKS)))
    last = max(t for t, _ in results)
    passed = [
        done.status == "completed"
        and done.tests is not None
        and done.tests.failed == done.tests.errors == 0
        and done.tests.passed > 0
        for _, done in results
    ]
    log(f"burst: {sum(passed)}/{BURST_CHECKS} passed every check; last done at {last:.1f} s")
    return {
        "checks": BURST_CHECKS,
        "all_passed": sum(passed),
        "checks_per_run": results[0][1].tests.passed if results[0][1].tests else None,
        "last_done_s": round(last, 3),
        "done_at_s": summarize([t for t, _ in results]),
        "target": f"last done <= {BURST_TARGET_S:g} s, every check passed in all {BURST_CHECKS}",
        "met": last <= BURST_TARGET_S and all(passed),
    }


# --- 4. saturated ----------------------------------------------------------------------------


async def measure_saturated(target: Target) -> dict[str, Any]:
    """SATURATED_RUNS print(i) runs at once: how many complete per second."""
    await target.wait_warm()
    t0 = time.perf_counter()

    async def one(i: int) -> str:
        stdout, status = "", "no done"
        async for event in target.run(RunRequest(code=f"print({i})", owner=f"l{i % 20}")):
            if isinstance(event, Output):
                stdout += event.text
            elif isinstance(event, Done):
                status = event.status
        return status if stdout == f"{i}\n" or status != "completed" else "wrong output"

    statuses = collections.Counter(await asyncio.gather(*(one(i) for i in range(SATURATED_RUNS))))
    wall = time.perf_counter() - t0
    rate = statuses["completed"] / wall
    log(f"saturated: {statuses['completed']}/{SATURATED_RUNS} in {wall:.1f} s ({rate:.1f}/s)")
    return {
        "runs": SATURATED_RUNS,
        "statuses": dict(statuses),
        "wall_s": round(wall, 3),
        "runs_per_s": round(rate, 2),
        "target": f">= {SATURATED_TARGET:g} runs/s, none lost",
        "met": rate >= SATURATED_TARGET and statuses["completed"] == SATURATED_RUNS,
    }


# --- 5. memory -------------------------------------------------------------------------------


def process_tree(root: int) -> list[int]:
    """`root` and every process below it."""
    children: dict[int, list[int]] = collections.defaultdict(list)
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError):
                stat = (entry / "stat").read_text()
                ppid = int(stat.rsplit(")", 1)[1].split()[1])
                children[ppid].append(int(entry.name))
    tree, todo = [], [root]
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo.extend(children.get(pid, []))
    return tree


def pss_mib(pids: list[int]) -> float:
    total_kb = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    total_kb += int(line.split()[1])
    return total_kb / 1024


async def measure_memory(python: str, log_dir: Path) -> dict[str, Any]:
    """PSS of a whole runner service (the process, bubblewrap, the zygote, the warm sandboxes),
    warm and idle, for each pool size in MEMORY_POOLS."""
    sizes: dict[str, Any] = {}
    for size in MEMORY_POOLS:
        service = ServiceTarget(python, size, log_dir / f"memory-{size}.log")
        try:
            await service.wait_warm()
            await asyncio.sleep(2)  # settle: refills done, nothing running
            tree = process_tree(service.process.pid)
            sizes[str(size)] = {"pss_mib": round(pss_mib(tree), 1), "processes": len(tree)}
            log(f"memory: pool of {size}: {sizes[str(size)]['pss_mib']:.0f} MiB PSS")
        finally:
            await service.close()
    low, high = MEMORY_POOLS[0], MEMORY_POOLS[-1]
    per_slot = (sizes[str(high)]["pss_mib"] - sizes[str(low)]["pss_mib"]) / (high - low)
    pool4 = sizes["4"]["pss_mib"]
    return {
        "pools": sizes,
        "per_extra_slot_mib": round(per_slot, 1),
        "target": f"pool of 4 <= {MEMORY_TARGET_MIB:g} MiB, each extra slot <= "
        f"{SLOT_TARGET_MIB:g} MiB",
        "met": pool4 <= MEMORY_TARGET_MIB and per_slot <= SLOT_TARGET_MIB,
    }


def memory_in_a_clean_process(log_dir: Path) -> dict[str, Any]:
    """measure_memory from a process that has not loaded torch: PSS splits each shared page
    between every process that maps it, so a measuring process with torch loaded would take
    half of torch's pages off the runner's count."""
    done = subprocess.run(
        [sys.executable, __file__, "--memory-only", "--json", str(log_dir / "memory.json")],
        capture_output=True,
        text=True,
        check=True,
    )
    return dict(json.loads(done.stdout))


# --- 6. overhead -----------------------------------------------------------------------------


async def runner_exec_time(target: Target, others: list[Target], source: str) -> tuple[float, str]:
    """Seconds from started to done of one run of `source` in a warm sandbox, and the device."""
    await wait_all_warm(others)
    started_t = None
    device = "?"
    async for event in target.run(RunRequest(code=source)):
        if isinstance(event, Started):
            started_t, device = event.t, event.device
        elif isinstance(event, Done):
            if event.status != "completed" or started_t is None:
                raise RuntimeError(
                    f"the solution ended {event.status} in the runner: {event.error}"
                )
            return event.t - started_t, device
    raise RuntimeError("the runner sent no done event")


def plain_exec_time(python: str, source: str, threads: int, *, warm: bool) -> float:
    """Seconds to exec `source` in a fresh Python after the harness's warm-up (and, `warm`, one
    untimed run of the same code)."""
    env = {
        **os.environ,
        "DOJO_BENCH_ROOT": str(ROOT),
        "PYTHONPATH": str(HARNESS_DIR),  # `import dojo` works as in the sandbox
        "OMP_NUM_THREADS": str(threads),
        "MKL_NUM_THREADS": str(threads),
        "OPENBLAS_NUM_THREADS": "1",
        "MPLBACKEND": "Agg",
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    done = subprocess.run(
        [python, "-c", PLAIN_EXEC, "warm" if warm else "zygote"],
        input=source,
        capture_output=True,
        text=True,
        env=env,
        cwd=tempfile.gettempdir(),
    )
    marker = done.stdout.rpartition("@@elapsed ")[2]
    if done.returncode != 0 or not marker:
        raise RuntimeError(f"the plain run failed (exit {done.returncode}): {done.stderr[-2000:]}")
    return float(marker)


async def measure_overhead(
    target: Target, others: list[Target], python: str, samples: int
) -> dict[str, Any]:
    source = (SOLUTION / "solution.py").read_text()
    runner_times: list[float] = []
    plain: dict[str, list[float]] = {"warm": [], "zygote": []}
    ratios: dict[str, list[float]] = {"warm": [], "zygote": []}
    devices = set()
    for i in range(samples):
        elapsed, device = await runner_exec_time(target, others, source)
        devices.add(device)
        runner_times.append(elapsed)
        for kind in ("warm", "zygote"):
            await wait_all_warm(others)  # no refill may compete with the plain process
            plain[kind].append(plain_exec_time(python, source, target.threads, warm=kind == "warm"))
            ratios[kind].append(elapsed / plain[kind][-1])
        log(
            f"overhead {i + 1}/{samples}: runner {elapsed * 1000:.0f} ms, plain warm "
            f"{plain['warm'][-1] * 1000:.0f} ms ({ratios['warm'][-1]:.2f}x), zygote-warm "
            f"{plain['zygote'][-1] * 1000:.0f} ms"
        )
    result: dict[str, Any] = {
        "exercise": str((SOLUTION / "solution.py").relative_to(ROOT)),
        "via": target.name,
        "started_device": sorted(devices),
        "threads": target.threads,
        "samples": samples,
        "runner_median_ms": round(statistics.median(runner_times) * 1000, 1),
        "runner_samples_ms": [round(t * 1000, 1) for t in runner_times],
    }
    for kind in ("warm", "zygote"):
        result[f"plain_{kind}_median_ms"] = round(statistics.median(plain[kind]) * 1000, 1)
        result[f"plain_{kind}_samples_ms"] = [round(t * 1000, 1) for t in plain[kind]]
        result[f"ratio_{kind}_median"] = round(statistics.median(ratios[kind]), 3)
        result[f"ratio_{kind}_p90"] = round(percentile(ratios[kind], 90), 3)
    result["target"] = f"median runner / plain warm <= {OVERHEAD_TARGET}x"
    result["met"] = result["ratio_warm_median"] <= OVERHEAD_TARGET
    return result


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
    fields = stdout.split()
    result = {
        "healthz_device": health,
        "started_device": device,
        "probe_status": status,
        "probe_stdout": stdout.strip(),
        "probe_stderr": stderr[-2000:],
        "visible_gpus": fields[0] if fields else None,
        # CUDA's start in a fresh sandbox forked from the zygote (which never touches CUDA)
        "cuda_init_ms": float(fields[-1]) if fields else None,
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
    rows: list[tuple[str, ...]] = []
    if "cuda" in results:
        cuda = results["cuda"]
        rows.append(("gpu", "started device", cuda["started_device"], "cuda", verdict(cuda["met"])))
        rows.append(("gpu", "CUDA start in a fresh sandbox", f"{cuda['cuda_init_ms']} ms"))
    lat = results["latency"]
    for name, way in WAYS.items():
        if f"warm_{name}" in lat:
            warm = lat[f"warm_{name}"]
            rows.append(
                (
                    "latency",
                    f"warm, idle, {way}: → first `output`, p50 / p95",
                    p50_p95(warm["to_first_output"]),
                )
            )
    rows.append(
        (
            "latency",
            "cold `import torch; print` → first byte, p50 / p95",
            p50_p95(lat["cold_to_first_output"], 0),
        )
    )
    for name, way in WAYS.items():
        if f"sustained_{name}" in results:
            sus = results[f"sustained_{name}"]
            rows.append(
                (
                    "sustained",
                    f"{sus['runs']} runs {sus['gap_s']:g} s apart, pool of {POOL_SIZE}, "
                    f"{way}: → first `output`, p50 / p95",
                    p50_p95(sus["to_first_output"]),
                    "p50 ≤ 15 ms, p95 ≤ 50 ms",
                    verdict(sus["met"]),
                )
            )
    if "burst" in results:
        burst = results["burst"]
        rows.append(
            (
                "burst",
                f"{burst['checks']} Checks of lesson 1 at once, pool of {POOL_SIZE}: last "
                f"`done`; all checks passed",
                f"{burst['last_done_s']:.1f} s; {burst['all_passed']} of {burst['checks']}",
                f"≤ {BURST_TARGET_S:g} s; all",
                verdict(burst["met"]),
            )
        )
    if "saturated" in results:
        sat = results["saturated"]
        rows.append(
            (
                "saturated",
                f"{sat['runs']} `print` runs at once, pool of {POOL_SIZE}",
                f"{sat['runs_per_s']:.1f} runs/s",
                f"≥ {SATURATED_TARGET:g} runs/s",
                verdict(sat["met"]),
            )
        )
    if "memory" in results:
        mem = results["memory"]
        shown = ", ".join(f"{k}: {v['pss_mib']:.0f}" for k, v in mem["pools"].items())
        rows.append(
            (
                "memory",
                "PSS of the runner's process tree, warm pool of 2, 4, 6 (MiB)",
                shown,
                f"4: ≤ {MEMORY_TARGET_MIB:g}",
                verdict(mem["pools"]["4"]["pss_mib"] <= MEMORY_TARGET_MIB),
            )
        )
        rows.append(
            (
                "memory",
                "each extra warm slot (pool 6 − pool 2) / 4",
                f"{mem['per_extra_slot_mib']:.1f} MiB",
                f"≤ {SLOT_TARGET_MIB:g} MiB",
                verdict(mem["per_extra_slot_mib"] <= SLOT_TARGET_MIB),
            )
        )
    ovh = results["overhead"]
    rows += [
        (
            "overhead",
            f"seed exercise, runner, started → done, median ({ovh['samples']} runs, "
            f"via {ovh['via']})",
            f"{ovh['runner_median_ms']:.0f} ms",
        ),
        (
            "overhead",
            "same code, plain Python after one run of it, median",
            f"{ovh['plain_warm_median_ms']:.0f} ms",
        ),
        (
            "overhead",
            "runner / plain warm, per pair: median (p90)",
            f"{ovh['ratio_warm_median']:.2f}x ({ovh['ratio_warm_p90']:.2f}x)",
            f"≤ {OVERHEAD_TARGET}x",
            verdict(ovh["met"]),
        ),
        (
            "overhead",
            "runner / plain after the zygote's warm-up only: median",
            f"{ovh['ratio_zygote_median']:.2f}x",
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
    log_dir = args.json.parent
    log(f"starting the runner service (pool of {POOL_SIZE}) ...")
    service = ServiceTarget(python, POOL_SIZE, log_dir / "runner-service.log")
    targets: list[Target] = [service]
    pool = None
    try:
        if not args.gpu:
            settings = RunnerSettings(pool_size=POOL_SIZE, queue_size=QUEUE_SIZE)
            pool = WarmPool(settings, size=POOL_SIZE)
            started = time.perf_counter()
            await pool.start()
            results["pool_start_s"] = round(time.perf_counter() - started, 3)
            log(f"a pool of {POOL_SIZE} here, warm in {results['pool_start_s']:.1f} s")
            targets.insert(0, PoolTarget(pool))
        await service.wait_warm()
        results["healthz_device"] = (await service.health())["device"]
        if args.gpu:
            results["cuda"] = await check_cuda(service)
            if not results["cuda"]["met"]:
                return results
        results["latency"] = await measure_latency(targets, python, args.samples)
        for target in targets:
            await wait_all_warm(targets)
            results[f"sustained_{target.name}"] = await measure_sustained(target)
        results["overhead"] = await measure_overhead(
            targets[0], targets, python, args.overhead_samples
        )
        if pool is not None:
            await service.close()
            results["burst"] = await measure_burst(PoolTarget(pool))
            results["saturated"] = await measure_saturated(PoolTarget(pool))
            await pool.close()
            pool = None
            results["memory"] = memory_in_a_clean_process(log_dir)
    finally:
        await service.close()
        if pool is not None:
            await pool.close()
    results["machine"]["load_avg_at_end"] = [round(x, 2) for x in os.getloadavg()]
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, default=30, help="latency samples (warm and cold)")
    parser.add_argument("--overhead-samples", type=int, default=10, help="runner/plain pairs")
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON, help="where to write results")
    parser.add_argument(
        "--gpu", action="store_true", help="the GPU check: the service only, on CUDA or fail"
    )
    parser.add_argument("--memory-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.memory_only:  # (see memory_in_a_clean_process)
        print(json.dumps(asyncio.run(measure_memory(RunnerSettings().python, args.json.parent))))
        return
    if min(args.samples, args.overhead_samples) < 1:
        parser.error("--samples and --overhead-samples must be at least 1")
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
