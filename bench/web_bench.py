"""Benchmark of the web app: page latency, run latency through the whole stack, and a class.

It starts the real app itself (uvicorn in a subprocess on a free loopback port, a fresh SQLite
file in a temporary folder, the embedded pool of 2 sandboxes, a high run rate limit, and a copy
of the committed lessons, so that a lesson half-written in the working tree cannot break it),
waits until ``/healthz`` shows a warm sandbox, and measures over real HTTP:

1. The lesson page's time to first byte (response headers and the first body chunk), p50 and
   p95 over ``--samples`` GETs of the seed lesson by a signed-in learner, the app otherwise
   idle. Target: p50 <= 10 ms.
2. ``print("hi")``: from ``POST /api/runs`` to the first ``output`` event on the run's SSE
   stream (``GET /api/runs/{id}/events``), p50 and p95 over ``--samples`` runs. Before each
   sample it waits until ``/healthz`` shows the whole pool warm and idle, so this is warm
   latency, not refill. Target: p50 <= 12 ms.
3. A class: ``--learners`` learners (separate accounts, each its own HTTP client, one thread
   each) press Check on the seed lesson's solution at the same moment. Every run must end
   ``completed`` with every test passed (lost = learners - completed = 0); reports the wall
   time. Meanwhile another learner loads the lesson page every ~0.5 s until the class is done;
   reports that page's load time (whole body), p50 and p95. With a pool of 2 the runs queue,
   so each may take up to 15 minutes.
4. Sign-in with a wrong password, for a real account and for an address with no account,
   interleaved, ``--samples`` each: the two p50s must be within 0.8-1.25x of each other, or
   timing would tell which accounts exist.

Progress goes to stderr; the Markdown table (metric, measured, target, met) to stdout;
everything, raw samples included, to JSON (default bench/results/web.json), and the app's log
beside it (web.server.log: the traceback of any 5xx).

Run it with ``.venv/bin/python bench/web_bench.py [--samples N] [--learners N] [--json PATH]``.
It needs bubblewrap, like the runner itself, and takes several minutes.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from figures import (  # bench/figures.py: this folder is on sys.path when run as a script
    machine_info,
    summarize,
)

ROOT = Path(__file__).resolve().parents[1]
LESSON = "intro-to-deep-learning/deep-learning-introduction"
LESSON_PAGE = f"/courses/{LESSON}"
SOLUTION = ROOT / "content/intro-to-deep-learning/01-deep-learning-introduction/solution.py"
DEFAULT_JSON = ROOT / "bench/results/web.json"

POOL_SIZE = 2
STARTUP_TIMEOUT_S = 180
WARM_TIMEOUT_S = 120
CLASS_RUN_TIMEOUT_S = 15 * 60
PAGE_PROBE_EVERY_S = 0.5
HI_P50_TARGET_MS = 12.0
TTFB_P50_TARGET_MS = 10.0
POLL_S = 0.1  # /healthz, while waiting for the pool


def log(message: str) -> None:
    print(f"[web-bench] {message}", file=sys.stderr, flush=True)


# --- the app under test ----------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@functools.cache
def health_client() -> httpx.Client:
    """One keep-alive connection for polling: a new one per poll would load the CPUs."""
    return httpx.Client(timeout=10)


def pool_stats(url: str) -> dict[str, int]:
    """The embedded pool's warm / busy / queued counts, from /healthz."""
    stats: dict[str, int] = health_client().get(f"{url}/healthz").json()["runner"]["pool"]
    return stats


