"""Benchmark of the web tier under a crowd: two web replicas on one PostgreSQL, as deployed.

It starts, on loopback only:

- a PostgreSQL server (Debian's binaries, a fresh data folder: tests/support/postgres.py);
- the runner service (``python -m runner serve``) with ``--slots`` sandboxes;
- two web replicas (uvicorn, ``app.main:create_app``) on that database and that runner.

Then ``--accounts`` learners (100) sign up, spread over both replicas, and each starts one run
that prints a line every 0.5 s for ``--ticks`` lines. Each learner follows their run with
``--streams`` SSE streams at once (10, so 1,000 in all), half through each replica: the one
that drives the run reads it from memory, the other from the database as it is stored. Meanwhile
a signed-in reader loads the home page from both replicas, one request every
``PROBE_EVERY_S``, and times each.

Measured and reported: the home page's load time while the crowd is on, p50 / p95 / max
(target p95 <= 300 ms); how many runs ended (``done``: every one must); how many streams got
every event of their run in order and its ``done`` (every one must); the wall time. Progress
to stderr, a Markdown table to stdout, everything to JSON (default bench/results/crowd.json).

Run it with ``.venv/bin/python bench/crowd_bench.py``. It needs bubblewrap and PostgreSQL (both
installed by ``make test``), takes about two minutes, and uses about 2 GiB of memory.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from figures import (  # bench/figures.py: this folder is on sys.path when run as a script
    machine_info,
    summarize,
)

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from tests.support.postgres import free_port, postgres_server  # noqa: E402

LESSON = "intro-to-deep-learning/deep-learning-introduction"
DEFAULT_JSON = ROOT / "bench/results/crowd.json"
STARTUP_TIMEOUT_S = 180
RUN_TIMEOUT_S = 600
PROBE_EVERY_S = 0.1
HOME_P95_TARGET_MS = 300.0
TICKS = "import time\nfor i in range({n}):\n    print('tick', i, flush=True)\n    time.sleep(0.5)\n"


def log(message: str) -> None:
    print(f"[crowd-bench] {message}", file=sys.stderr, flush=True)


# --- the site under test ------------------------------------------------------------------------


@contextmanager
def process(command: list[str], env: dict[str, str], log_path: Path) -> Iterator[None]:
    with open(log_path, "wb") as out:
        child = subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        yield
    finally:
        child.terminate()
        try:
            child.wait(30)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()


def wait_for(url: str, ready: Any, what: str) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        try:
            if ready(httpx.get(url, timeout=5).json()):
                return
        except (httpx.HTTPError, ValueError, KeyError):
            pass
        time.sleep(0.3)
    raise TimeoutError(f"{what} was not ready after {STARTUP_TIMEOUT_S} s")


@contextmanager
def site(slots: int, work: Path) -> Iterator[list[str]]:
    """PostgreSQL, one runner service, two web replicas; yields the replicas' URLs."""
    with ExitStack() as stack:
        database = stack.enter_context(postgres_server())
        runner_port = free_port()
        runner_env = {
            **os.environ,
            "RUNNER_POOL_SIZE": str(slots),
            "RUNNER_QUEUE_SIZE": "1000",
            "RUNNER_LOG_LEVEL": "warning",
        }
        stack.enter_context(
            process(
                [sys.executable, "-m", "runner", "serve", "--port", str(runner_port)],
                runner_env,
                work / "runner.log",
            )
        )
        runner_url = f"http://127.0.0.1:{runner_port}"
        wait_for(f"{runner_url}/healthz", lambda h: h["pool"]["warm"] >= 1, "the runner")
        log(f"runner service up at {runner_url}, {slots} sandboxes")
        web_env = {
            **os.environ,
            "TORCHDOJO_ENVIRONMENT": "test",
            "TORCHDOJO_DATABASE_URL": database.url,
            "TORCHDOJO_RUNNER_URL": runner_url,
            "TORCHDOJO_SECRET_KEY": secrets.token_urlsafe(48),
            "TORCHDOJO_RUNS_PER_MINUTE": "100000",
            "TORCHDOJO_SIGNUPS_PER_ADDRESS": "100000",
            "TORCHDOJO_LOG_LEVEL": "warning",
        }
        urls = []
        for index in range(2):
            port = free_port()
            command = [sys.executable, "-m", "uvicorn", "app.main:create_app", "--factory"]
            command += ["--host", "127.0.0.1", "--port", str(port), "--no-access-log"]
            stack.enter_context(process(command, web_env, work / f"web-{index}.log"))
            urls.append(f"http://127.0.0.1:{port}")
            # One at a time: the first migrates the fresh database.
            wait_for(f"{urls[-1]}/readyz", lambda h: h["status"] == "ok", f"web replica {index}")
        log(f"web replicas up at {', '.join(urls)}")
        yield urls


# --- the crowd ----------------------------------------------------------------------------------


@dataclass
class Account:
    email: str
    cookies: httpx.Cookies
    csrf: str


