"""Two runner services on loopback ports behind one app (TORCHDOJO_RUNNER_URL with both), as
with `docker compose up --scale runner=2`: runs spread over both; when one dies mid-run, its run
ends with a clear internal_error, the next runs go to the survivor, and nothing hangs."""

from __future__ import annotations

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

import httpx
import pytest

from tests.app.conftest import ROOT, Learner, Server, free_port, start_server

LESSON = "intro-to-deep-learning/deep-learning-introduction"
LONG_RUN = "import time\nprint('training...', flush=True)\ntime.sleep({seconds})\nprint('finished')"


@dataclass
class Replica:
    url: str
    process: subprocess.Popen[bytes]

    def busy(self) -> int:
        try:
            return int(httpx.get(f"{self.url}/healthz", timeout=5).json()["pool"]["busy"])
        except (httpx.HTTPError, ValueError, KeyError):
            return -1


def start_replica(tmp: Path) -> Replica:
    port = free_port()
    log = open(tmp / f"runner-{port}.log", "wb")  # noqa: SIM115 -- lives as long as the runner
    process = subprocess.Popen(
        [sys.executable, "-m", "runner", "serve", "--port", str(port)],
        cwd=ROOT,
        env={**os.environ, "RUNNER_POOL_SIZE": "1"},
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        assert process.poll() is None, (tmp / f"runner-{port}.log").read_text()[-3000:]
        try:
            if httpx.get(f"{url}/healthz", timeout=5).json()["pool"]["warm"] >= 1:
                return Replica(url, process)
        except (httpx.HTTPError, ValueError, KeyError):
            pass
        time.sleep(0.2)
    process.kill()
    pytest.fail("the runner did not get a warm sandbox in 120 s")


@pytest.fixture(scope="module")
def replicas(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[Replica]]:
    tmp = tmp_path_factory.mktemp("replicas")
    started = [start_replica(tmp), start_replica(tmp)]
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


def test_one_replica_dies_mid_run_and_the_survivor_takes_the_next_runs(
    app: Server, replicas: list[Replica]
) -> None:
    # Two learners at once: each replica (one sandbox each) gets one of the runs.
    first = start_run(Learner(app.url).sign_up(), LONG_RUN.format(seconds=60))
    second = start_run(Learner(app.url).sign_up(), LONG_RUN.format(seconds=4))
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