def wait_for_pool(
    url: str, warm: int, idle: bool = False, timeout_s: float = WARM_TIMEOUT_S
) -> None:
    """Until at least `warm` sandboxes are ready (and, if `idle`, none busy or queued)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            stats = pool_stats(url)
            if stats["warm"] >= warm and (not idle or stats["busy"] + stats["queued"] == 0):
                return
        except (httpx.HTTPError, ValueError, KeyError):
            pass
        time.sleep(POLL_S)
    raise TimeoutError(f"the pool did not reach {warm} warm sandbox(es) in {timeout_s:g} s")


@contextmanager
def running_app(keep_log: Path) -> Iterator[str]:
    """The real app under uvicorn with a fresh SQLite database; yields its base URL.

    Its log (tracebacks of any 5xx included) is copied to `keep_log` when it stops."""
    tmp = Path(tempfile.mkdtemp(prefix="torchdojo-web-bench-"))
    port = free_port()
    env = {
        **os.environ,
        "TORCHDOJO_ENVIRONMENT": "test",
        "TORCHDOJO_CONTENT_DIR": str(snapshot_content(tmp)),
        "TORCHDOJO_DATABASE_URL": f"sqlite:///{tmp / 'torchdojo.sqlite3'}",
        "TORCHDOJO_SECRET_KEY": secrets.token_urlsafe(48),
        "TORCHDOJO_RUNNER_POOL_SIZE": str(POOL_SIZE),
        "TORCHDOJO_RUNS_PER_MINUTE": "100000",
        "TORCHDOJO_SIGNUPS_PER_ADDRESS": "100000",
        "TORCHDOJO_SIGNIN_FAILURES_PER_ACCOUNT": "100000",  # 4. signs in wrongly on purpose
        "TORCHDOJO_SIGNIN_FAILURES_PER_ADDRESS": "100000",
    }
    command = [sys.executable, "-m", "uvicorn", "app.main:create_app", "--factory"]
    command += ["--host", "127.0.0.1", "--port", str(port)]
    log_path = tmp / "server.log"
    with open(log_path, "wb") as server_log:
        process = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=server_log, stderr=subprocess.STDOUT
        )
    url = f"http://127.0.0.1:{port}"
    try:
        started = time.monotonic()
        wait_until_healthy(url, process, log_path)
        log(f"app up at {url} after {time.monotonic() - started:.1f} s (log: {log_path})")
        yield url
    finally:
        process.terminate()
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        keep_log.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(log_path, keep_log)
        shutil.rmtree(tmp, ignore_errors=True)


def snapshot_content(tmp: Path) -> Path:
    """The committed lessons, copied: a lesson being written in the working tree meanwhile
    (files still missing) would make the app refuse every lesson request."""
    archive = subprocess.run(
        ["git", "archive", "--format=tar", "HEAD", "content"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(tmp)], input=archive, check=True)
    return tmp / "content"


def wait_until_healthy(url: str, process: subprocess.Popen[bytes], log_path: Path) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the app exited:\n{log_path.read_text()[-3000:]}")
        try:
            if pool_stats(url)["warm"] >= 1:
                return
        except (httpx.HTTPError, ValueError, KeyError):
            pass
        time.sleep(0.3)
    raise TimeoutError(f"the app was not healthy after {STARTUP_TIMEOUT_S} s")


# --- a learner ---------------------------------------------------------------------------------


class Learner:
    """A browser-like client: its own account, cookies, and the CSRF token on every change."""

    def __init__(self, url: str, name: str) -> None:
        self.client = httpx.Client(
            base_url=url, timeout=httpx.Timeout(30, read=CLASS_RUN_TIMEOUT_S)
        )
        email = self.email = f"{name}-{secrets.token_hex(4)}@example.com"
        csrf = self._csrf()
        response = self.client.post(
            "/signup",
            data={"email": email, "password": "correct horse battery", "csrf_token": csrf},
        )
        if response.status_code != 303:
            raise RuntimeError(f"sign-up failed: {response.status_code} {response.text[:300]}")
        self.csrf = self._csrf()

    def _csrf(self) -> str:
        token: str = self.client.get("/api/session").json()["csrf_token"]
        return token

    def close(self) -> None:
        self.client.close()

    def start_run(self, code: str, mode: str = "run") -> str:
        response = self.client.post(
            "/api/runs",
            json={"lesson": LESSON, "code": code, "mode": mode},
            headers={"X-CSRF-Token": self.csrf},
        )
        if response.status_code != 201:
            raise RuntimeError(f"POST /api/runs: {response.status_code} {response.text[:300]}")
        run_id: str = response.json()["id"]
        return run_id

    def events(self, run_id: str) -> Iterator[dict[str, Any]]:
        """The run's SSE events as they come, until the stream ends."""
        with self.client.stream("GET", f"/api/runs/{run_id}/events") as response:
            if response.status_code != 200:
                raise RuntimeError(f"GET events: {response.status_code}")
            for line in response.iter_lines():
                if line.startswith("data:"):
                    yield json.loads(line[5:].strip())

    def timed_get(self, path: str) -> tuple[float, float]:
        """(time to first byte, time to the whole body) of one GET, in seconds."""
        start = time.perf_counter()
        with self.client.stream("GET", path) as response:
            chunks = response.iter_raw()
            next(chunks, b"")
            first_byte = time.perf_counter() - start
            for _ in chunks:
                pass
            total = time.perf_counter() - start
        if response.status_code != 200:
            raise RuntimeError(f"GET {path}: {response.status_code}")
        return first_byte, total


