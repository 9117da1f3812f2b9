"""The instructor dashboard and the live lesson preview, against the real app over HTTP, the real
sandbox and real databases: who may see them, the numbers after real runs (SQLite and
PostgreSQL), a broken lesson with its error, a preview following edits of a lesson's files, and
lessons validated in the sandbox from the dashboard."""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from markupsafe import escape

from app.auth import create_user
from app.content import load_lesson
from app.content_check import CheckRecord, CheckRecords, lesson_digest, record_key
from app.dashboard import check_verdict
from app.db import make_engine, make_sessionmaker
from tests.support.servers import ROOT, Learner, Server, start_server

COURSE = "intro-to-deep-learning"
SEED = ROOT / "content" / COURSE / "01-deep-learning-introduction"
LESSON = f"{COURSE}/deep-learning-introduction"
SEED_ROW = f"{COURSE}/01-deep-learning-introduction"
PASSWORD = "a long enough password"


def make_user(server: Server, role: str) -> str:
    """An account made the way `torchdojo create-user` makes one, in the server's database."""
    email = f"{role}-{time.monotonic_ns()}@example.com"
    engine = make_engine(server.database_url)
    try:
        with make_sessionmaker(engine)() as session:
            create_user(session=session, email=email, password=PASSWORD, role=role)
    finally:
        engine.dispose()
    return email


def signed_in(server: Server, role: str) -> httpx.Client:
    client = httpx.Client(base_url=server.url, timeout=60)
    csrf = client.get("/api/session").json()["csrf_token"]
    email = make_user(server, role)
    response = client.post(
        "/login", data={"email": email, "password": PASSWORD, "csrf_token": csrf}
    )
    assert response.status_code == 303, response.text
    return client


def row(client: httpx.Client, row_id: str) -> dict[str, Any]:
    response = client.get("/api/instructor/stats")
    assert response.status_code == 200, response.text
    return next(lesson for lesson in response.json()["lessons"] if lesson["id"] == row_id)


def check(learner: Learner, code: str) -> list[dict[str, Any]]:
    response = learner.post("/api/runs", json={"lesson": LESSON, "code": code, "mode": "check"})
    assert response.status_code == 201, response.text
    return learner.events(response.json()["id"])


# --- the numbers, on both databases ---------------------------------------------------------


def test_stats_follow_a_learners_check_runs(server: Server) -> None:
    instructor = signed_in(server, "instructor")
    before = row(instructor, SEED_ROW)
    learner = Learner(server.url).sign_up()

    events = check(learner, (SEED / "starter.py").read_text())
    assert events[-1]["status"] == "completed", events[-1]
    failed = {
        e["name"]: e["message"] for e in events if e["type"] == "test" and e["status"] != "passed"
    }
    assert len(failed) >= 3
    after = row(instructor, SEED_ROW)
    assert after["key"] == LESSON and after["loads"]
    assert (after["started"], after["finished"]) == (before["started"] + 1, before["finished"])
    # The starter fails these checks, so each one listed has one more failure and learner, and
    # the messages the learner read are among the most common ones.
    assert after["failing"], after
    earlier = {c["name"]: c for c in before["failing"]}
    for failing in after["failing"]:
        assert failing["name"] in failed
        old = earlier.get(failing["name"], {"failures": 0, "learners": 0})
        assert failing["failures"] == old["failures"] + 1
        assert failing["learners"] == old["learners"] + 1
    top = after["failing"][0]
    assert failed[top["name"]] in [m["message"] for m in top["messages"]]

    events = check(learner, (SEED / "solution.py").read_text())
    assert events[-1]["tests"]["failed"] == 0, events[-1]
    solved = row(instructor, SEED_ROW)
    assert (solved["started"], solved["finished"]) == (after["started"], after["finished"] + 1)
    assert solved["failing"] == after["failing"]  # a passing run adds no failures

    page = instructor.get("/instructor")
    assert page.status_code == 200 and str(escape(top["name"])) in page.text
    assert 'href="/instructor"' in page.text  # the header links to the dashboard


# --- roles, a broken lesson, the preview: a server of our own content -----------------------


def results_file(course: Path) -> Path:
    """Where the `authoring` server records sandbox checks (TORCHDOJO_CONTENT_CHECK_FILE)."""
    return course.parents[1] / "data" / "content-check.json"


