"""Two runner services on loopback addresses behind one app (TORCHDOJO_RUNNER_URL with both), as
with `docker compose up --scale runner=2`: runs spread over both (also when one name resolves to
both addresses, as Docker's DNS answers for a scaled service); a replica whose stream breaks
before the run started is skipped for the next; when one dies mid-run, its run ends with a clear
internal_error, the next runs go to the survivor, and nothing hangs."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from prometheus_client import generate_latest

from app.metrics import WebMetrics
from app.runners import RemoteRunner
from runner.protocol import RunRequest
from tests.support.postgres import free_port
from tests.support.servers import ROOT, Learner, Server, start_server

LESSON = "intro-to-deep-learning/deep-learning-introduction"
LONG_RUN = "import time\nprint('training...', flush=True)\ntime.sleep({seconds})\nprint('finished')"


@dataclass
class Replica:
    url: str
    process: subprocess.Popen[bytes]
    log: Path

    def wait_warm(self, timeout: float = 120) -> None:
        """Until its sandbox is warm again (a used one is replaced after each run)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/healthz", timeout=5).json()["pool"]["warm"] >= 1:
                    return
            except (httpx.HTTPError, ValueError, KeyError):
                pass
            time.sleep(0.2)
        pytest.fail(f"{self.url} had no warm sandbox after {timeout} s")

    def busy(self) -> int:
        try:
            return int(httpx.get(f"{self.url}/healthz", timeout=5).json()["pool"]["busy"])
        except (httpx.HTTPError, ValueError, KeyError):
            return -1


