"""A new learner, in a real headless Chromium driven by Playwright, goes through the seed lesson:
sign up, see the lesson and the starter, Check and read the failing hints, paste the solution,
Check again and see every check pass with the model summary and a loss curve, reload and find
the draft restored. Screenshots go to artifacts/screenshots/."""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest

from tests.app.conftest import ROOT, Server

playwright_api = pytest.importorskip("playwright.sync_api")

SEED = ROOT / "content" / "intro-to-deep-learning" / "01-deep-learning-introduction"
LESSON_URL = "/courses/intro-to-deep-learning/deep-learning-introduction"
SHOTS = ROOT / "artifacts" / "screenshots"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# Headless, and quiet: this machine has no network, so Chromium must not try to reach out.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    with playwright_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True
        )
        yield browser
        browser.close()


def wait_for_status(page: object, timeout_ms: int = 120_000) -> str:
    page.wait_for_function(  # type: ignore[attr-defined]
        "() => { const s = document.querySelector('[data-run-status]');"
        " return s && !['', 'running', 'idle', 'queued'].includes(s.dataset.runStatus); }",
        timeout=timeout_ms,
    )
    return page.get_attribute("[data-run-status]", "data-run-status")  # type: ignore[attr-defined, no-any-return]


def set_code(page: object, code: str) -> None:
    page.evaluate("code => window.torchdojo.editor.setCode(code)", code)  # type: ignore[attr-defined]


def test_learner_goes_through_the_seed_lesson(app_server: Server, browser: object) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    context = browser.new_context(viewport={"width": 1440, "height": 900})  # type: ignore[attr-defined]
    context.set_default_timeout(120_000)  # a loaded CI machine may queue runs for a while
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))

    page.goto(f"{app_server.url}/signup")
    page.fill("input[name=email]", "new.learner@example.com")
    page.fill("input[name=password]", "a long enough password")
    page.click("button[type=submit]")
    page.wait_for_url(f"{app_server.url}/")
    page.goto(f"{app_server.url}{LESSON_URL}")

    lesson = page.locator("#lesson")
    assert "What is Deep Learning?" in lesson.inner_text()
    assert lesson.locator("aside.callout").count() == 2
    assert "TODO 1" in page.input_value("textarea[name=code]")
    assert page.locator("#editor .cm-content").count() == 1  # CodeMirror took over the textarea

    page.click("#check")
    assert wait_for_status(page) == "completed"
    tests = page.locator("#tests")
    assert "failed" in tests.inner_text().lower() or "✗" in tests.inner_text()
    assert "nn.Linear" in tests.inner_text()  # a hint a beginner can act on
    page.screenshot(path=str(SHOTS / "lesson-starter-checked.png"))

    set_code(page, (SEED / "solution.py").read_text())
    page.click("#check")
    assert wait_for_status(page) == "completed"
    total = len((SEED / "checks.py").read_text().split("@check(")) - 1
    assert f"{total} of {total} passed" in tests.inner_text()
    summary_rows = page.locator("#model-summary table tbody tr")
    assert summary_rows.count() >= 5
    assert "Linear" in page.locator("#model-summary").inner_text()
    assert int(page.get_attribute("#loss-chart", "data-points") or 0) >= 2
    page.click("[data-tab=loss], #tab-loss, button:has-text('Loss')")
    page.wait_for_timeout(300)
    page.screenshot(path=str(SHOTS / "lesson-solution-checked.png"))

    page.reload()
    page.wait_for_selector("#editor .cm-content")
    assert "def build_model" in page.input_value("textarea[name=code]")
    # The editor shows the restored draft too (read through its API: CodeMirror renders only
    # the visible lines).
    assert "nn.ReLU()" in page.evaluate("() => window.torchdojo.editor.getCode()")
    assert not errors, errors
    context.close()


def test_page_works_without_javascript(app_server: Server, browser: object) -> None:
    context = browser.new_context(java_script_enabled=False)  # type: ignore[attr-defined]
    context.set_default_timeout(120_000)  # the form waits for the run to finish
    page = context.new_page()
    page.goto(f"{app_server.url}/signup")
    page.fill("input[name=email]", "no.js@example.com")
    page.fill("input[name=password]", "a long enough password")
    page.click("button[type=submit]")
    page.goto(f"{app_server.url}{LESSON_URL}")
    assert "What is Deep Learning?" in page.inner_text("#lesson")
    page.fill("textarea[name=code]", "print('no javascript needed')")
    page.click("#run")
    page.wait_for_load_state()
    assert "no javascript needed" in page.inner_text("#console")
    assert page.get_attribute("[data-run-status]", "data-run-status") == "completed"
    context.close()
