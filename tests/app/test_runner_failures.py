"""When the runner fails, the learner gets a clear internal_error and keeps their code; rate
limits answer with a message and Retry-After."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.runner import runner_service as start_runner_service
from tests.support.servers import ROOT, Learner, Server, start_server

LESSON = "intro-to-deep-learning/deep-learning-introduction"


@pytest.fixture(scope="module")
def runner_service() -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    with start_runner_service({"RUNNER_POOL_SIZE": "1"}, timeout_s=120) as running:
        yield running.url, running.process


@pytest.fixture(scope="module")
def remote_app(runner_service, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("remote")
    server = start_server(
        f"sqlite:///{tmp / 'app.sqlite3'}",
        tmp,
        TORCHDOJO_RUNNER_URL=runner_service[0],
        TORCHDOJO_RUNS_PER_MINUTE="3",
    )
    yield server
    server.process.terminate()
    server.process.wait(30)


def test_runner_dying_mid_run_ends_with_internal_error_and_keeps_the_draft(
    remote_app: Server, runner_service
) -> None:
    learner = Learner(remote_app.url).sign_up()
    code = "import time\nprint('training...', flush=True)\ntime.sleep(60)"
    response = learner.post("/api/runs", json={"lesson": LESSON, "code": code})
    assert response.status_code == 201, response.text
    run_id = response.json()["id"]
    events: list[dict] = []

    def follow() -> None:
        with learner.client.stream("GET", f"/api/runs/{run_id}/events", timeout=120) as stream:
            for line in stream.iter_lines():
                if line.startswith("data: "):
                    events.append(json.loads(line[6:]))

    reader = threading.Thread(target=follow)
    reader.start()
    deadline = time.monotonic() + 30
    while not any(e["type"] == "output" for e in events):
        assert time.monotonic() < deadline, events
        time.sleep(0.05)
    runner_service[1].send_signal(signal.SIGKILL)  # the runner dies mid-run
    reader.join(30)
    assert not reader.is_alive(), "the stream hung after the runner died"
    done = events[-1]
    assert done["type"] == "done" and done["status"] == "internal_error"
    assert (
        "runner stopped answering" in done["error"]["message"]
        and "Your code is saved" in done["error"]["message"]
    )
    assert learner.client.get(f"/api/drafts/{LESSON}").json()["code"] == code
    assert learner.client.get(f"/api/runs/{run_id}").json()["status"] == "internal_error"

    # With no runner at all, a new run ends the same way instead of hanging.
    again = learner.post("/api/runs", json={"lesson": LESSON, "code": "print(1)"})
    assert again.status_code == 201
    final = learner.events(again.json()["id"])[-1]
    assert (
        final["status"] == "internal_error"
        and "No code runner could be reached, so your code did not run."
        in final["error"]["message"]
        and "Your code is saved" in final["error"]["message"]
    )


def test_rate_limit_says_when_to_try_again(remote_app: Server) -> None:
    learner = Learner(remote_app.url).sign_up()
    statuses = [
        learner.post("/api/runs", json={"lesson": LESSON, "code": "print(1)"}) for _ in range(4)
    ]
    assert [r.status_code for r in statuses[:3]] == [201, 201, 201]
    limited = statuses[3]
    assert limited.status_code == 429 and int(limited.headers["Retry-After"]) >= 1
    assert "Try again in" in limited.json()["detail"]


def test_placeholder_secret_is_refused_in_production(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-c", "from app.config import Settings; Settings()"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "TORCHDOJO_ENVIRONMENT": "production", "TORCHDOJO_SECRET_KEY": ""},
    )
    assert result.returncode != 0 and "TORCHDOJO_SECRET_KEY must be" in result.stderr
