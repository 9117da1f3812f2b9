"""A new learner, in a real headless Chromium, walks the whole course with the lesson pager:
every lesson shows its text, the editor with its starter and the hint button, without a page
error. On the overfitting lesson the learner checks the solution, sees every check pass and
the Loss tab's chart with both a training and a validation curve; the course index then shows
that lesson, and only that one, as passed. Screenshots go to artifacts/screenshots/."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest

from app.content import Lesson, load_courses
from tests.browser.test_lesson_flow import wait_for_status
from tests.support.browser import SHOTS
from tests.support.servers import ROOT, Server

COURSE = next(c for c in load_courses(ROOT / "content") if c.slug == "intro-to-deep-learning")
CHECKED = "overfitting"  # the one lesson checked on the way: its chart has train and val curves
TIMEOUT_MS = 120_000  # a loaded 2-core machine may queue the run for a while


@pytest.fixture
def page(app_server: Server, browser: Any) -> Iterator[Any]:
    """A fresh browser page (1440x900) that records in `page.errors` its script errors and
    every resource it asked for and did not get (a missing icon, stylesheet or chunk)."""
    context = browser.new_context(viewport={"width": 1440, "height": 900})
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    # Chromium reports a failed load (the favicon's too, which no request event shows) as a
    # console error.
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.errors = errors
    yield page
    context.close()


def lesson_url(server: Server, lesson: Lesson) -> str:
    return f"{server.url}/courses/{COURSE.slug}/{lesson.slug}"


def first_heading(lesson: Lesson) -> str:
    """The first `## ` heading of the lesson's Markdown: proof its body was rendered."""
    text = (lesson.path / "lesson.md").read_text()
    heading = next(line[3:] for line in text.splitlines() if line.startswith("## "))
    return re.sub(r"[`*]", "", heading).strip()  # as rendered: no inline Markdown marks


def assert_lesson_shown(page: Any, server: Server, lesson: Lesson) -> None:
    page.wait_for_url(lesson_url(server, lesson))
    page.wait_for_selector("#editor .cm-content")  # CodeMirror took over the textarea
    assert page.inner_text("#lesson h1").strip() == lesson.title
    headings = [h.rstrip("¶ \n") for h in page.locator("#lesson h2").all_inner_texts()]
    assert first_heading(lesson) in headings, (lesson.slug, headings)
    assert page.locator("#editor .cm-content").count() == 1
    code = page.evaluate("() => window.torchdojo.editor.getCode()")
    assert code.strip() == lesson.starter.strip(), f"{lesson.slug}: the editor is not the starter"
    hint = page.locator("#show-hint")
    assert hint.is_visible() and hint.is_enabled(), lesson.slug
    assert re.fullmatch(r"Show a hint \(\d+ left\)", hint.inner_text().strip()), lesson.slug
    assert not page.errors, (lesson.slug, page.errors)


def check_the_solution(page: Any, lesson: Lesson) -> None:
    """Paste the solution, press Check, see every check pass and both curves on the chart."""
    page.evaluate("code => window.torchdojo.editor.setCode(code)", lesson.solution)
    page.click("#check")
    assert wait_for_status(page, TIMEOUT_MS) == "completed"
    total = len(lesson.check_infos)
    assert total >= 2
    tests = page.locator("#tests")
    assert f"{total} of {total} passed" in tests.inner_text()
    assert tests.locator(".test-row[data-status=passed]").count() == total

    page.click("#tab-loss")
    chart = page.locator("#loss-chart")
    assert chart.is_visible()
    page.wait_for_selector("#loss-chart .uplot canvas")
    series = (chart.get_attribute("data-series") or "").split(",")
    assert series == ["loss (train)", "loss (val)"], series
    # Both curves have their points: the solution trains for dozens of epochs before stopping.
    assert int(chart.get_attribute("data-points") or 0) >= 2 * 20
    # The cursor is off the chart: the legend names both curves with their latest values
    # (its ": " is CSS, not text).
    legend = page.inner_text("#loss-chart .u-legend")
    for split in ("train", "val"):
        assert re.search(rf"loss \({split}\)\W*\d+\.\d{{4}}", legend), legend
    page.wait_for_timeout(300)  # the tab's first paint
    page.screenshot(path=str(SHOTS / "course-walk-overfitting-loss.png"))
    # The run's outcome and the chart: from the Run/Check bar to the bottom of the output panel.
    bar = page.locator(".action-bar").bounding_box()
    output = page.locator(".output-tabs").bounding_box()
    page.screenshot(
        path=str(SHOTS / "course-walk-loss-chart.png"),
        clip={
            "x": output["x"],
            "y": bar["y"],
            "width": output["width"],
            "height": output["y"] + output["height"] - bar["y"],
        },
    )


def test_a_new_learner_walks_the_whole_course(app_server: Server, page: Any) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    lessons = COURSE.lessons
    assert [lesson.number for lesson in lessons] == list(range(1, len(lessons) + 1))
    assert CHECKED in [lesson.slug for lesson in lessons]

    page.goto(f"{app_server.url}/signup")
    page.fill("input[name=email]", "course.walker@example.com")
    page.fill("input[name=password]", "a long enough password")
    page.click("button[type=submit]")
    page.wait_for_url(f"{app_server.url}/")

    cards = page.locator(f"#course-{COURSE.slug} .lesson-card")
    assert cards.count() == len(lessons)
    assert page.locator(f"#course-{COURSE.slug} [data-status=passed]").count() == 0
    cards.first.locator("a.lesson-link").click()

    # Forward with "Next →", through every lesson.
    for i, lesson in enumerate(lessons):
        assert_lesson_shown(page, app_server, lesson)
        assert page.locator(".lesson-pager a[rel=prev]").count() == (1 if i else 0)
        if lesson.slug == CHECKED:
            check_the_solution(page, lesson)
        next_link = page.locator(".lesson-pager a[rel=next]")
        if i + 1 < len(lessons):
            assert lessons[i + 1].title in next_link.inner_text()
            next_link.click()
    # The last lesson leads back to the course index instead.
    assert page.locator(".lesson-pager a[rel=next]").count() == 0
    assert page.locator(".lesson-pager a.pager-next[href='/']").count() == 1

    # Back with "← Previous", to the checked lesson: its code is the learner's, not the starter.
    for lesson in reversed(lessons[: len(lessons) - 1]):
        page.click(".lesson-pager a[rel=prev]")
        page.wait_for_url(lesson_url(app_server, lesson))
        page.wait_for_selector("#editor .cm-content")
        assert page.inner_text("#lesson h1").strip() == lesson.title
        if lesson.slug == CHECKED:
            code = page.evaluate("() => window.torchdojo.editor.getCode()")
            assert code.strip() == lesson.solution.strip()
            break

    page.goto(f"{app_server.url}/")
    for card, lesson in zip(cards.all(), lessons, strict=True):
        assert lesson.title in card.inner_text()
        status = card.locator("[data-status]").get_attribute("data-status")
        assert status == ("passed" if lesson.slug == CHECKED else "new"), (lesson.slug, status)
    assert f"1 of {len(lessons)} passed" in page.inner_text(f"#course-{COURSE.slug}")
    page.screenshot(path=str(SHOTS / "course-walk-index.png"), full_page=True)
    assert not page.errors, page.errors
