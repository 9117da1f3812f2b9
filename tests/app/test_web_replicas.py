"""Two web processes on one PostgreSQL, as behind a proxy: any replica serves any request. A run
started through one is followed through the other, live; a learner's one-active-run rule, their
rate limit and a Stop hold across replicas; a replica killed mid-run leaves its run ending on
the survivor with a clear message and no gap in its events."""

from __future__ import annotations

import json
import signal
import threading
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.support.postgres import Postgres
from tests.support.servers import Learner, Server, start_server

LESSON = "intro-to-deep-learning/deep-learning-introduction"
TICKS = "import time\nfor i in range({n}):\n    print('tick', i, flush=True)\n    time.sleep(0.5)\n"


@pytest.fixture(scope="module")
def replicas(
    postgres: Postgres, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[list[Server]]:
    tmp = tmp_path_factory.mktemp("web-replicas")
    url = postgres.fresh_database()
    servers = [start_server(url, tmp, TORCHDOJO_RUNS_PER_MINUTE="6") for _ in range(2)]
    yield servers
    for server in servers:
        if server.process.poll() is None:
            server.process.terminate()
            server.process.wait(30)


def on(server: Server, learner: Learner) -> Learner:
    """The same browser (its cookies), talking to another replica."""
    other = Learner.__new__(Learner)
    other.email = learner.email
    other.client = httpx.Client(
        base_url=server.url, cookies=dict(learner.client.cookies), timeout=60
    )
    other.csrf = learner.csrf
    return other


def start(learner: Learner, code: str) -> httpx.Response:
    return learner.post("/api/runs", json={"lesson": LESSON, "code": code, "mode": "run"})


def test_a_run_started_on_one_replica_is_followed_live_on_the_other(replicas: list[Server]) -> None:
    a = Learner(replicas[0].url).sign_up()
    b = on(replicas[1], a)
    response = start(a, TICKS.format(n=6))
    assert response.status_code == 201, response.text
    run_id = response.json()["id"]
    arrived: list[tuple[float, dict]] = []
    with b.client.stream("GET", f"/api/runs/{run_id}/events", timeout=120) as stream:
        for line in stream.iter_lines():
            if line.startswith("data: "):
                arrived.append((time.monotonic(), json.loads(line[6:])))
    events = [event for _, event in arrived]
    assert [e["seq"] for e in events] == list(range(len(events)))
    assert events[-1]["type"] == "done" and events[-1]["status"] == "completed"
    text = "".join(e["text"] for e in events if e["type"] == "output" and e["stream"] == "stdout")
    assert text == "".join(f"tick {i}\n" for i in range(6))
    # Live, not at the end: the first tick reached replica B well before the run's done.
    first_tick = next(t for t, e in arrived if e["type"] == "output")
    assert arrived[-1][0] - first_tick > 1.0


def test_one_active_run_a_stop_and_the_rate_hold_across_replicas(replicas: list[Server]) -> None:
    a = Learner(replicas[0].url).sign_up()
    b = on(replicas[1], a)
    first = start(a, TICKS.format(n=60)).json()["id"]
    second = start(b, TICKS.format(n=60)).json()["id"]  # through the other replica
    superseded = a.events(first)[-1]
    assert superseded["status"] == "cancelled" and superseded["error"]["type"] == "Superseded"
    # A Stop through replica A of the run replica B drives.
    assert a.post(f"/api/runs/{second}/cancel").json() == {"cancelled": True}
    stopped = b.events(second)[-1]
    assert stopped["status"] == "cancelled", stopped
    # The rate limit (6 a minute here) counts starts on both replicas: 2 so far.
    codes = [start(learner, "print(1)").status_code for learner in (a, b, a, b, a)]
    assert codes == [201, 201, 201, 201, 429], codes


def test_a_replica_killed_mid_run_leaves_the_run_ending_on_the_survivor(
    replicas: list[Server],
) -> None:
    doomed, survivor = replicas
    a = Learner(doomed.url).sign_up()
    b = on(survivor, a)
    run_id = start(a, TICKS.format(n=200)).json()["id"]
    seen: list[dict] = []
    connected = threading.Event()

    def follow() -> None:
        with b.client.stream("GET", f"/api/runs/{run_id}/events", timeout=180) as stream:
            for line in stream.iter_lines():
                if line.startswith("data: "):
                    seen.append(json.loads(line[6:]))
                    connected.set()

    follower = threading.Thread(target=follow, daemon=True)
    follower.start()
    assert connected.wait(60)
    deadline = time.monotonic() + 60
    while sum(e["type"] == "output" for e in seen) < 3:
        assert time.monotonic() < deadline, seen
        time.sleep(0.1)
    doomed.process.send_signal(signal.SIGKILL)
    doomed.process.wait(10)
    follower.join(120)
    assert not follower.is_alive(), "the survivor never ended the run"
    done = seen[-1]
    assert done["type"] == "done" and done["status"] == "internal_error", done
    assert (
        "server restarted" in done["error"]["message"]
        and "Your code is saved" in done["error"]["message"]
    )
    assert [e["seq"] for e in seen] == list(range(len(seen)))  # nothing lost, nothing twice
    stored = b.client.get(f"/api/runs/{run_id}").json()
    assert stored["status"] == "internal_error"
