"""The lesson page's features, each in a real headless Chromium against the real app (its
sandboxed runner included): keyboard shortcuts, the editor's line numbers and TODO marks, the
draggable split, Stop, Reset, Show solution, the Model tab's layer diagram; a run that waits
for a free runner says so; a reload during a run follows it on; unsaved code never passes from
one learner to the next on a shared browser; and without JavaScript, a run posted while signed
out keeps its code through sign-in. Screenshots go to artifacts/screenshots/."""

from __future__ import annotations

from typing import Any

import pytest

from tests.browser.test_lesson_flow import LESSON_URL, SEED, wait_for_status
from tests.support.browser import SHOTS, watch
from tests.support.servers import Server

TIMEOUT_MS = 120_000  # a loaded 2-core machine may queue runs for a while
PASSWORD = "a long enough password"
# A `while True` that prints, slowly (no core spinning): it ends only when stopped.
FOREVER = (
    "import time\n"
    "print('before the reload', flush=True)\n"
    "tick = 0\n"
    "while True:\n"
    "    tick += 1\n"
    "    print(f'tick {tick}', flush=True)\n"
    "    time.sleep(0.2)\n"
)


def new_page(browser: Any, **options: Any) -> Any:
    context = browser.new_context(viewport={"width": 1440, "height": 900}, **options)
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    watch(page)
    return page


def sign_up(page: Any, server: Server, email: str) -> None:
    page.goto(f"{server.url}/signup")
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{server.url}/")


def open_lesson(page: Any, server: Server) -> None:
    page.goto(f"{server.url}{LESSON_URL}")
    page.wait_for_selector("#editor .cm-content")


def code_of(page: Any) -> str:
    return page.evaluate("() => window.torchdojo.editor.getCode()")  # type: ignore[no-any-return]


def set_code(page: Any, code: str) -> None:
    page.evaluate("code => window.torchdojo.editor.setCode(code)", code)


def status_of(page: Any) -> tuple[str, str]:
    element = page.locator("[data-run-status]")
    return element.get_attribute("data-run-status"), element.inner_text().strip()


def wait_status_is(page: Any, status: str) -> None:
    page.wait_for_function(
        "s => document.querySelector('[data-run-status]').dataset.runStatus === s", arg=status
    )


