"""The server process dies (killed, or restarted by a deploy) while a learner's code runs.

Nothing can finish that run any more: its runner stream died with the process. The next server
process, on the same database, ends it with an `internal_error` that says what happened, so the
learner's browser (reconnecting with Last-Event-ID) gets a `done` instead of waiting forever;
what the run printed before is still there, and so is the learner's draft. Finished runs are
replayed from the database after a restart, resuming after Last-Event-ID. On SQLite and on
PostgreSQL, with the real app, the real sandbox and real HTTP.
"""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from app.runs import FLUSH_EVERY_S
from tests.support.postgres import Postgres
from tests.support.servers import Learner, Server, start_server

LESSON = "intro-to-deep-learning/deep-learning-introduction"
SLEEPER = "import time\nprint('working on it', flush=True)\ntime.sleep(300)\n"


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'restart.sqlite3'}"
    postgres: Postgres = request.getfixturevalue("postgres")
    return postgres.url


@pytest.fixture
def servers(tmp_path: Path) -> Iterator[list[Server]]:
    started: list[Server] = []
    yield started
    for server in started:
        if server.process.poll() is None:
            server.process.kill()
            server.process.wait(30)


def start(learner: Learner, code: str) -> str:
    response = learner.post("/api/runs", json={"lesson": LESSON, "code": code})
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def read_until_output(learner: Learner, run_id: str) -> list[dict]:
    """Follow the run until its first output, then drop the connection (a browser closing)."""
    events: list[dict] = []
    with learner.client.stream("GET", f"/api/runs/{run_id}/events", timeout=120) as response:
        for line in response.iter_lines():
            if line.startswith("data: "):
                events.append(json.loads(line[6:]))
                if events[-1]["type"] == "output":
                    return events
    raise AssertionError(f"the run ended before printing: {events}")


def test_a_run_cut_off_by_a_killed_server_ends_after_restart(
    database_url: str, tmp_path: Path, servers: list[Server]
) -> None:
    first = start_server(database_url, tmp_path, TORCHDOJO_RUNNER_POOL_SIZE="1")
    servers.append(first)
    learner = Learner(first.url).sign_up()
    finished = start(learner, "print('one'); print('two'); print('three')")
    finished_events = learner.events(finished)
    assert finished_events[-1]["status"] == "completed"
    cut_off = start(learner, SLEEPER)
    before = read_until_output(learner, cut_off)
    assert before[-1]["text"].startswith("working on it")

    time.sleep(4 * FLUSH_EVERY_S)  # what the browser saw reaches the database meanwhile
    first.process.send_signal(signal.SIGKILL)  # no shutdown hook runs: as in a crash
    first.process.wait(30)
    second = start_server(database_url, tmp_path, TORCHDOJO_RUNNER_POOL_SIZE="1")
    servers.append(second)
    learner.client.base_url = httpx.URL(second.url)  # same browser, same session cookie

    # The browser reconnects after the last event it saw: it gets the `done`, nothing twice.
    resumed = learner.events(cut_off, last_event_id=before[-1]["seq"])
    assert {e["type"] for e in resumed[:-1]} <= {"output"}, resumed  # the rest of the line
    assert [e["seq"] for e in resumed] == list(
        range(before[-1]["seq"] + 1, before[-1]["seq"] + 1 + len(resumed))
    )
    done = resumed[-1]
    assert done["status"] == "internal_error"
    assert done["error"]["message"].startswith("The server restarted while your code ran.")
    assert "Your code is saved" in done["error"]["message"]
    # Even a browser that saw more than the killed process stored gets the final `done`,
    # numbered after the last event it has, so its stream has no gap and ends.
    ahead = done["seq"] + 5
    assert learner.events(cut_off, last_event_id=ahead) == [{**done, "seq": ahead + 1}]
    everything = learner.events(cut_off)
    assert [e["seq"] for e in everything] == list(range(len(everything)))
    assert [e["type"] for e in everything][:2] == ["started", "output"]
    run = learner.client.get(f"/api/runs/{cut_off}").json()
    assert run["status"] == "internal_error" and run["finished_at"]
    assert learner.client.get(f"/api/drafts/{LESSON}").json()["code"] == SLEEPER

    # A finished run replays from the database, resuming after Last-Event-ID.
    replay = learner.events(finished, last_event_id=1)
    assert replay == finished_events[2:]

    # And the learner carries on.
    again = start(learner, "print('back')")
    assert learner.events(again)[-1]["status"] == "completed"
