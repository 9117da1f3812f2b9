"""Loading lessons: the seed lesson keeps every line of its text, models, caching."""

from __future__ import annotations

import os
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

from app.content import InvalidContent, load_courses, load_lesson
from runner.protocol import SandboxLimits, SummarySpec
from tests.content.conftest import ROOT, SEED_LESSON, edit

SEED_TEXT = Path(__file__).parent / "seed_000.txt"


class _Text(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []

    def handle_data(self, data: str) -> None:
        self.parts.append(data)


def _text(html: str) -> str:
    """HTML as plain text, whitespace normalised."""
    parser = _Text()
    parser.feed(html)
    return " ".join(" ".join(parser.parts).split())


def test_seed_lesson_keeps_every_line_of_the_seed_text_in_order() -> None:
    lesson = load_lesson(ROOT / "content" / "intro-to-deep-learning" / SEED_LESSON)
    rendered = _text(f"<h1>{lesson.title}</h1>{lesson.body_html}")
    position = 0
    for raw in SEED_TEXT.read_text(encoding="utf-8").splitlines():
        line = " ".join(raw.removeprefix("- ").split())
        if not line:
            continue
        found = rendered.find(line, position)
        assert found >= 0, f"seed line missing or out of order: {line!r}"
        position = found + len(line)


def test_seed_lesson_ends_with_the_exercise_and_its_todo_list() -> None:
    lesson = load_lesson(ROOT / "content" / "intro-to-deep-learning" / SEED_LESSON)
    exercise = lesson.body_html.rsplit("<h2", 1)[1]
    assert "Exercise: Build Your First Deep Learning Model" in exercise
    assert len(re.findall(r"<li>", exercise.split("<ol>")[1])) == 6  # one item per TODO
    assert lesson.body_html.count('<aside class="callout callout-tip">') == 2


def test_seed_course_and_lesson_models() -> None:
    [course] = load_courses(ROOT / "content")
    assert (course.slug, course.title) == ("intro-to-deep-learning", "Intro to Deep Learning")
    lesson = course.lesson("deep-learning-introduction")
    assert lesson is not None and lesson.number == 1
    assert lesson.title == "Deep Learning Introduction"
    assert lesson.exercise.summary == SummarySpec(factory="build_model", input_size=[1, 64])
    assert lesson.exercise.limits == SandboxLimits(wall_s=60)
    assert len(lesson.exercise.hints) >= 3
    assert [info.todo for info in lesson.check_infos] == [1, 2, None, 3, 4, 4, 5, 5, 6]
    request = lesson.run_request("print(1)", mode="check")
    assert request.checks == lesson.checks and request.summary == lesson.exercise.summary
    assert lesson.run_request("print(1)").checks is None  # plain runs carry no checks


def test_lessons_come_in_number_order(course: Path) -> None:
    second = course / "02-more"
    second.mkdir()
    for name in ("starter.py", "solution.py", "checks.py", "lesson.md"):
        (second / name).write_text((course / SEED_LESSON / name).read_text())
    (course / "10-last").mkdir()
    for name in ("starter.py", "solution.py", "checks.py", "lesson.md"):
        (course / "10-last" / name).write_text((course / SEED_LESSON / name).read_text())
    [loaded] = load_courses(course.parent)
    assert [(lesson.number, lesson.slug) for lesson in loaded.lessons] == [
        (1, "deep-learning-introduction"),
        (2, "more"),
        (10, "last"),
    ]


def test_edits_are_picked_up_and_unchanged_files_are_not_reparsed(course: Path) -> None:
    lesson_md = course / SEED_LESSON / "lesson.md"
    first = load_courses(course.parent)[0].lessons[0]
    again = load_courses(course.parent)[0].lessons[0]
    assert again.body_html is first.body_html  # served from the cache, not rendered again

    edit(lesson_md, "## Practical Applications", "## Where It Is Used")
    stat = lesson_md.stat()
    os.utime(lesson_md, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    edited = load_courses(course.parent)[0].lessons[0]
    assert "Where It Is Used" in edited.body_html
    assert "Practical Applications" not in edited.body_html


def test_loader_raises_every_problem_at_once(course: Path) -> None:
    edit(course / SEED_LESSON / "lesson.md", "title: Deep Learning Introduction\n", "")
    edit(course / SEED_LESSON / "starter.py", "EPOCHS = 30", "EPOCHS = = 30")
    with pytest.raises(InvalidContent) as raised:
        load_courses(course.parent)
    messages = [(error.path.name, error.line) for error in raised.value.errors]
    assert messages == [("lesson.md", 1), ("starter.py", 66)]
    assert str(raised.value).count("\n") == 1


def test_a_misnamed_lesson_folder_is_reported(course: Path) -> None:
    (course / SEED_LESSON).rename(course / "1-Intro")
    with pytest.raises(InvalidContent, match="lesson folder is named NN-slug"):
        load_courses(course.parent)