def test_editor_keys_split_reset_solution_and_model(app_server: Server, browser: Any) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page = new_page(browser)
    sign_up(page, app_server, "features@example.com")
    open_lesson(page, app_server)
    starter = (SEED / "starter.py").read_text()
    assert code_of(page).strip() == starter.strip()

    # Line numbers, in order from 1.
    numbers = page.locator(".cm-lineNumbers .cm-gutterElement").all_inner_texts()
    numbers = [n for n in numbers if n.strip().isdigit()]
    assert numbers[:5] == ["1", "2", "3", "4", "5"], numbers
    # TODO lines carry a class (and a gutter dot): exactly the lines with a numbered TODO.
    page.evaluate("() => window.torchdojo.editor.goToLine(28)")
    marked = page.locator(".cm-line.cm-todo-line").all_inner_texts()
    assert marked and all("TODO" in line for line in marked), marked
    assert any(line.lstrip().startswith("# TODO 1") for line in marked), marked
    assert page.locator(".cm-todo-marker").count() >= 1

    # The split between the lesson and the editor follows a drag, and is remembered.
    lesson_pane = page.locator(".pane-lesson")
    before = lesson_pane.bounding_box()["width"]
    handle = page.locator("[data-splitter=lesson]").bounding_box()
    x, y = handle["x"] + handle["width"] / 2, handle["y"] + handle["height"] / 2
    page.mouse.move(x, y)
    page.mouse.down()
    page.mouse.move(x + 120, y, steps=6)
    page.mouse.up()
    after = lesson_pane.bounding_box()["width"]
    assert after - before == pytest.approx(120, abs=12), (before, after)
    assert page.evaluate("() => localStorage.getItem('torchdojo:split:lesson')")
    page.reload()
    page.wait_for_selector("#editor .cm-content")
    assert lesson_pane.bounding_box()["width"] == pytest.approx(after, abs=2)

    # Ctrl+Enter runs the code from the editor; Meta+Enter (Cmd on a Mac) does too.
    set_code(page, "print('ran with the keyboard')\n")
    page.click("#editor .cm-content")
    page.keyboard.press("Control+Enter")
    assert wait_for_status(page) == "completed"
    assert "ran with the keyboard" in page.inner_text("#console")
    set_code(page, "print('ran with meta')\n")
    page.click("#editor .cm-content")
    page.keyboard.press("Meta+Enter")
    assert wait_for_status(page) == "completed"
    assert "ran with meta" in page.inner_text("#console")
    assert "ran with the keyboard" not in page.inner_text("#console")  # a new run

    # Reset to the starter asks first; declined, nothing changes; accepted, the starter is back.
    asked: list[str] = []

    def answer(accept: bool) -> None:
        def handler(dialog: Any) -> None:
            asked.append(dialog.message)
            dialog.accept() if accept else dialog.dismiss()

        page.once("dialog", handler)

    answer(False)
    page.click("#reset")
    assert "starter" in asked[-1].lower()
    assert "ran with meta" in code_of(page)
    answer(True)
    page.click("#reset")
    assert code_of(page) == starter

    # Show solution: closed before any check; a Check that fails opens it, after a question.
    solution = page.locator("#solution")
    assert solution.is_disabled()
    page.click("#check")
    assert wait_for_status(page) == "completed"
    assert page.locator("#tests .test-row[data-status=failed]").count() >= 1
    assert solution.is_enabled()
    answer(True)
    solution.click()
    assert "solution" in asked[-1].lower()
    dialog = page.locator("#solution-dialog")
    dialog.wait_for(state="visible")
    # The viewer draws the lines in view: the solution's first line is one of them.
    first_line = (SEED / "solution.py").read_text().splitlines()[0]
    assert first_line in dialog.locator(".cm-content").inner_text()
    page.click("#solution-dialog [data-action=use]")
    assert code_of(page).strip() == (SEED / "solution.py").read_text().strip()

    # The Model tab: one box per layer (and one for the input) in the layer diagram.
    page.click("#run")
    assert wait_for_status(page) == "completed"
    page.click("#tab-model")
    boxes = page.locator("#model-summary .model-diagram .layer-box")
    titles = boxes.locator(".layer-box-title").all_inner_texts()
    assert titles == [
        "Input",
        "Linear 64→64",
        "ReLU",
        "Linear 64→32",
        "ReLU",
        "Linear 32→10",
    ], titles
    page.screenshot(path=str(SHOTS / "features-model.png"))
    assert not page.errors, page.errors
    page.context.close()


def test_queue_reload_and_stop(app_server: Server, browser: Any) -> None:
    """Two learners take both runners (pool of 2); a third waits, and is told its place in line
    (the runner's `queued` event). Then the
    third reloads during a Check and the page follows it on; Stop ends it as cancelled, and a
    Check that never ran its checks does not open the solution."""
    others = []
    for name in ("busy.one", "busy.two"):
        other = new_page(browser)
        sign_up(other, app_server, f"{name}@example.com")
        open_lesson(other, app_server)
        set_code(other, FOREVER)
        other.click("#run")
        wait_status_is(other, "running")  # it has a runner: its `started` came
        others.append(other)

    page = new_page(browser)
    sign_up(page, app_server, "waiting@example.com")
    open_lesson(page, app_server)
    set_code(page, FOREVER)
    page.click("#check")
    wait_status_is(page, "queued")
    assert status_of(page) == ("queued", "1st in line for a runner…")
    page.screenshot(path=str(SHOTS / "features-queued.png"))

    others[0].click("#stop")  # a runner comes free (a fresh sandbox warms up for the next run)
    assert wait_for_status(others[0]) == "cancelled"
    wait_status_is(page, "running")
    assert status_of(page) == ("running", "Checking your code…")
    page.wait_for_function("() => document.querySelector('#console').innerText.includes('tick 2')")

    # A reload during the run: the page follows it on, from the start.
    page.reload()
    page.wait_for_selector("#editor .cm-content")
    wait_status_is(page, "running")
    console = page.locator("#console")
    assert "before the reload" in console.inner_text()
    ticks = int(console.inner_text().rsplit("tick ", 1)[1].split()[0])
    page.wait_for_function(
        "n => document.querySelector('#console').innerText.includes(`tick ${n + 3}`)", arg=ticks
    )
    assert page.locator("#stop").is_enabled()
    assert page.locator("#run").is_disabled()

    page.click("#stop")
    assert wait_for_status(page) == "cancelled"
    assert status_of(page)[1] == "Stopped: you cancelled the run."
    assert page.locator("#run").is_enabled()
    assert page.locator("#solution").is_disabled()  # no check ran: the server would refuse
    others[1].click("#stop")
    assert wait_for_status(others[1]) == "cancelled"
    for p in [*others, page]:
        assert not p.errors, p.errors
        p.context.close()