@dataclass
class Results:
    runs_started: int = 0
    runs_ended: int = 0
    streams_complete: int = 0
    streams_failed: list[str] = field(default_factory=list)
    stream_retries: int = 0
    post_s: list[float] = field(default_factory=list)
    opened_at: list[float] = field(default_factory=list)  # perf_counter, one per stream
    home: list[tuple[float, float]] = field(default_factory=list)  # (started at, seconds)
    home_errors: list[str] = field(default_factory=list)


async def sign_up(client: httpx.AsyncClient, name: str) -> Account:
    csrf = (await client.get("/api/session")).json()["csrf_token"]
    email = f"{name}-{secrets.token_hex(4)}@example.com"
    response = await client.post(
        "/signup", data={"email": email, "password": "correct horse battery", "csrf_token": csrf}
    )
    if response.status_code != 303:
        raise RuntimeError(f"sign-up failed: {response.status_code} {response.text[:200]}")
    csrf = (await client.get("/api/session")).json()["csrf_token"]
    return Account(email, client.cookies, csrf)


async def follow(
    client: httpx.AsyncClient, account: Account, run_id: str, results: Results, label: str
) -> None:
    """One SSE stream: every event in order (seq 0, 1, …) ending with `done`."""
    seqs: list[int] = []
    done: dict[str, Any] | None = None
    for attempt in range(2):
        try:
            async with client.stream(
                "GET", f"/api/runs/{run_id}/events", cookies=account.cookies
            ) as response:
                if response.status_code != 200:
                    raise RuntimeError(f"status {response.status_code}")
                results.opened_at.append(time.perf_counter())  # the site answered: it is open
                async for line in response.aiter_lines():
                    if line.startswith("data:"):
                        event = json.loads(line[5:])
                        seqs.append(event["seq"])
                        if event["type"] == "done":
                            done = event
            break
        except httpx.RemoteProtocolError as exc:
            # A kept-alive connection the server closed as the request went out (uvicorn
            # closes idle ones after 5 s): a browser sends the GET again, and so does this.
            if seqs or attempt:
                results.streams_failed.append(f"{label}: {type(exc).__name__}: {exc}")
                return
            results.stream_retries += 1
        except (httpx.HTTPError, RuntimeError, ValueError) as exc:
            results.streams_failed.append(f"{label}: {type(exc).__name__}: {exc}")
            return
    if done is None or seqs != list(range(len(seqs))):
        results.streams_failed.append(f"{label}: events {seqs[:5]}… done {done}")
        return
    results.streams_complete += 1


async def learner(
    clients: list[httpx.AsyncClient],
    account: Account,
    index: int,
    ticks: int,
    streams: int,
    results: Results,
) -> None:
    start = clients[index % 2]
    posted = time.perf_counter()
    response = await start.post(
        "/api/runs",
        json={"lesson": LESSON, "code": TICKS.format(n=ticks), "mode": "run"},
        headers={"X-CSRF-Token": account.csrf},
        cookies=account.cookies,
    )
    if response.status_code != 201:
        results.streams_failed.append(f"learner {index}: POST {response.status_code}")
        return
    results.runs_started += 1
    results.post_s.append(time.perf_counter() - posted)
    run_id = response.json()["id"]
    await asyncio.gather(
        *(
            follow(clients[s % 2], account, run_id, results, f"learner {index} stream {s}")
            for s in range(streams)
        )
    )
    # Whether the run itself ended, as the site stored it.
    status = (await start.get(f"/api/runs/{run_id}", cookies=account.cookies)).json()["status"]
    results.runs_ended += status != "running"


async def probe_home(
    clients: list[httpx.AsyncClient], account: Account, stop: asyncio.Event, results: Results
) -> None:
    turn = 0
    while not stop.is_set():
        client = clients[turn % 2]
        turn += 1
        started = time.perf_counter()
        try:
            response = await client.get("/", cookies=account.cookies)
            await response.aread()
            if response.status_code != 200:
                raise RuntimeError(f"status {response.status_code}")
            results.home.append((started, time.perf_counter() - started))
        except (httpx.HTTPError, RuntimeError) as exc:
            results.home_errors.append(f"{type(exc).__name__}: {exc}")
        with suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), PROBE_EVERY_S)


