"""The JSON API against the real app, the real sandbox and real databases (SQLite, PostgreSQL)."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx

from tests.support.postgres import psql
from tests.support.servers import ROOT, Learner, Server

SEED = ROOT / "content" / "intro-to-deep-learning" / "01-deep-learning-introduction"
LESSON = "intro-to-deep-learning/deep-learning-introduction"


def start(learner: Learner, code: str, mode: str = "run") -> str:
    response = learner.post("/api/runs", json={"lesson": LESSON, "code": code, "mode": mode})
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["events_url"] == f"/api/runs/{body['id']}/events"
    return body["id"]


def test_run_streams_events_and_is_stored(server: Server, learner: Learner) -> None:
    run_id = start(learner, "print('hi from the sandbox')")
    events = learner.events(run_id)
    assert events[0]["type"] == "started" and events[-1]["type"] == "done"
    assert [e["seq"] for e in events] == list(range(len(events)))
    stdout = "".join(e["text"] for e in events if e["type"] == "output" and e["stream"] == "stdout")
    assert stdout == "hi from the sandbox\n"
    run = learner.client.get(f"/api/runs/{run_id}").json()
    assert run["status"] == "completed" and run["finished_at"]
    # Reconnecting with Last-Event-ID: only what came after it (from memory while the run is
    # recent; test_restart.py replays from the database).
    assert [e["seq"] for e in learner.events(run_id, last_event_id=0)] == [
        e["seq"] for e in events[1:]
    ]


def test_seed_solution_passes_every_check_and_progress_is_saved(
    server: Server, learner: Learner
) -> None:
    run_id = start(learner, (SEED / "solution.py").read_text(), mode="check")
    events = learner.events(run_id)
    done = events[-1]
    tests = [e for e in events if e["type"] == "test"]
    assert done["status"] == "completed", done
    assert tests and all(t["status"] == "passed" for t in tests), tests
    assert done["tests"] == {"passed": len(tests), "failed": 0, "errors": 0}
    assert any(e["type"] == "summary" for e in events)
    assert len([e for e in events if e["type"] == "metric" and e["name"] == "loss"]) >= 2
    page = learner.client.get("/").text
    assert "passed" in page
    if server.database_url.startswith("postgresql"):
        from tests.support.postgres import Postgres  # noqa: F401 -- the same server the app writes to

        count = _pg(server, f"SELECT count(*) FROM run_events WHERE run_id = '{run_id}'")
        assert int(count) == len(events)
        assert _pg(server, f"SELECT status FROM runs WHERE id = '{run_id}'") == "completed"


def _pg(server: Server, sql: str) -> str:
    return psql(server.database_url, sql)


def test_starter_fails_checks_with_hints(server: Server, learner: Learner) -> None:
    events = learner.events(start(learner, (SEED / "starter.py").read_text(), mode="check"))
    failed = [e for e in events if e["type"] == "test" and e["status"] == "failed"]
    assert failed and all(e["hint"] for e in failed)
    solution = learner.client.get(f"/api/lessons/{LESSON}/solution")
    assert solution.status_code == 200 and "def build_model" in solution.json()["code"]


def test_solution_is_locked_before_a_failed_check(server: Server, learner: Learner) -> None:
    response = learner.client.get(f"/api/lessons/{LESSON}/solution")
    assert response.status_code == 403 and "Check" in response.json()["detail"]


def test_drafts_are_saved_and_private(server: Server, learner: Learner) -> None:
    assert learner.put(f"/api/drafts/{LESSON}", json={"code": "x = 1  # mine"}).status_code == 200
    assert learner.client.get(f"/api/drafts/{LESSON}").json()["code"] == "x = 1  # mine"
    run_id = start(learner, "print('private')")
    other = Learner(server.url).sign_up()
    assert other.client.get(f"/api/drafts/{LESSON}").status_code == 404
    assert other.client.get(f"/api/runs/{run_id}").status_code == 404
    assert other.client.get(f"/api/runs/{run_id}/events").status_code == 404
    assert other.post(f"/api/runs/{run_id}/cancel").status_code == 404
    # The lesson page shows the learner's own draft, and the starter to the other learner.
    page = learner.client.get(f"/courses/{LESSON}").text
    assert "print(&#39;private&#39;)" in page or "print('private')" in page
    assert "TODO 1" in other.client.get(f"/courses/{LESSON}").text


def test_changes_without_csrf_token_are_refused(server: Server, learner: Learner) -> None:
    response = learner.client.post("/api/runs", json={"lesson": LESSON, "code": "print(1)"})
    assert response.status_code == 403 and "Reload the page" in response.json()["detail"]
    response = learner.client.put(
        f"/api/drafts/{LESSON}", json={"code": "lost?"}, headers={"X-CSRF-Token": "forged"}
    )
    assert response.status_code == 403
    anonymous = httpx.Client(base_url=server.url)
    assert (
        anonymous.post("/signup", data={"email": "a@b.c", "password": "12345678"}).status_code
        == 403
    )


def test_not_signed_in_is_401_with_a_message(server: Server) -> None:
    anonymous = Learner(server.url)
    response = anonymous.post("/api/runs", json={"lesson": LESSON, "code": "print(1)"})
    assert response.status_code == 401 and "Sign in" in response.json()["detail"]


def test_bad_input_gets_a_clear_error_and_keeps_the_draft(server: Server, learner: Learner) -> None:
    learner.put(f"/api/drafts/{LESSON}", json={"code": "kept = True"})
    huge = learner.post("/api/runs", json={"lesson": LESSON, "code": "#" * (65 * 1024)})
    assert huge.status_code == 413 and "limit is 64 KiB" in huge.json()["detail"]
    invalid = learner.post("/api/runs", json={"lesson": LESSON, "code": "x", "mode": "sprint"})
    assert invalid.status_code == 422 and "mode" in invalid.json()["detail"]
    unknown = learner.post("/api/runs", json={"lesson": "nope/nothing", "code": "x"})
    assert unknown.status_code == 404 and "no lesson" in unknown.json()["detail"]
    malformed = learner.post(
        "/api/runs", content=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert malformed.status_code == 422
    assert learner.client.get(f"/api/drafts/{LESSON}").json()["code"] == "kept = True"


def test_a_new_run_cancels_the_learners_previous_one(server: Server, learner: Learner) -> None:
    first = start(learner, "import time\nprint('long', flush=True)\ntime.sleep(30)")
    time.sleep(1)
    second = start(learner, "print('second')")
    first_done = learner.events(first)[-1]
    assert first_done["type"] == "done" and first_done["status"] == "cancelled"
    # The other tab that followed the first run is told why it stopped.
    assert first_done["error"]["message"] == "Stopped because you started a newer run."
    assert learner.events(second)[-1]["status"] == "completed"


def test_two_runs_started_at_once_leave_one_active(server: Server, learner: Learner) -> None:
    """Two clicks racing: the starts are taken one after the other, so one supersedes the other
    and never do both run."""
    import concurrent.futures

    code = "import time\nprint('racing', flush=True)\ntime.sleep(30)"
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        run_ids = list(pool.map(lambda _: start(learner, code), range(2)))
    statuses = {r: learner.client.get(f"/api/runs/{r}").json()["status"] for r in run_ids}
    assert sorted(statuses.values()) == ["cancelled", "running"], statuses
    superseded = next(r for r, status in statuses.items() if status == "cancelled")
    assert learner.events(superseded)[-1]["error"]["type"] == "Superseded"
    live = next(r for r, status in statuses.items() if status == "running")
    assert learner.post(f"/api/runs/{live}/cancel").json() == {"cancelled": True}


def test_cancel_endpoint_stops_a_run(server: Server, learner: Learner) -> None:
    run_id = start(learner, "import time\ntime.sleep(30)")
    time.sleep(0.5)
    assert learner.post(f"/api/runs/{run_id}/cancel").status_code == 202
    done = learner.events(run_id)[-1]
    assert done["status"] == "cancelled" and "error" not in done  # the learner's own Stop


def test_a_browser_reconnecting_mid_run_misses_nothing(server: Server, learner: Learner) -> None:
    """The connection drops while the code still runs; the browser reconnects with
    Last-Event-ID and gets every later event once, in order, up to `done`."""
    import json

    code = "import time\nfor i in range(6):\n    print(i, flush=True)\n    time.sleep(0.4)"
    run_id = start(learner, code)
    seen: list[dict] = []
    with learner.client.stream("GET", f"/api/runs/{run_id}/events", timeout=60) as response:
        for line in response.iter_lines():
            if line.startswith("data: "):
                seen.append(json.loads(line[6:]))
                if seen[-1]["type"] == "output" and "1" in seen[-1]["text"]:
                    break  # the browser goes away mid-run
    assert seen[-1]["type"] == "output"
    rest = learner.events(run_id, last_event_id=seen[-1]["seq"])
    assert rest[0]["seq"] == seen[-1]["seq"] + 1
    assert [e["seq"] for e in seen + rest] == list(range(len(seen) + len(rest)))
    printed = "".join(e["text"] for e in seen + rest if e.get("stream") == "stdout")
    assert printed == "".join(f"{i}\n" for i in range(6))
    assert rest[-1]["type"] == "done" and rest[-1]["status"] == "completed"


def test_code_that_is_not_text_is_refused_clearly(server: Server, learner: Learner) -> None:
    import json

    for bad, words in (("print(1) \ud800", "not valid text"), ("print(1)\x00", "NUL")):
        headers = {"Content-Type": "application/json"}
        draft = json.dumps({"code": bad}).encode()  # ensure_ascii: the surrogate travels escaped
        response = learner.put(f"/api/drafts/{LESSON}", content=draft, headers=headers)
        assert response.status_code == 422 and words in response.json()["detail"], response.text
        run = json.dumps({"lesson": LESSON, "code": bad}).encode()
        response = learner.post("/api/runs", content=run, headers=headers)
        assert response.status_code == 422 and words in response.json()["detail"]


def test_sign_out_and_back_in(server: Server, learner: Learner) -> None:
    assert learner.post("/logout").status_code == 303
    assert learner.client.get("/api/session").json()["user"] is None
    csrf = learner.client.get("/api/session").json()["csrf_token"]
    wrong = learner.client.post(
        "/login", data={"email": learner.email, "password": "not it", "csrf_token": csrf}
    )
    assert wrong.status_code == 400 and "Wrong email or password" in wrong.text
    right = learner.client.post(
        "/login",
        data={"email": learner.email, "password": "correct horse battery", "csrf_token": csrf},
    )
    assert right.status_code == 303
    assert learner.client.get("/api/session").json()["user"]["email"] == learner.email


def test_every_change_needs_the_csrf_token(server: Server, learner: Learner) -> None:
    """Every route that changes something, found from the app itself (so a new one cannot be
    forgotten), refuses a signed-in learner's request without the token."""
    from fastapi.routing import APIRoute

    from app.config import Settings
    from app.main import create_app

    app = create_app(Settings(environment="test", database_url="sqlite:///:memory:"))
    fill = {
        "course": LESSON.split("/")[0],
        "lesson": LESSON.split("/")[1],
        "run_id": start(learner, "print('csrf')"),
    }

    def routes(entries: list) -> Iterator[APIRoute]:
        for entry in entries:  # FastAPI 0.165 keeps included routers as they were included
            if isinstance(entry, APIRoute):
                yield entry
            elif hasattr(entry, "original_router"):
                assert not entry.include_context.prefix  # our routers carry full paths
                yield from routes(entry.original_router.routes)

    refused = set()
    for route in routes(app.routes):
        for method in sorted(route.methods - {"GET", "HEAD", "OPTIONS"}):
            path = route.path.format(**fill)
            as_json = learner.client.request(method, path, json={"code": "x", "lesson": LESSON})
            as_form = learner.client.request(method, path, data={"code": "x", "email": "a@b.c"})
            for response in (as_json, as_form):
                assert response.status_code == 403, (method, path, response.status_code)
                assert "Reload the page" in response.json()["detail"]
            refused.add(f"{method} {route.path}")
    assert {
        "POST /api/runs",
        "POST /api/runs/{run_id}/cancel",
        "PUT /api/drafts/{course}/{lesson}",
        "POST /login",
        "POST /signup",
        "POST /logout",
        "POST /courses/{course}/{lesson}/run",
    } <= refused, refused
    assert learner.client.get(f"/api/drafts/{LESSON}").json()["code"] == "print('csrf')"