def unsaved_keys(page: Any) -> list[str]:
    return page.evaluate(  # type: ignore[no-any-return]
        "() => Object.keys(localStorage).filter(k => k.startsWith('torchdojo:unsaved:'))"
    )


def test_unsaved_code_does_not_pass_to_the_next_learner(app_server: Server, browser: Any) -> None:
    page = new_page(browser)
    sign_up(page, app_server, "learner.a@example.com")
    open_lesson(page, app_server)
    starter = code_of(page)
    # The server takes no draft: only this browser holds what A types.
    page.route("**/api/drafts/**", lambda route: route.abort())
    page.click("#editor .cm-content")
    page.keyboard.press("Control+End")
    page.keyboard.type("\nA_SECRET = 'typed by learner A'\n")
    page.wait_for_function("() => document.querySelector('#save-state').dataset.state === 'error'")
    assert len(unsaved_keys(page)) == 1, unsaved_keys(page)

    page.click("form[action='/logout'] button")
    page.wait_for_url(f"{app_server.url}/")
    page.unroute("**/api/drafts/**")
    assert unsaved_keys(page) == []

    page.click("a:has-text('Sign up')")
    page.fill("input[name=email]", "learner.b@example.com")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    open_lesson(page, app_server)
    page.wait_for_timeout(1000)  # time for a restore and its autosave, if there were one
    assert "A_SECRET" not in code_of(page)
    assert code_of(page) == starter
    assert page.inner_text("#save-state").strip() in ("", "Saved")
    assert not page.errors, page.errors
    page.context.close()


def test_without_javascript_a_signed_out_run_keeps_its_code(
    app_server: Server, browser: Any
) -> None:
    page = new_page(browser, java_script_enabled=False)
    page.goto(f"{app_server.url}{LESSON_URL}")
    page.fill("textarea[name=code]", "print('kept through sign-in', 6 * 7)")
    page.click("#run")
    page.wait_for_load_state()
    assert "Your code from" in page.inner_text("#kept-code-note")
    # A wrong password: the error, and the code still carried.
    page.fill("input[name=email]", "no.js.late@example.com")
    page.fill("input[name=password]", "not the password at all")
    page.click("button[value=existing]")
    assert "Wrong email or password" in page.inner_text("#auth-error")
    assert "kept through sign-in" in page.input_value("input[name=code]")
    # No account yet: create one with the same form.
    page.fill("input[name=password]", PASSWORD)
    page.click("button[value=new]")
    page.wait_for_url(f"{app_server.url}{LESSON_URL}?kept=1")
    assert "your code is saved" in page.inner_text(".messages")
    assert "kept through sign-in" in page.input_value("textarea[name=code]")
    page.click("#run")
    page.wait_for_load_state()
    assert "kept through sign-in 42" in page.inner_text("#console")

    # A failed Check posted without JavaScript opens the solution, as on the normal page.
    assert page.get_attribute("#solution", "disabled") is not None
    page.fill("textarea[name=code]", (SEED / "starter.py").read_text())
    page.click("#check")
    page.wait_for_load_state()
    assert page.get_attribute("[data-run-status]", "data-run-status") == "completed"
    assert page.locator("#tests .test-row[data-status=failed]").count() >= 1
    assert page.get_attribute("#solution", "disabled") is None
    page.context.close()