def start_replica(tmp: Path, host: str, port: int) -> Replica:
    log_path = tmp / f"runner-{host}-{port}.log"
    log = open(log_path, "wb")  # noqa: SIM115 -- lives as long as the runner
    process = subprocess.Popen(
        [sys.executable, "-m", "runner", "serve", "--host", host, "--port", str(port)],
        cwd=ROOT,
        env={**os.environ, "RUNNER_POOL_SIZE": "1", "RUNNER_LOG_FORMAT": "json"},
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://{host}:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        assert process.poll() is None, log_path.read_text()[-3000:]
        try:
            if httpx.get(f"{url}/healthz", timeout=5).json()["pool"]["warm"] >= 1:
                return Replica(url, process, log_path)
        except (httpx.HTTPError, ValueError, KeyError):
            pass
        time.sleep(0.2)
    process.kill()
    pytest.fail("the runner did not get a warm sandbox in 120 s")


@pytest.fixture(scope="module")
def replicas(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[Replica]]:
    tmp = tmp_path_factory.mktemp("replicas")
    # One port on two loopback addresses: what two replicas behind one DNS name look like.
    port = free_port()
    started = [start_replica(tmp, "127.0.0.1", port), start_replica(tmp, "127.0.0.2", port)]
    yield started
    for replica in started:
        replica.process.kill()
        replica.process.wait(30)


@pytest.fixture(scope="module")
def app(replicas: list[Replica], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("replicas-app")
    server = start_server(
        f"sqlite:///{tmp / 'app.sqlite3'}",
        tmp,
        TORCHDOJO_RUNNER_URL=",".join(replica.url for replica in replicas),
    )
    yield server
    server.process.terminate()
    server.process.wait(30)


class Follower:
    """Reads a run's SSE stream on a thread, as a browser tab would."""

    def __init__(self, learner: Learner, run_id: str) -> None:
        self.learner, self.run_id, self.events = learner, run_id, []
        self.thread = threading.Thread(target=self._follow, daemon=True)
        self.thread.start()

    def _follow(self) -> None:
        url = f"/api/runs/{self.run_id}/events"
        with self.learner.client.stream("GET", url, timeout=120) as stream:
            for line in stream.iter_lines():
                if line.startswith("data: "):
                    self.events.append(json.loads(line[6:]))

    def wait_for(self, kind: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while not any(e["type"] == kind for e in self.events):
            assert time.monotonic() < deadline, f"no {kind} event: {self.events}"
            time.sleep(0.05)

    def done(self, timeout: float = 60) -> dict:
        self.thread.join(timeout)
        assert not self.thread.is_alive(), f"the stream hung: {self.events}"
        assert self.events and self.events[-1]["type"] == "done", self.events
        return self.events[-1]


def start_run(learner: Learner, code: str) -> Follower:
    response = learner.post("/api/runs", json={"lesson": LESSON, "code": code})
    assert response.status_code == 201, response.text
    return Follower(learner, response.json()["id"])


def run_in_process(runner: RemoteRunner, code: str, run_id: str) -> list[dict[str, Any]]:
    """One run through the app's runner client, in this process: every event, as dicts."""

    async def go() -> list[dict[str, Any]]:
        request = RunRequest(code=code, mode="run")
        stream = await runner.open(request, run_id=run_id)
        return [event.model_dump(exclude_none=True) async for event in stream]

    return asyncio.run(go())


def test_one_name_with_several_addresses_spreads_runs_over_them(replicas: list[Replica]) -> None:
    port = urlsplit(replicas[0].url).port
    asked: list[tuple[str, int]] = []

    async def dns(host: str, port: int) -> list[str]:  # as Docker's DNS answers for `runner`
        asked.append((host, port))
        return ["127.0.0.1", "127.0.0.2"]

    for replica in replicas:
        replica.wait_warm()

    async def two_runs() -> list[list[dict[str, Any]]]:
        runner = RemoteRunner([f"http://runners.internal:{port}"], resolve=dns)
        try:
            health = await runner.health()
            assert [r["status"] for r in health["replicas"]] == ["ok", "ok"], health

            async def one(run_id: str) -> list[dict[str, Any]]:
                stream = await runner.open(
                    RunRequest(code=LONG_RUN.format(seconds=3), mode="run"), run_id=run_id
                )
                return [event.model_dump(exclude_none=True) async for event in stream]

            return await asyncio.gather(one("spread-run-a"), one("spread-run-b"))
        finally:
            await runner.close()

    runs = asyncio.run(two_runs())
    assert asked and asked[0] == ("runners.internal", port)
    for events in runs:
        assert events[-1]["type"] == "done" and events[-1]["status"] == "completed", events
    # Each replica ran one of them (one sandbox each), and logged it under the app's run id.
    logged = [replica.log.read_text() for replica in replicas]
    ran_where = [
        [run_id for run_id in ("spread-run-a", "spread-run-b") if f'"run_id": "{run_id}"' in text]
        for text in logged
    ]
    assert sorted(map(len, ran_where)) == [1, 1], ran_where
    for text in logged:  # JSON lines, one object each
        for line in text.splitlines():
            if line.startswith("{") and "spread-run" in line:
                record = json.loads(line)
                assert {"time", "level", "logger", "message"} <= set(record), record


def test_a_replica_whose_stream_breaks_before_started_is_skipped(
    replicas: list[Replica],
) -> None:
    """A replica that accepts the request and then drops the connection before `started` (it
    crashed while taking the run): the run goes to the next replica, and runs once."""

    async def go() -> tuple[list[dict[str, Any]], str]:
        async def accept_then_die(reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
            await reader.readuntil(b"\r\n\r\n")
            writer.write(
                b"HTTP/1.1 200 OK\r\ncontent-type: application/x-ndjson\r\n"
                b"transfer-encoding: chunked\r\n\r\n"
            )
            await writer.drain()
            writer.close()

        server = await asyncio.start_server(accept_then_die, "127.0.0.1", 0)
        broken = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
        metrics = WebMetrics()
        runner = RemoteRunner([broken, replicas[0].url], metrics=metrics)
        try:
            stream = await runner.open(RunRequest(code="print('ran once')", mode="run"))
            events = [event.model_dump(exclude_none=True) async for event in stream]
        finally:
            await runner.close()
            server.close()
        exposition = generate_latest(metrics.registry).decode()
        return events, exposition

    events, exposition = asyncio.run(go())
    assert events[0]["type"] == "started", events
    assert events[-1]["status"] == "completed", events
    text = "".join(e["text"] for e in events if e["type"] == "output")
    assert text == "ran once\n"
    assert 'kind="died"' in exposition and "torchdojo_web_runner_errors_total" in exposition


def test_a_replica_that_dies_while_the_run_waits_in_its_queue_is_skipped(
    replicas: list[Replica],
) -> None:
    """A replica that said the run is queued (nothing of it ran) and then died: the run goes to
    the next replica, and its events follow on from the `queued` one without a gap."""

    async def go() -> list[dict[str, Any]]:
        async def queue_then_die(reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
            await reader.readuntil(b"\r\n\r\n")
            line = b'{"type":"queued","seq":0,"t":0.01,"position":3}\n'
            writer.write(
                b"HTTP/1.1 200 OK\r\ncontent-type: application/x-ndjson\r\n"
                b"transfer-encoding: chunked\r\n\r\n"
                + f"{len(line):x}\r\n".encode()
                + line
                + b"\r\n"
            )
            await writer.drain()
            writer.close()

        server = await asyncio.start_server(queue_then_die, "127.0.0.1", 0)
        broken = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
        runner = RemoteRunner([broken, replicas[0].url])
        try:
            stream = await runner.open(RunRequest(code="print('ran once')", mode="run"))
            return [event.model_dump(exclude_none=True) async for event in stream]
        finally:
            await runner.close()
            server.close()

    events = asyncio.run(go())
    assert [e["type"] for e in events[:2]] == ["queued", "started"], events
    assert [e["seq"] for e in events] == list(range(len(events)))
    assert events[-1]["status"] == "completed", events
    assert "".join(e["text"] for e in events if e["type"] == "output") == "ran once\n"


def test_one_replica_dies_mid_run_and_the_survivor_takes_the_next_runs(
    app: Server, replicas: list[Replica]
) -> None:
    # Two learners at once: each replica (one sandbox each) gets one of the runs.
    for replica in replicas:
        replica.wait_warm()
    first = start_run(Learner(app.url).sign_up(), LONG_RUN.format(seconds=60))
    second = start_run(Learner(app.url).sign_up(), LONG_RUN.format(seconds=8))
    first.wait_for("output")
    second.wait_for("output")
    assert [replica.busy() for replica in replicas] == [1, 1], "runs did not spread"

    # Kill the replica running the long run (its run is the one still busy after the short one).
    second_done = second.done()
    assert second_done["status"] == "completed", second_done
    victim = next(replica for replica in replicas if replica.busy() == 1)
    survivor = next(replica for replica in replicas if replica is not victim)
    started = time.monotonic()
    victim.process.send_signal(signal.SIGKILL)
    victim.process.wait(10)

    done = first.done(timeout=30)
    assert time.monotonic() - started < 30
    assert done["status"] == "internal_error", done
    assert "runner stopped answering" in done["error"]["message"]
    assert "Your code is saved" in done["error"]["message"]
    stored = first.learner.client.get(f"/api/runs/{first.run_id}").json()
    assert stored["status"] == "internal_error"

    # Whichever replica the app tries first, every next run completes on the survivor.
    learner = Learner(app.url).sign_up()
    for attempt in range(3):
        run = start_run(learner, f"print('after the crash', {attempt})")
        done = run.done(timeout=60)
        assert done["status"] == "completed", (attempt, done, run.events)
        stdout = [e for e in run.events if e["type"] == "output" and e["stream"] == "stdout"]
        text = "".join(e["text"] for e in stdout)
        assert text == f"after the crash {attempt}\n"
    assert survivor.process.poll() is None

    health = httpx.get(f"{app.url}/healthz", timeout=10).json()["runner"]["replicas"]
    states = {replica["url"]: replica["status"] for replica in health}
    assert states == {victim.url: "unreachable", survivor.url: "ok"}, health
