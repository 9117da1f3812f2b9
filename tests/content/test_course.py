"""The shipped course as a whole: complete, numbered without gaps, every TODO checked and hinted.

Static, from app.content.load_courses: no sandbox, fast. That every solution passes and every
starter fails its checks in the sandbox is test_content_check.test_shipped_content_passes.
"""

from __future__ import annotations

import pytest

from app.content import Course, InvalidContent, Lesson, load_courses, todo_lines
from tests.support.content import ROOT

COURSE = "intro-to-deep-learning"
MIN_LESSONS = 7
MIN_HINTS = 3


@pytest.fixture(scope="module")
def course() -> Course:
    found = [c for c in load_courses(ROOT / "content") if c.slug == COURSE]
    assert found, f"content/{COURSE} is missing or did not load"
    return found[0]


def _lessons() -> list[Lesson]:
    """The lessons, for parametrize; broken content fails in the fixture, not at collection."""
    try:
        found = [c for c in load_courses(ROOT / "content") if c.slug == COURSE]
    except InvalidContent:
        return []
    return found[0].lessons if found else []


def _id(lesson: Lesson) -> str:
    return lesson.path.name


def test_the_course_has_at_least_seven_lessons_numbered_without_gaps(course: Course) -> None:
    numbers = [lesson.number for lesson in course.lessons]
    assert len(numbers) >= MIN_LESSONS, f"{len(numbers)} lessons, want at least {MIN_LESSONS}"
    assert numbers == list(range(1, len(numbers) + 1)), f"lesson numbers {numbers} have gaps"
    assert len({lesson.slug for lesson in course.lessons}) == len(numbers), "duplicate slugs"


@pytest.mark.parametrize("lesson", _lessons(), ids=_id)
def test_every_lesson_has_progressive_hints(lesson: Lesson) -> None:
    hints = lesson.exercise.hints
    assert len(hints) >= MIN_HINTS, (
        f"{lesson.path.name} has {len(hints)} hint(s) in its front matter; give at least "
        f"{MIN_HINTS}, from a nudge to the answer"
    )
    assert all(hint.strip() for hint in hints), f"{lesson.path.name} has an empty hint"
    assert len(set(hints)) == len(hints), f"{lesson.path.name} repeats a hint"


@pytest.mark.parametrize("lesson", _lessons(), ids=_id)
def test_every_check_has_a_hint(lesson: Lesson) -> None:
    assert lesson.check_infos, f"{lesson.path.name} has no checks"
    for info in lesson.check_infos:
        assert info.title.strip(), f"{lesson.path.name}: {info.function} has an empty title"
        assert info.hint.strip(), f"{lesson.path.name}: {info.function} has an empty hint"


@pytest.mark.parametrize("lesson", _lessons(), ids=_id)
def test_every_todo_is_numbered_and_has_a_check(lesson: Lesson) -> None:
    todos = sorted(todo_lines(lesson.starter))
    assert todos, f"{lesson.path.name}/starter.py has no numbered TODOs (# TODO 1: ...)"
    assert todos == list(range(1, len(todos) + 1)), (
        f"{lesson.path.name}/starter.py numbers its TODOs {todos}: number them 1, 2, 3, ..."
    )
    checked = {info.todo for info in lesson.check_infos if info.todo is not None}
    unchecked = [n for n in todos if n not in checked]
    assert not unchecked, (
        f"{lesson.path.name}: no check is tied to TODO {unchecked} (name one test_todoN_...)"
    )


@pytest.mark.parametrize("lesson", _lessons(), ids=_id)
def test_the_solution_has_no_todo_left_undone(lesson: Lesson) -> None:
    # The solution keeps the starter's TODO comments as signposts, but no placeholder.
    assert "placeholder" not in lesson.solution, f"{lesson.path.name}/solution.py has a placeholder"