# --- 1. the lesson page --------------------------------------------------------------------------


def measure_page(url: str, samples: int) -> dict[str, Any]:
    learner = Learner(url, "page-reader")
    try:
        learner.timed_get(LESSON_PAGE)  # templates compiled, content cached: not a sample
        timings = [learner.timed_get(LESSON_PAGE) for _ in range(samples)]
    finally:
        learner.close()
    ttfb = summarize([first for first, _ in timings])
    return {
        "ttfb": ttfb,
        "total": summarize([total for _, total in timings]),
        "target": f"p50 <= {TTFB_P50_TARGET_MS:g} ms",
        "met": ttfb["p50_ms"] <= TTFB_P50_TARGET_MS,
    }


# --- 2. print("hi") through the whole stack --------------------------------------------------


@dataclass
class HiSample:
    created_s: float  # POST → 201
    first_output_s: float  # POST → first `output` event on the SSE stream
    done_s: float  # POST → `done`
    stdout: str
    status: str


def hi_sample(learner: Learner) -> HiSample:
    start = time.perf_counter()
    run_id = learner.start_run('print("hi")')
    created = time.perf_counter() - start
    first_output: float | None = None
    stdout, status = "", "no done event"
    for event in learner.events(run_id):
        if event["type"] == "output":
            first_output = first_output or time.perf_counter() - start
            stdout += event["text"] if event.get("stream") == "stdout" else ""
        elif event["type"] == "done":
            status = event["status"]
    done = time.perf_counter() - start
    if first_output is None:
        raise RuntimeError(f"run {run_id} sent no output event (status {status})")
    return HiSample(created, first_output, done, stdout, status)


def measure_hi(url: str, samples: int) -> dict[str, Any]:
    """`samples` good samples; a failed run is recorded and another taken (up to `samples`)."""
    learner = Learner(url, "hi")
    results: list[HiSample] = []
    errors: list[str] = []
    try:
        while len(results) < samples and len(errors) < samples:
            wait_for_pool(url, warm=POOL_SIZE, idle=True)
            try:
                results.append(hi_sample(learner))
            except (httpx.HTTPError, RuntimeError, ValueError) as exc:
                errors.append(f"{type(exc).__name__}: {exc}")
                log(f"print('hi') FAILED: {errors[-1]}")
                continue
            log(f"print('hi') {len(results)}/{samples}: {results[-1].first_output_s * 1000:.1f} ms")
    finally:
        learner.close()
    first_output = summarize([s.first_output_s for s in results])
    return {
        "errors": errors,
        "post_to_created": summarize([s.created_s for s in results]),
        "post_to_first_output": first_output,
        "post_to_done": summarize([s.done_s for s in results]),
        "all_printed_hi": all(s.stdout == "hi\n" and s.status == "completed" for s in results),
        "target": f"p50 <= {HI_P50_TARGET_MS:g} ms",
        "met": bool(results) and first_output["p50_ms"] <= HI_P50_TARGET_MS,
    }


# --- 3. a class checks the seed solution at once -----------------------------------------------


@dataclass
class ClassRun:
    learner: int
    ok: bool
    seconds: float
    detail: str


def check_solution(learner: Learner, index: int, code: str, go: threading.Barrier) -> ClassRun:
    go.wait()
    start = time.perf_counter()
    try:
        events = list(learner.events(learner.start_run(code, mode="check")))
    except (httpx.HTTPError, RuntimeError, ValueError) as exc:
        return ClassRun(index, False, time.perf_counter() - start, f"{type(exc).__name__}: {exc}")
    seconds = time.perf_counter() - start
    done = events[-1] if events and events[-1]["type"] == "done" else None
    tests = [e for e in events if e["type"] == "test"]
    passed = bool(tests) and all(t["status"] == "passed" for t in tests)
    if done is None or done["status"] != "completed" or not passed:
        status = done["status"] if done else "no done event"
        failing = [t.get("name", "?") for t in tests if t["status"] != "passed"]
        return ClassRun(index, False, seconds, f"status {status}; failing tests {failing}")
    return ClassRun(index, True, seconds, f"{len(tests)} tests passed")