@pytest.fixture(scope="module")
def authoring(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, Path]]:
    """A server over a copy of the seed lesson, a copy to edit, a half-written lesson and one
    whose starter is already solved."""
    tmp = tmp_path_factory.mktemp("authoring")
    course = tmp / "content" / COURSE
    course.mkdir(parents=True)
    shutil.copy(SEED.parent / "course.md", course)
    ignore = shutil.ignore_patterns("__pycache__")
    shutil.copytree(SEED, course / SEED.name, ignore=ignore)
    shutil.copytree(SEED, course / "02-draft", ignore=ignore)
    broken = course / "03-work-in-progress"
    shutil.copytree(SEED, broken, ignore=ignore)
    text = (broken / "lesson.md").read_text()
    (broken / "lesson.md").write_text(text.replace("title: Deep", "title: A: Deep", 1))
    solved = course / "04-solved-already"
    shutil.copytree(SEED, solved, ignore=ignore)
    shutil.copy(solved / "solution.py", solved / "starter.py")
    server = start_server(
        f"sqlite:///{tmp / 'app.sqlite3'}",
        tmp,
        TORCHDOJO_CONTENT_DIR=str(tmp / "content"),
        TORCHDOJO_CONTENT_CHECK_FILE=str(results_file(course)),
        TORCHDOJO_RUNNER_POOL_SIZE="2",  # a validation's two runs side by side
    )
    yield server, course
    server.process.terminate()
    server.process.wait(30)


def test_only_instructors_and_admins_get_in(authoring: tuple[Server, Path]) -> None:
    server, _ = authoring
    preview = f"/instructor/preview/{COURSE}/deep-learning-introduction"
    fingerprint = f"/api/instructor/preview/{COURSE}/deep-learning-introduction/fingerprint"

    anonymous = httpx.Client(base_url=server.url)
    for page in ("/instructor", preview):
        response = anonymous.get(page, headers={"Accept": "text/html"})
        assert response.status_code == 303
        assert response.headers["location"] == f"/login?next={page}"
    for api in ("/api/instructor/stats", fingerprint):
        response = anonymous.get(api)
        assert response.status_code == 401 and "Sign in" in response.json()["detail"]

    learner = signed_in(server, "learner")
    page = learner.get("/instructor", headers={"Accept": "text/html"})
    assert page.status_code == 403 and "Not allowed" in page.text
    assert "for instructors and admins" in page.text
    assert learner.get(preview, headers={"Accept": "text/html"}).status_code == 403
    for api in ("/api/instructor/stats", fingerprint):
        response = learner.get(api)
        assert response.status_code == 403 and "instructors" in response.json()["detail"]
    assert 'href="/instructor"' not in learner.get("/").text

    for role in ("instructor", "admin"):
        staff = signed_in(server, role)
        page = staff.get("/instructor")
        assert page.status_code == 200 and "Instructor dashboard" in page.text
        assert staff.get("/api/instructor/stats").status_code == 200
        assert staff.get(preview).status_code == 200
        assert 'href="/instructor"' in staff.get("/").text


def test_a_broken_lesson_is_on_the_dashboard_with_its_error(
    authoring: tuple[Server, Path],
) -> None:
    server, _ = authoring
    instructor = signed_in(server, "instructor")
    lessons = instructor.get("/api/instructor/stats").json()["lessons"]
    assert [lesson["id"] for lesson in lessons] == [
        SEED_ROW,
        f"{COURSE}/02-draft",
        f"{COURSE}/03-work-in-progress",
        f"{COURSE}/04-solved-already",
    ]
    broken = lessons[2]
    assert not broken["loads"] and broken["verdict"]["badge"] == "Broken"
    assert broken["verdict"]["problems"][0].startswith("lesson.md:2: the front matter is not valid")
    assert lessons[0]["loads"]
    page = instructor.get("/instructor").text
    assert "lesson.md:2</span>" in page
    assert "the front matter is not valid YAML" in page
    assert f'href="/instructor/preview/{COURSE}/03-work-in-progress"' in page
    # Learners never see it.
    assert "work-in-progress" not in httpx.get(f"{server.url}/").text


