"""A new learner, in a real headless Chromium driven by Playwright, goes through the seed lesson:
sign up, see the lesson and the starter, Check and read the failing hints, paste the solution,
Check again and see every check pass with the model summary and a loss curve, type in the
editor, see it saved, reload and find the typed text. Screenshots go to artifacts/screenshots/
(with TORCHDOJO_DOC_SCREENSHOTS=1, the README's three also to docs/)."""

from __future__ import annotations

import os
import shutil
from typing import Any

from tests.support.browser import SHOTS, watch
from tests.support.servers import ROOT, Server

SEED = ROOT / "content" / "intro-to-deep-learning" / "01-deep-learning-introduction"
LESSON_URL = "/courses/intro-to-deep-learning/deep-learning-introduction"
DOCS = ROOT / "docs"


def wait_for_status(page: object, timeout_ms: int = 120_000) -> str:
    page.wait_for_function(  # type: ignore[attr-defined]
        "() => { const s = document.querySelector('[data-run-status]');"
        " return s && !"
        "['', 'running', 'idle', 'queued', 'starting'].includes(s.dataset.runStatus); }",
        timeout=timeout_ms,
    )
    return page.get_attribute("[data-run-status]", "data-run-status")  # type: ignore[attr-defined, no-any-return]


def set_code(page: object, code: str) -> None:
    page.evaluate("code => window.torchdojo.editor.setCode(code)", code)  # type: ignore[attr-defined]


def screenshots(page: Any) -> None:
    """The finished Check for the README: the page on its Tests tab, then the output pane on
    the Model tab and on the Loss tab."""
    page.click("#tab-tests")
    page.wait_for_timeout(200)
    shots = [("lesson-page.png", None)]
    page.screenshot(path=str(SHOTS / "lesson-page.png"), full_page=True)
    # The output pane as tall as it goes (the splitter's Home key), for the whole model.
    page.focus("[data-splitter=output]")
    page.keyboard.press("Home")
    bar = page.locator(".action-bar").bounding_box()
    output = page.locator(".output-tabs").bounding_box()
    pane = {
        "x": output["x"],
        "y": bar["y"],
        "width": output["width"],
        "height": output["y"] + output["height"] - bar["y"],
    }
    for tab, name in (("model", "lesson-model.png"), ("loss", "lesson-loss.png")):
        page.click(f"#tab-{tab}")
        page.wait_for_timeout(300)  # the tab's first paint (uPlot measures its box)
        page.screenshot(path=str(SHOTS / name), clip=pane)
        shots.append((name, pane))
    # The legend names the curve with its last value (not "—": the cursor is off the chart).
    assert "—" not in page.inner_text("#loss-chart .u-legend")
    if os.environ.get("TORCHDOJO_DOC_SCREENSHOTS") == "1":
        for name, _ in shots:
            shutil.copyfile(SHOTS / name, DOCS / name)


def test_learner_goes_through_the_seed_lesson(app_server: Server, browser: object) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    context = browser.new_context(viewport={"width": 1440, "height": 900})  # type: ignore[attr-defined]
    context.set_default_timeout(120_000)  # a loaded CI machine may queue runs for a while
    page = context.new_page()
    errors = watch(page)

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
    assert tests.locator(".test-row[data-status=failed]").count() >= 1
    # A hint a beginner can act on, in the failing check's hint line (not its message).
    hints = tests.locator(".test-row[data-status=failed] .test-hint").all_inner_texts()
    assert any("nn.Linear" in hint for hint in hints), hints
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
    screenshots(page)

    # The learner types (keys, not a script), waits for "Saved", reloads: the typed text is
    # there. (The Check above saved the draft too: this line came after it.)
    page.click("#editor .cm-content")
    page.keyboard.press("Control+End")
    page.keyboard.type("\n# typed after the check\n")
    page.wait_for_function(
        "() => { const s = document.querySelector('#save-state');"
        " return s.dataset.state === 'saved' && s.textContent.trim() === 'Saved'; }"
    )
    page.reload()
    page.wait_for_selector("#editor .cm-content")
    assert "# typed after the check" in page.input_value("textarea[name=code]")
    # The editor shows the restored draft too (read through its API: CodeMirror renders only
    # the visible lines).
    code = page.evaluate("() => window.torchdojo.editor.getCode()")
    assert "nn.ReLU()" in code and "# typed after the check" in code
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
