"""What an operator sees: the web app's Prometheus metrics (behind a token) and its JSON log
lines, each about a run carrying the run's id, from the app started as deployed
(`torchdojo serve`)."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.servers import ROOT, Learner, Server, start_server

LESSON = "intro-to-deep-learning/deep-learning-introduction"
TOKEN = "metrics-" + "t" * 24


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, Path]]:
    tmp = tmp_path_factory.mktemp("observability")
    server = start_server(
        f"sqlite:///{tmp / 'app.sqlite3'}",
        tmp,
        command=[str(ROOT / ".venv" / "bin" / "torchdojo"), "serve"],
        TORCHDOJO_LOG_FORMAT="json",
        TORCHDOJO_METRICS_TOKEN=TOKEN,
        TORCHDOJO_RUNNER_POOL_SIZE="1",
    )
    yield server, next(tmp.glob("server-*.log"))
    server.process.terminate()
    server.process.wait(30)


def metric(text: str, name: str) -> float:
    match = re.search(rf"^{re.escape(name)} ([0-9.e+-]+)$", text, re.MULTILINE)
    assert match, f"{name} is not in the metrics:\n{text}"
    return float(match.group(1))


def scrape(server: Server) -> str:
    response = httpx.get(
        f"{server.url}/metrics", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10
    )
    assert response.status_code == 200, response.text
    return response.text


def test_metrics_need_the_token(served: tuple[Server, Path]) -> None:
    server, _ = served
    for headers in ({}, {"Authorization": "Bearer wrong"}):
        response = httpx.get(f"{server.url}/metrics", headers=headers, timeout=10)
        assert response.status_code == 401
        assert "TORCHDOJO_METRICS_TOKEN" in response.json()["detail"]


def test_a_run_shows_in_metrics_and_in_json_logs(served: tuple[Server, Path]) -> None:
    server, log_path = served
    before = scrape(server)
    completed = 'torchdojo_web_runs_total{status="completed"}'
    done_before = metric(before, completed) if completed in before else 0.0
    assert metric(before, "torchdojo_web_open_event_streams") == 0

    learner = Learner(server.url).sign_up()
    code = "import time\nprint('tick', flush=True)\ntime.sleep(2)\nprint('tock')"
    created = learner.post("/api/runs", json={"lesson": LESSON, "code": code})
    assert created.status_code == 201, created.text
    run_id = created.json()["id"]

    events: list[dict] = []
    seen_output = threading.Event()

    def follow() -> None:
        with learner.client.stream("GET", f"/api/runs/{run_id}/events", timeout=120) as stream:
            for line in stream.iter_lines():
                if line.startswith("data: "):
                    events.append(json.loads(line[6:]))
                    if events[-1]["type"] == "output":
                        seen_output.set()

    follower = threading.Thread(target=follow, daemon=True)
    follower.start()
    assert seen_output.wait(120), events
    during = scrape(server)
    assert metric(during, "torchdojo_web_open_event_streams") == 1
    assert metric(during, "torchdojo_web_active_runs") == 1
    follower.join(120)
    assert events[-1]["type"] == "done" and events[-1]["status"] == "completed", events

    after = scrape(server)
    assert metric(after, completed) == done_before + 1
    assert metric(after, "torchdojo_web_run_duration_seconds_count") >= 1
    assert metric(after, "torchdojo_web_open_event_streams") == 0
    assert metric(after, "torchdojo_web_active_runs") == 0

    # Every line is one JSON object; the run's own lines carry its id.
    records = [json.loads(line) for line in log_path.read_text().splitlines() if line.strip()]
    assert all({"time", "level", "logger", "message"} <= set(r) for r in records)
    about_run = [r for r in records if r.get("run_id") == run_id]
    finished = [r for r in about_run if r["message"] == "run finished"]
    assert finished and finished[0]["status"] == "completed", about_run
    assert any(r["logger"] == "uvicorn.access" for r in records)