def test_nul_characters_get_a_clear_answer_on_every_database(
    server: Server, learner: Learner
) -> None:
    """PostgreSQL refuses text with NUL in it: such input must be turned away before it gets
    there, with the same answer as on SQLite, never a 500."""
    for path in (
        "/api/runs/%00",
        "/api/runs/a%00b/events",
        "/api/drafts/intro%00/x",
        f"/api/drafts/{LESSON}%00",
        "/courses/intro%00/x",
    ):
        response = learner.client.get(path)
        assert response.status_code == 404, (path, response.status_code, response.text)
        assert response.json()["detail"]
    for form in ("/login", "/signup"):
        fresh = Learner(server.url)
        response = fresh.client.post(
            form,
            data={
                "email": "ada\x00@example.com",
                "password": "a long password",
                "csrf_token": fresh.csrf,
            },
        )
        assert response.status_code == 400, (form, response.status_code, response.text)
        assert "email" in response.text


def test_the_session_cookie_is_httponly_and_samesite_lax(server: Server) -> None:
    fresh = Learner(server.url)
    response = fresh.client.post(
        "/signup",
        data={"email": fresh.email, "password": "a long password", "csrf_token": fresh.csrf},
    )
    assert response.status_code == 303
    cookie = response.headers["set-cookie"].lower()
    assert cookie.startswith("torchdojo_session=")
    assert "httponly" in cookie and "samesite=lax" in cookie
    assert "secure" not in cookie  # plain HTTP in tests; production sets it (test_accounts_cli)