def test_the_preview_follows_edits_and_shows_what_broke(authoring: tuple[Server, Path]) -> None:
    server, course = authoring
    instructor = signed_in(server, "instructor")
    base = f"/instructor/preview/{COURSE}/draft"
    fingerprint = f"/api/instructor/preview/{COURSE}/draft/fingerprint"

    page = instructor.get(base)
    assert page.status_code == 200
    for shown in ("Deep Learning Introduction", "TODO 1", "Build Your First Deep Learning Model"):
        assert shown in page.text  # the text, the starter, the exercise
    hints = load_lesson(course / "02-draft").exercise.hints
    assert hints and all(str(escape(hint)) in page.text for hint in hints)  # every hint
    first = instructor.get(fingerprint).json()["fingerprint"]

    lesson_md = course / "02-draft" / "lesson.md"
    original = lesson_md.read_text()
    lesson_md.write_text(original.replace("title: Deep Learning Introduction", "title: Renamed"))
    edited = instructor.get(fingerprint).json()["fingerprint"]
    assert edited != first
    content = instructor.get(f"{base}/content")
    assert content.status_code == 200 and "<h1>Renamed</h1>" in content.text
    assert f'data-fingerprint="{edited}"' in content.text

    checks = course / "02-draft" / "checks.py"
    good = checks.read_text()
    line = good.splitlines().index("N_FEATURES = 64") + 1
    checks.write_text(good.replace("N_FEATURES = 64", "N_FEATURES = = 64"))
    broken = instructor.get(f"{base}/content")
    assert broken.status_code == 200 and 'data-state="broken"' in broken.text
    assert f"checks.py:{line}" in broken.text and "Python syntax error" in broken.text
    assert "N_FEATURES = = 64" in broken.text  # the line itself, to fix
    assert instructor.get(fingerprint).json()["fingerprint"] not in (first, edited)

    checks.write_text(good)
    lesson_md.write_text(original)
    recovered = instructor.get(f"{base}/content")
    assert 'data-state="ok"' in recovered.text and "Deep Learning Introduction" in recovered.text
    assert instructor.get(fingerprint).json()["fingerprint"] == first
    assert instructor.get(f"/instructor/preview/{COURSE}/nothing-here").status_code == 404


# --- validating a lesson from the dashboard ---------------------------------------------------


def csrf_client(client: httpx.Client) -> httpx.Client:
    """The signed-in client, sending the session's CSRF token as the page's script does."""
    client.headers["X-CSRF-Token"] = client.get("/api/session").json()["csrf_token"]
    client.timeout = httpx.Timeout(120)  # two sandbox runs, more under load
    return client


def validate_url(row_id: str) -> str:
    return f"/api/instructor/lessons/{row_id}/validate"


def test_an_instructor_validates_a_lesson_and_the_dashboard_shows_it_verified(
    authoring: tuple[Server, Path],
) -> None:
    server, course = authoring
    instructor = csrf_client(signed_in(server, "instructor"))
    before = row(instructor, SEED_ROW)
    assert before["verdict"]["badge"] == "Loads" and not before["validating"]
    page = instructor.get("/instructor").text
    assert f'data-validate="{validate_url(SEED_ROW)}"' in page

    # Learners may not; nor may a request without the session's CSRF token.
    learner = csrf_client(signed_in(server, "learner"))
    refused = learner.post(validate_url(SEED_ROW))
    assert refused.status_code == 403 and "instructors" in refused.json()["detail"]
    without_token = httpx.Client(base_url=server.url, cookies=instructor.cookies)
    forged = without_token.post(validate_url(SEED_ROW))
    assert forged.status_code == 403 and "expired" in forged.json()["detail"]
    assert instructor.post(validate_url(f"{COURSE}/nothing-here")).status_code == 404

    # Two instructors at once: the second waits for the first's runs and gets the same verdict.
    other = csrf_client(signed_in(server, "instructor"))
    with ThreadPoolExecutor(2) as pool:
        first_post = pool.submit(instructor.post, validate_url(SEED_ROW))
        time.sleep(0.2)
        second_post = pool.submit(other.post, validate_url(SEED_ROW))
        seen_validating = False
        while not (first_post.done() and second_post.done()):
            seen_validating |= row(other, SEED_ROW)["validating"]
            time.sleep(0.1)
    assert seen_validating, "the polled stats say the lesson is being validated"
    first, second = first_post.result(), second_post.result()
    assert first.status_code == 200, first.text
    assert second.json() == first.json(), "one validation, both told its verdict"
    verdict = first.json()
    assert verdict["ok"] and verdict["problems"] == [] and verdict["recorded"]
    runs = {run["which"]: run for run in verdict["runs"]}
    assert runs["solution"]["status"] == "completed"
    assert runs["solution"]["passed"] == runs["solution"]["checks"] >= 3
    assert runs["starter"]["status"] == "completed"
    assert runs["starter"]["passed"] < runs["starter"]["checks"]
    assert verdict["verdict"]["badge"] == "Verified"

    # Recorded where TORCHDOJO_CONTENT_CHECK_FILE says, as the command line records it.
    recorded = json.loads(results_file(course).read_text())["lessons"][SEED_ROW]
    assert recorded[0]["ok"] and recorded[0]["digest"] == lesson_digest(course / SEED.name)
    after = row(instructor, SEED_ROW)
    assert after["verdict"]["tone"] == "good" and after["verdict"]["badge"] == "Verified"
    assert not after["validating"]
    assert "Passed in the sandbox" in instructor.get("/instructor").text


