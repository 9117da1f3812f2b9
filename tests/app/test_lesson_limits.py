"""A lesson that asks the runner for more than its admin allows (here: the seed lesson's 60 s
wall time on a runner whose maximum is 30 s) is refused the same way by the runner service and
by the pool embedded in the app, never quietly run with lower limits: the learner reads what is
wrong and who can fix it, and keeps their code. (`torchdojo content check` reports such a lesson
before any learner sees it: tests/content, case limits_above_maximum.)"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.runner import runner_service
from tests.support.servers import Learner, Server, start_server

LESSON = "intro-to-deep-learning/deep-learning-introduction"
LOW_MAXIMUM = {"RUNNER_MAX_LIMITS__WALL_S": "30", "RUNNER_POOL_SIZE": "1"}


@pytest.fixture(params=["embedded", "remote"])
def app_with_low_maximum(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Server]:
    database_url = f"sqlite:///{tmp_path / 'app.sqlite3'}"
    if request.param == "embedded":
        server = start_server(database_url, tmp_path, TORCHDOJO_RUNNER_POOL_SIZE="1", **LOW_MAXIMUM)
        yield server
    else:
        with runner_service(LOW_MAXIMUM) as running:
            server = start_server(database_url, tmp_path, TORCHDOJO_RUNNER_URL=running.url)
            yield server
    server.process.terminate()
    server.process.wait(30)


def test_a_lesson_above_the_runners_maximum_is_refused_clearly(
    app_with_low_maximum: Server,
) -> None:
    learner = Learner(app_with_low_maximum.url).sign_up()
    code = "print('this never runs')"
    response = learner.post("/api/runs", json={"lesson": LESSON, "code": code})
    assert response.status_code == 201, response.text
    events = learner.events(response.json()["id"])
    assert [e["type"] for e in events] == ["done"], events  # nothing ran
    done = events[0]
    assert done["status"] == "internal_error" and done["error"]["type"] == "LessonLimits"
    message = done["error"]["message"]
    assert "limits.wall_s is 60; this runner allows at most 30" in message
    assert "tell your instructor" in message and "Your code is saved" in message
    assert learner.client.get(f"/api/drafts/{LESSON}").json()["code"] == code