async def crowd(urls: list[str], accounts: int, streams: int, ticks: int) -> dict[str, Any]:
    limits = httpx.Limits(max_connections=accounts * streams + 50, max_keepalive_connections=100)
    timeout = httpx.Timeout(60, read=RUN_TIMEOUT_S)
    # The probe has its own clients: its requests never queue behind the crowd's in the client.
    probes = [httpx.AsyncClient(base_url=url, timeout=timeout) for url in urls]
    clients = [httpx.AsyncClient(base_url=url, timeout=timeout, limits=limits) for url in urls]
    try:
        log(f"{accounts} learners sign up")
        signing = asyncio.Semaphore(4)  # argon2 is meant to be slow; 4 at a time on 2 cores

        async def one(index: int) -> Account:
            async with signing:
                client = httpx.AsyncClient(base_url=urls[index % 2], timeout=timeout)
                async with client:
                    return await sign_up(client, f"crowd-{index}")

        members = await asyncio.gather(*(one(i) for i in range(accounts)))
        reader = await sign_up(probes[0], "home-reader")
        results = Results()
        stop = asyncio.Event()
        probe = asyncio.create_task(probe_home(probes, reader, stop, results))
        await asyncio.sleep(2)  # a baseline of the home page before the crowd
        log(f"{accounts} runs, {accounts * streams} SSE streams, across both replicas")
        started = time.perf_counter()
        await asyncio.gather(
            *(
                learner(clients, account, i, ticks, streams, results)
                for i, account in enumerate(members)
            )
        )
        wall_s = time.perf_counter() - started
        stop.set()
        await probe
    finally:
        for client in [*clients, *probes]:
            await client.aclose()
    # Before the crowd; while its 1,100 requests arrive (until the site has answered every
    # stream); and while every stream is open, until the last run ends.
    all_open = max(results.opened_at, default=started)
    quiet = [s for at, s in results.home if at < started]
    opening = [s for at, s in results.home if started <= at < all_open]
    during = [s for at, s in results.home if at >= all_open]
    home = summarize(during)
    return {
        "accounts": accounts,
        "streams_per_account": streams,
        "streams": accounts * streams,
        "ticks_per_run": ticks,
        "runs_started": results.runs_started,
        "runs_ended": results.runs_ended,
        "streams_complete": results.streams_complete,
        "streams_failed": results.streams_failed[:50],
        "streams_failed_count": len(results.streams_failed),
        "stream_retries": results.stream_retries,
        "post_to_201": summarize(results.post_s),
        "wall_s": round(wall_s, 2),
        "all_streams_open_after_s": round(all_open - started, 2),
        "streams_open_after_s": summarize([at - started for at in results.opened_at]),
        "home_quiet": summarize(quiet),
        "home_while_opening": summarize(opening),
        "home_during": home,
        "home_max_ms": round(max(during) * 1000, 1) if during else None,
        "home_errors": results.home_errors[:20],
        "target": f"home p95 <= {HOME_P95_TARGET_MS:g} ms; every run ends; every stream whole",
        "met": bool(during)
        and home["p95_ms"] <= HOME_P95_TARGET_MS
        and not results.home_errors
        and results.runs_ended == accounts
        and results.streams_complete == accounts * streams,
    }


def markdown_table(result: dict[str, Any]) -> str:
    home, quiet, opening = result["home_during"], result["home_quiet"], result["home_while_opening"]
    rows = [
        (
            f"home page while all {result['streams']} streams are open, p50 / p95 / max",
            f"{home['p50_ms']:.1f} / {home['p95_ms']:.1f} / {result['home_max_ms']:.1f} ms"
            f" (n = {home['n']}, errors = {len(result['home_errors'])})",
            f"p95 ≤ {HOME_P95_TARGET_MS:g} ms",
        ),
        (
            f"home page while the crowd's requests arrive (the first "
            f"{result['all_streams_open_after_s']:.1f} s: {result['accounts']} POSTs, "
            f"{result['streams']} stream opens), p50 / p95",
            f"{opening['p50_ms']:.1f} / {opening['p95_ms']:.1f} ms (n = {opening['n']})",
            "—",
        ),
        (
            "home page before the crowd, p50 / p95",
            f"{quiet['p50_ms']:.1f} / {quiet['p95_ms']:.1f} ms",
            "—",
        ),
        (
            "runs ended / started",
            f"{result['runs_ended']} / {result['runs_started']}",
            f"{result['accounts']} / {result['accounts']}",
        ),
        (
            "SSE streams with every event in order and the done",
            f"{result['streams_complete']} / {result['streams']}"
            f" ({result['stream_retries']} opens sent again)",
            f"{result['streams']} / {result['streams']}",
        ),
        ("wall time, first POST → last done", f"{result['wall_s']:.1f} s", "—"),
    ]
    lines = ["| metric | measured | target |", "|---|---|---|"]
    lines += [f"| {m} | {v} | {t} |" for m, v, t in rows]
    lines.append(f"\nmet: {'yes' if result['met'] else '**no**'}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--accounts", type=int, default=100)
    parser.add_argument("--streams", type=int, default=10, help="SSE streams per account")
    parser.add_argument("--ticks", type=int, default=20, help="lines each run prints, 0.5 s apart")
    parser.add_argument("--slots", type=int, default=50, help="the runner's sandboxes")
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON)
    args = parser.parse_args()
    machine = machine_info()
    work = Path(tempfile.mkdtemp(prefix="torchdojo-crowd-"))
    with site(args.slots, work) as urls:
        result = asyncio.run(crowd(urls, args.accounts, args.streams, args.ticks))
    machine["load_avg_at_end"] = [round(x, 2) for x in os.getloadavg()]
    result = {"machine": machine, "slots": args.slots, **result}
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2) + "\n")
    print(markdown_table(result))
    log(f"results in {args.json}; the processes' logs in {work}")


if __name__ == "__main__":
    main()