def test_a_lesson_that_does_not_load_cannot_be_validated(authoring: tuple[Server, Path]) -> None:
    server, _ = authoring
    instructor = csrf_client(signed_in(server, "instructor"))
    response = instructor.post(validate_url(f"{COURSE}/03-work-in-progress"))
    assert response.status_code == 409, response.text
    body = response.json()
    assert "does not load" in body["detail"]
    assert body["problems"][0].startswith("lesson.md:2: the front matter is not valid")
    assert body["problems"][0] in body["detail"]


def test_a_starter_that_already_passes_fails_validation(authoring: tuple[Server, Path]) -> None:
    server, _ = authoring
    instructor = csrf_client(signed_in(server, "instructor"))
    row_id = f"{COURSE}/04-solved-already"
    response = instructor.post(validate_url(row_id))
    assert response.status_code == 200, response.text
    verdict = response.json()
    assert not verdict["ok"] and verdict["recorded"]
    assert verdict["problems"] == [
        "starter.py:1: the starter already passes every check, so a learner has nothing to do: "
        "leave its TODOs undone, or add checks for them."
    ]
    shown = row(instructor, row_id)["verdict"]
    assert (shown["tone"], shown["badge"]) == ("bad", "Check failed")
    assert shown["problems"] == verdict["problems"]


# --- what the content check recorded ----------------------------------------------------------


def test_a_recorded_check_reads_verified_then_changed(tmp_path: Path) -> None:
    """The dashboard's reading of `torchdojo content check` results: by the lesson's files."""
    lesson = tmp_path / COURSE / SEED.name
    shutil.copytree(SEED, lesson, ignore=shutil.ignore_patterns("__pycache__"))
    records = CheckRecords(tmp_path / "var" / "content-check.json")
    assert check_verdict(lesson, records).badge == "Loads"  # never checked

    key, digest = record_key(lesson), lesson_digest(lesson)
    when = "2025-05-04T13:02:00+00:00"
    records.add({key: CheckRecord(digest=digest, ok=True, problems=[], checked_at=when)})
    verified = check_verdict(lesson, records)
    assert (verified.tone, verified.badge) == ("good", "Verified")
    assert "4 May 2025, 13:02 UTC" in verified.detail

    (lesson / "starter.py").write_text((lesson / "starter.py").read_text() + "# edited\n")
    changed = check_verdict(lesson, records)
    assert (changed.tone, changed.badge) == ("warn", "Changed")
    assert "passed 4 May 2025" in changed.detail

    problem = "checks.py:12: the solution fails check “x”: no. Fix the solution or the check."
    records.add(
        {key: CheckRecord(lesson_digest(lesson), ok=False, problems=[problem], checked_at=when)}
    )
    failed = check_verdict(lesson, records)
    assert (failed.badge, str(failed.problems[0])) == ("Check failed", problem)
    # Undoing the edit finds the earlier result again.
    (lesson / "starter.py").write_text((SEED / "starter.py").read_text())
    assert check_verdict(lesson, records).badge == "Verified"