def probe_page(
    reader: Learner, stop: threading.Event, timings: list[float], errors: list[str]
) -> None:
    """Load the lesson page every ~0.5 s until `stop` is set."""
    while not stop.is_set():
        try:
            timings.append(reader.timed_get(LESSON_PAGE)[1])
        except (httpx.HTTPError, RuntimeError) as exc:
            errors.append(f"{type(exc).__name__}: {exc}")
        stop.wait(PAGE_PROBE_EVERY_S)


def run_class(learners: list[Learner], code: str) -> tuple[list[ClassRun], float]:
    """Every learner presses Check at once; returns their results and the wall time."""
    go = threading.Barrier(len(learners) + 1)
    results: list[ClassRun] = []
    lock = threading.Lock()

    def one(index: int, learner: Learner) -> None:
        result = check_solution(learner, index, code, go)
        with lock:
            results.append(result)
        log(f"learner {index}: {'ok' if result.ok else 'FAILED'} in {result.seconds:.1f} s")

    threads = [
        threading.Thread(target=one, args=(i, learner), daemon=True)
        for i, learner in enumerate(learners)
    ]
    for thread in threads:
        thread.start()
    go.wait()
    start = time.perf_counter()
    for thread in threads:
        thread.join(CLASS_RUN_TIMEOUT_S + 60)
    return sorted(results, key=lambda r: r.learner), time.perf_counter() - start


def measure_class(url: str, count: int) -> dict[str, Any]:
    wait_for_pool(url, warm=POOL_SIZE, idle=True)
    learners = [Learner(url, f"class-{i}") for i in range(count)]
    reader = Learner(url, "page-probe")
    code = SOLUTION.read_text()
    stop, page_times, page_errors = threading.Event(), [], []
    probe = threading.Thread(target=probe_page, args=(reader, stop, page_times, page_errors))
    probe.start()
    try:
        results, wall_s = run_class(learners, code)
    finally:
        stop.set()
        probe.join()
        for learner in [*learners, reader]:
            learner.close()
    completed = sum(r.ok for r in results)
    return {
        "learners": count,
        "completed": completed,
        "lost": count - completed,
        "wall_s": round(wall_s, 2),
        "run_seconds": [round(r.seconds, 2) for r in results],
        "failures": [f"learner {r.learner}: {r.detail}" for r in results if not r.ok],
        "page_load_during": summarize(page_times),
        "page_errors_during": page_errors,
        "target": "every run completes with every test passed; 0 lost",
        "met": completed == count,
    }


# --- 4. sign-in: the same time whether the account exists or not ------------------------------


def measure_signin(url: str, samples: int) -> dict[str, Any]:
    """Wrong passwords for a real account and for an address with no account, interleaved:
    were the unknown one faster (no password hash to check), timing would tell which exist."""
    real = Learner(url, "signin-real")
    known = real.email
    real.close()
    client = httpx.Client(base_url=url, timeout=30)
    times: dict[str, list[float]] = {"real": [], "unknown": []}
    try:
        for index in range(samples * 2):
            kind = "real" if index % 2 == 0 else "unknown"
            email = known if kind == "real" else f"nobody-{secrets.token_hex(4)}@example.com"
            client.cookies.clear()
            csrf = client.get("/api/session").json()["csrf_token"]
            start = time.perf_counter()
            response = client.post(
                "/login", data={"email": email, "password": "wrong password", "csrf_token": csrf}
            )
            times[kind].append(time.perf_counter() - start)
            if response.status_code not in (400, 401, 403):
                raise RuntimeError(f"a wrong password got {response.status_code}")
    finally:
        client.close()
    real_s, unknown_s = summarize(times["real"]), summarize(times["unknown"])
    ratio = unknown_s["p50_ms"] / real_s["p50_ms"] if real_s["p50_ms"] else 0.0
    return {
        "real_account": real_s,
        "unknown_account": unknown_s,
        "unknown_over_real_p50": round(ratio, 3),
        "target": "unknown / real within 0.8-1.25",
        "met": 0.8 <= ratio <= 1.25,
    }


