"""Loading lessons: the seed lesson keeps every line of its text, models, caching."""

from __future__ import annotations

import os
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

from app.content import InvalidContent, load_courses, load_lesson
from runner.protocol import SandboxLimits, SummarySpec
from tests.support.content import ROOT, SEED_LESSON, edit

SEED_TEXT = Path(__file__).parent / "seed_000.txt"
# The owner's text as given; tests/content/seed_000.txt is its copy for checkouts without it.
SHARED_SEED = ROOT.parent / "shared" / "seeds" / "000_ca620aac27e1282f.txt"
SEED_HEADINGS = 7  # the seed's section headings, "What is Deep Learning?" to "Exercise: ..."


class _Blocks(HTMLParser):
    """The rendered lesson as (kind, text) blocks in document order: "h1", "heading" (h2 to
    h6, permalink left out), "li", "p", "callout-title"; and each callout's (title, text)."""

    BLOCKS = ("h1", "h2", "h3", "h4", "h5", "h6", "p", "li")

    def __init__(self, html: str) -> None:
        super().__init__()
        self.blocks: list[tuple[str, str]] = []
        self.callouts: list[tuple[str, str]] = []
        self._open: list[tuple[str, list[str]]] = []
        self._anchor = False
        self._aside: list[str] | None = None
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        classes = (dict(attrs).get("class") or "").split()
        if tag == "aside" and "callout" in classes:
            self._aside = []
        elif tag == "a" and "header-anchor" in classes:
            self._anchor = True
        elif tag in self.BLOCKS:
            kind = "callout-title" if "callout-title" in classes else tag
            kind = "heading" if tag[0] == "h" and tag != "h1" else kind
            self._open.append((kind, []))

    def handle_endtag(self, tag: str) -> None:
        if tag == "a":
            self._anchor = False
        elif tag == "aside" and self._aside is not None:
            self.callouts.append((self._aside[0], " ".join(self._aside[1:])))
            self._aside = None
        elif tag in self.BLOCKS and self._open:
            kind, parts = self._open.pop()
            text = " ".join("".join(parts).split())
            self.blocks.append((kind, text))
            if self._aside is not None:
                self._aside.append(text)

    def handle_data(self, data: str) -> None:
        if self._open and not self._anchor:
            self._open[-1][1].append(data)


def _seed_kind(index: int, line: str) -> str:
    """What a line of the plain seed text is, by its shape: the title, a heading (short, no
    closing full stop or colon), a bullet, a callout title, or a paragraph."""
    if index == 0:
        return "h1"
    if line.startswith("- "):
        return "li"
    if line.startswith("💡"):
        return "callout-title"
    if len(line.split()) <= 8 and not line.endswith((".", ":", "!")):
        return "heading"
    return "p"


def _seed_lines() -> list[tuple[str, str]]:
    lines = [" ".join(raw.split()) for raw in SEED_TEXT.read_text(encoding="utf-8").splitlines()]
    lines = [line for line in lines if line]
    return [(_seed_kind(i, line), line.removeprefix("- ")) for i, line in enumerate(lines)]


def _seed_blocks() -> _Blocks:
    lesson = load_lesson(ROOT / "content" / "intro-to-deep-learning" / SEED_LESSON)
    return _Blocks(f"<h1>{lesson.title}</h1>{lesson.body_html}")


def test_seed_copy_is_the_owners_text() -> None:
    if not SHARED_SEED.exists():
        pytest.skip(f"{SHARED_SEED} is not in this checkout (CI): the copy is all there is")
    assert SEED_TEXT.read_bytes() == SHARED_SEED.read_bytes()


def test_seed_lesson_keeps_every_line_of_the_seed_text_in_order() -> None:
    """Each seed heading is a heading, each bullet a list item, each paragraph a paragraph,
    each 💡 line a callout title, word for word and in the seed's order."""
    seed = _seed_lines()
    assert sum(kind == "heading" for kind, _ in seed) == SEED_HEADINGS  # the shapes read right
    blocks = _seed_blocks().blocks
    position = 0
    for kind, text in seed:
        found = next((i for i in range(position, len(blocks)) if blocks[i] == (kind, text)), None)
        assert found is not None, f"seed {kind} missing, changed or out of order: {text!r}"
        position = found + 1


def test_both_tip_callouts_have_the_seed_title_and_text() -> None:
    seed = _seed_lines()
    expected = [
        (title, seed[i + 1][1]) for i, (kind, title) in enumerate(seed) if kind == "callout-title"
    ]
    assert [title for title, _ in expected] == ["💡 When to Use Deep Learning", "💡 Learning Tip"]
    assert _seed_blocks().callouts == expected
    lesson = load_lesson(ROOT / "content" / "intro-to-deep-learning" / SEED_LESSON)
    assert lesson.body_html.count('<aside class="callout callout-tip">') == 2


def test_seed_lesson_ends_with_the_exercise_and_its_todo_list() -> None:
    lesson = load_lesson(ROOT / "content" / "intro-to-deep-learning" / SEED_LESSON)
    exercise = lesson.body_html.rsplit("<h2", 1)[1]
    assert "Exercise: Build Your First Deep Learning Model" in exercise
    items = re.findall(r"<li>(.*?)</li>", exercise.split("<ol>")[1], re.S)
    assert len(items) == 6  # one item per TODO, in the starter's order
    assert "Write the forward pass" in items[2]


def test_seed_course_and_lesson_models() -> None:
    [course] = load_courses(ROOT / "content")
    assert (course.slug, course.title) == ("intro-to-deep-learning", "Intro to Deep Learning")
    lesson = course.lesson("deep-learning-introduction")
    assert lesson is not None and lesson.number == 1
    assert lesson.title == "Deep Learning Introduction"
    assert lesson.exercise.summary == SummarySpec(factory="build_model", input_size=[1, 64])
    assert lesson.exercise.limits == SandboxLimits(wall_s=60)
    assert len(lesson.exercise.hints) >= 3
    assert [info.todo for info in lesson.check_infos] == [1, 2, 3, 3, 4, 4, 5, 5, 6, 6]
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
    starter = course / SEED_LESSON / "starter.py"
    broken_line = starter.read_text().splitlines().index("EPOCHS = 30") + 1
    edit(starter, "EPOCHS = 30", "EPOCHS = = 30")
    with pytest.raises(InvalidContent) as raised:
        load_courses(course.parent)
    messages = [(error.path.name, error.line) for error in raised.value.errors]
    assert messages == [("lesson.md", 1), ("starter.py", broken_line)]
    assert str(raised.value).count("\n") == 1


def test_a_misnamed_lesson_folder_is_reported(course: Path) -> None:
    (course / SEED_LESSON).rename(course / "1-Intro")
    with pytest.raises(InvalidContent, match="lesson folder is named NN-slug"):
        load_courses(course.parent)


def test_an_edit_that_keeps_the_size_and_modification_time_is_picked_up(course: Path) -> None:
    # A quick save within the filesystem's timestamp granularity: same size, same mtime.
    lesson_md = course / SEED_LESSON / "lesson.md"
    assert "Practical Applications" in load_courses(course.parent)[0].lessons[0].body_html
    stat = lesson_md.stat()
    edit(lesson_md, "## Practical Applications", "## Practical Applicationz")
    os.utime(lesson_md, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert lesson_md.stat().st_size == stat.st_size
    assert "Practical Applicationz" in load_courses(course.parent)[0].lessons[0].body_html
