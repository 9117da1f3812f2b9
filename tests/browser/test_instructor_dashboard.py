"""An instructor, in a real headless Chromium, watches the dashboard while a learner (over the
HTTP API) checks the seed lesson's starter: the numbers change on the page without a reload.
Then the instructor previews a lesson while its files are edited, broken and fixed.
Screenshots go to artifacts/screenshots/."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from app.auth import create_user
from app.db import make_engine, make_sessionmaker
from tests.support.browser import SHOTS, watch
from tests.support.servers import ROOT, Learner, Server, start_server

COURSE = "intro-to-deep-learning"
SEED = ROOT / "content" / COURSE / "01-deep-learning-introduction"
SEED_ROW = f"{COURSE}/01-deep-learning-introduction"
EMAIL, PASSWORD = "teacher@example.com", "a long enough password"


@pytest.fixture(scope="module")
def app_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, Path]]:
    """The app over a copy of the course (to edit), with an instructor account."""
    if not (ROOT / "static" / "dist" / "app.js").exists():
        pytest.fail("the browser bundle is missing: run `make setup` (npm ci && npm run build)")
    tmp = tmp_path_factory.mktemp("instructor")
    course = tmp / "content" / COURSE
    shutil.copytree(SEED.parent, course, ignore=shutil.ignore_patterns("__pycache__"))
    server = start_server(
        f"sqlite:///{tmp / 'app.sqlite3'}", tmp, TORCHDOJO_CONTENT_DIR=str(tmp / "content")
    )
    engine = make_engine(server.database_url)
    with make_sessionmaker(engine)() as session:
        create_user(session=session, email=EMAIL, password=PASSWORD, role="instructor")
    engine.dispose()
    yield server, course
    server.process.terminate()
    server.process.wait(30)


@pytest.fixture
def page(app_server: tuple[Server, Path], browser: Any) -> Iterator[object]:
    """A signed-in instructor's page."""
    server, _ = app_server
    context = browser.new_context(viewport={"width": 1440, "height": 900})
    context.set_default_timeout(120_000)  # a loaded machine may queue the learner's run
    page = context.new_page()
    errors = watch(page)
    page.goto(f"{server.url}/instructor")  # signed out: to the sign-in form, and back
    page.fill("input[name=email]", EMAIL)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{server.url}/instructor")
    yield page
    assert not errors, errors
    context.close()


def cell(page: object, row: str, field: str) -> str:
    selector = f'[data-lesson="{row}"] [data-field="{field}"]'
    return page.inner_text(selector).strip()  # type: ignore[attr-defined, no-any-return]


def test_the_dashboard_shows_a_learners_check_without_a_reload(
    app_server: tuple[Server, Path], page: object
) -> None:
    server, _ = app_server
    SHOTS.mkdir(parents=True, exist_ok=True)
    assert page.locator("a[href='/instructor'][aria-current=page]").count() == 1  # type: ignore[attr-defined]
    assert page.locator("[data-lesson]").count() == 7  # type: ignore[attr-defined]
    assert (cell(page, SEED_ROW, "started"), cell(page, SEED_ROW, "finished")) == ("0", "0")
    assert "No failed checks yet" in cell(page, SEED_ROW, "failing")
    page.wait_for_selector("#dashboard-live[data-state=live]")  # type: ignore[attr-defined]
    page.evaluate("() => { window.sameDocument = true; }")  # type: ignore[attr-defined]

    learner = Learner(server.url).sign_up()
    response = learner.post(
        "/api/runs",
        json={
            "lesson": f"{COURSE}/deep-learning-introduction",
            "code": (SEED / "starter.py").read_text(),
            "mode": "check",
        },
    )
    assert response.status_code == 201, response.text
    events = learner.events(response.json()["id"])
    first_failure = next(e for e in events if e["type"] == "test" and e["status"] == "failed")

    page.wait_for_function(  # type: ignore[attr-defined]
        """([row, name]) => {
            const cell = (field) =>
                document.querySelector(`[data-lesson="${row}"] [data-field="${field}"]`);
            return cell("started").textContent.trim() === "1"
                && cell("failing").textContent.includes(name);
        }""",
        arg=[SEED_ROW, first_failure["name"]],
    )
    assert page.evaluate("() => window.sameDocument === true")  # type: ignore[attr-defined]
    failing = cell(page, SEED_ROW, "failing")
    assert first_failure["message"] in failing and "1× · 1 learner" in failing
    assert cell(page, SEED_ROW, "finished") == "0"
    page.wait_for_timeout(2000)  # type: ignore[attr-defined]  # the changed cells' glow fades
    page.screenshot(path=str(SHOTS / "instructor-dashboard.png"), full_page=True)  # type: ignore[attr-defined]


def test_the_preview_follows_edits_breaks_and_fixes(
    app_server: tuple[Server, Path], page: object
) -> None:
    _, course = app_server
    page.click(f'[data-lesson="{COURSE}/02-tensors-and-autograd"] a')  # type: ignore[attr-defined]
    page.wait_for_selector("#preview-live[data-state=live]")  # type: ignore[attr-defined]
    title = page.inner_text("#lesson h1")  # type: ignore[attr-defined]
    page.evaluate("() => { window.sameDocument = true; }")  # type: ignore[attr-defined]

    folder = course / "02-tensors-and-autograd"
    lesson_md, checks = folder / "lesson.md", folder / "checks.py"
    original_md, original_checks = lesson_md.read_text(), checks.read_text()
    try:
        save(lesson_md, original_md.replace(f"title: {title}", "title: Tensors, live", 1))
        page.wait_for_selector("#lesson h1:text-is('Tensors, live')")  # type: ignore[attr-defined]

        an_import = next(line for line in original_checks.splitlines() if line.startswith("import"))
        save(checks, original_checks.replace(an_import, an_import + " +", 1))
        page.wait_for_selector(".preview-broken:has-text('Python syntax error')")  # type: ignore[attr-defined]
        assert page.get_attribute("#preview-live", "data-state") == "broken"  # type: ignore[attr-defined]
        assert "checks.py:" in page.inner_text(".preview-broken")  # type: ignore[attr-defined]
        page.screenshot(path=str(SHOTS / "instructor-preview-broken.png"))  # type: ignore[attr-defined]

        save(checks, original_checks)
        page.wait_for_selector("#lesson h1:text-is('Tensors, live')")  # type: ignore[attr-defined]
        assert page.get_attribute("#preview-live", "data-state") == "live"  # type: ignore[attr-defined]
        assert page.evaluate("() => window.sameDocument === true")  # type: ignore[attr-defined]
        page.screenshot(path=str(SHOTS / "instructor-preview.png"))  # type: ignore[attr-defined]
    finally:
        save(lesson_md, original_md)
        save(checks, original_checks)


def save(path: Path, text: str) -> None:
    """Save as editors do: write a new file beside it, then rename it over the old one, so the
    preview never reads a half-written (truncated) file."""
    partial = path.with_name(f".{path.name}.saving")
    partial.write_text(text)
    partial.replace(path)