# --- report ---------------------------------------------------------------------------------------


def p50_p95(summary: dict[str, Any], digits: int = 1, with_max: bool = False) -> str:
    if not summary["n"]:
        return "no samples"
    text = f"{summary['p50_ms']:.{digits}f} / {summary['p95_ms']:.{digits}f}"
    if with_max:
        text += f" / {max(summary['samples_ms']):.{digits}f}"
    return text + " ms"


def verdict(met: bool) -> str:
    return "yes" if met else "**no**"


def markdown_table(results: dict[str, Any]) -> str:
    page, hi, klass = results["page"], results["hi"], results["class"]
    during = klass["page_load_during"]
    learners = klass["learners"]
    rows = [
        (
            "lesson page, signed in: time to first byte, p50 / p95",
            p50_p95(page["ttfb"]),
            page["target"].replace("<=", "≤"),
            verdict(page["met"]),
        ),
        ("lesson page, signed in: whole body, p50 / p95", p50_p95(page["total"])),
        ('`print("hi")`: POST /api/runs → 201, p50 / p95', p50_p95(hi["post_to_created"])),
        (
            '`print("hi")`: POST → first SSE `output`, p50 / p95 (warm pool)',
            p50_p95(hi["post_to_first_output"]),
            hi["target"].replace("<=", "≤"),
            verdict(hi["met"]),
        ),
        ('`print("hi")`: POST → SSE `done`, p50 / p95', p50_p95(hi["post_to_done"])),
        (
            '`print("hi")`: failed runs (retried)',
            str(len(hi["errors"])),
            "0",
            verdict(not hi["errors"]),
        ),
        (
            f"{learners} learners check the seed solution at once: completed / lost",
            f"{klass['completed']} / {klass['lost']}",
            f"{learners} / 0",
            verdict(klass["met"]),
        ),
        (f"{learners} learners: wall time, first POST → last `done`", f"{klass['wall_s']:.1f} s"),
        (
            f"lesson page whole body while they run, p50 / p95 / max (n = {during['n']}, "
            f"errors = {len(klass['page_errors_during'])})",
            p50_p95(during, with_max=True),
        ),
    ]
    signin = results["signin"]
    rows.append(
        (
            "sign-in, wrong password: real account / unknown address, p50",
            f"{signin['real_account']['p50_ms']:.1f} / {signin['unknown_account']['p50_ms']:.1f} "
            f"ms ({signin['unknown_over_real_p50']:.2f}x)",
            signin["target"],
            verdict(signin["met"]),
        )
    )
    lines = ["| metric | measured | target | met |", "|---|---|---|---|"]
    for row in rows:
        metric, measured, target, met = (*row, "—", "—")[:4]
        lines.append(f"| {metric} | {measured} | {target} | {met} |")
    return "\n".join(lines)


def run_all(samples: int, learners: int, server_log: Path) -> dict[str, Any]:
    results: dict[str, Any] = {"machine": machine_info(), "pool_size": POOL_SIZE}
    with running_app(server_log) as url:
        log(f"lesson page: {samples} samples")
        results["page"] = measure_page(url, samples)
        log(f"print('hi'): {samples} samples, each on a warm, idle pool")
        results["hi"] = measure_hi(url, samples)
        log(f"{learners} learners check the seed solution at once")
        results["class"] = measure_class(url, learners)
        log(f"sign-in with a wrong password: {samples} real accounts, {samples} unknown")
        results["signin"] = measure_signin(url, samples)
    results["machine"]["load_avg_at_end"] = [round(x, 2) for x in os.getloadavg()]
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, default=30, help="samples for 1. and 2.")
    parser.add_argument("--learners", type=int, default=20, help="simultaneous learners in 3.")
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON, help="where to write results")
    args = parser.parse_args()
    server_log = args.json.with_suffix(".server.log")
    results = run_all(args.samples, args.learners, server_log)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results, indent=2) + "\n")
    print(markdown_table(results))
    log(f"results written to {args.json}, the app's log to {server_log}")


if __name__ == "__main__":
    main()
