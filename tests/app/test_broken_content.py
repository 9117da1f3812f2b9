"""A broken lesson (half-written, bad front matter) is left out; every other page still works."""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import httpx
import pytest

from tests.support.servers import ROOT, Server, start_server


@pytest.fixture(scope="module")
def app_with_broken_lesson(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("broken")
    content = tmp / "content"
    course = content / "intro-to-deep-learning"
    course.mkdir(parents=True)
    shutil.copy(ROOT / "content/intro-to-deep-learning/course.md", course)
    shutil.copytree(
        ROOT / "content/intro-to-deep-learning/01-deep-learning-introduction",
        course / "01-deep-learning-introduction",
    )
    half_written = course / "02-half-written"
    half_written.mkdir()
    (half_written / "starter.py").write_text("print('no lesson.md yet')\n")
    bad_yaml = course / "03-bad-front-matter"
    shutil.copytree(course / "01-deep-learning-introduction", bad_yaml)
    (bad_yaml / "lesson.md").write_text("---\ntitle: [unclosed\n---\nBody\n")
    server = start_server(
        f"sqlite:///{tmp / 'app.sqlite3'}",
        tmp,
        TORCHDOJO_CONTENT_DIR=str(content),
        TORCHDOJO_RUNNER_POOL_SIZE="1",
    )
    yield server
    server.process.terminate()
    server.process.wait(30)


def test_good_lessons_stay_available(app_with_broken_lesson: Server) -> None:
    client = httpx.Client(base_url=app_with_broken_lesson.url)
    index = client.get("/")
    assert index.status_code == 200 and "Deep Learning Introduction" in index.text
    assert "half-written" not in index.text
    assert (
        client.get("/courses/intro-to-deep-learning/deep-learning-introduction").status_code == 200
    )
    missing = client.get("/courses/intro-to-deep-learning/half-written")
    assert missing.status_code == 404 and "no lesson" in missing.json()["detail"]


def test_a_browser_gets_a_readable_error_page(app_with_broken_lesson: Server) -> None:
    page = httpx.get(
        f"{app_with_broken_lesson.url}/courses/intro-to-deep-learning/half-written",
        headers={"Accept": "text/html"},
    )
    assert page.status_code == 404 and page.headers["content-type"].startswith("text/html")
    assert "Back to the courses" in page.text and "no lesson" in page.text
