"""What the instructor dashboard shows: every lesson's state on disk, and how learners fare.

Two halves, joined by the lesson key (``course/slug``):

- ``lesson_rows``: every lesson folder of every course, in course order, broken ones included
  with their problems (the learner's pages leave those out), and what the last sandbox check
  (``torchdojo content check``, or the dashboard's Validate button) said about exactly these
  files (``CheckRecords``).
- ``lesson_stats``: learners who started and finished each lesson (``progress``), and the checks
  that fail most often with their most common messages (``test`` events of check runs).

The statistics are aggregated by the database in three grouped queries whatever the number of
runs, with the same SQL on SQLite and PostgreSQL (JSON fields read with SQLAlchemy's portable
JSON operators, top-N by ``row_number()``). They count learners only: an instructor trying a
lesson out is not a data point.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Select, Subquery, and_, case, distinct, false, func, or_, select
from sqlalchemy.orm import Session

from app.content import (
    ContentError,
    Course,
    Lesson,
    collect,
    course_dirs,
    is_lesson_dir,
    lesson_dirs,
    lesson_folder_parts,
)
from app.content_check import CheckRecord, CheckRecords, lesson_digest, record_key
from app.models import Progress, Run, RunEvent, User

TOP_CHECKS = 3  # failing checks shown per lesson
TOP_MESSAGES = 2  # messages shown per failing check
MESSAGE_CHARS = 240  # messages are grouped (and shown) by their beginning


# --- the lessons on disk --------------------------------------------------------------------


@dataclass
class Problem:
    """One content problem, placed relative to the lesson (or course) folder."""

    file: str
    line: int | None
    message: str
    source: str | None = None  # the line itself, where there is one to show

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.message}"


@dataclass
class Verdict:
    """A lesson's state in words: a badge, a sentence, a tone (good, bad, warn, quiet)."""

    tone: str
    badge: str
    detail: str
    problems: list[Problem] = field(default_factory=list)


@dataclass
class LessonRow:
    course: str
    folder: str
    key: str | None  # course/slug, what runs and progress are stored under
    slug: str
    number: int | None
    title: str
    verdict: Verdict
    lesson: Lesson | None = None

    @property
    def loads(self) -> bool:
        return self.lesson is not None


@dataclass
class CourseRows:
    slug: str
    title: str
    problems: list[Problem]
    lessons: list[LessonRow]


def _problem(error: ContentError, base: Path) -> Problem:
    path = error.path
    shown = str(path.relative_to(base)) if path.is_relative_to(base) and path != base else path.name
    return Problem(shown, error.line, error.message, _source_line(path, error.line))


def _source_line(path: Path, line: int | None) -> str | None:
    if not line or not path.is_file():
        return None
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return None
    text = lines[line - 1].rstrip() if 0 < line <= len(lines) else ""
    return text[:200] or None


def _when(iso: str) -> str:
    try:
        moment = datetime.fromisoformat(iso)
    except ValueError:
        return iso
    return moment.strftime("%d %b %Y, %H:%M UTC").lstrip("0")


def check_verdict(
    lesson_dir: Path,
    records: CheckRecords,
    loaded: dict[str, list[CheckRecord]] | None = None,
) -> Verdict:
    """What the content check recorded about exactly the files now in ``lesson_dir``."""
    exact, latest = records.lookup(record_key(lesson_dir), lesson_digest(lesson_dir), loaded)
    if exact is not None:
        return record_verdict(exact)
    if latest is not None:
        outcome = "passed" if latest.ok else "failed"
        return Verdict(
            "warn",
            "Changed",
            f"Changed since the last check ({outcome} {_when(latest.checked_at)}).",
        )
    return Verdict("quiet", "Loads", "Not checked in the sandbox yet.")


def record_verdict(record: CheckRecord) -> Verdict:
    """What a record of exactly the lesson's current files says."""
    if record.ok:
        return Verdict("good", "Verified", f"Passed in the sandbox {_when(record.checked_at)}.")
    return Verdict(
        "bad",
        "Check failed",
        f"Failed in the sandbox {_when(record.checked_at)}.",
        [_recorded_problem(text) for text in record.problems],
    )


def _recorded_problem(text: str) -> Problem:
    where, _, message = text.partition(": ")
    file, _, line = where.partition(":")
    return Problem(file, int(line) if line.isdigit() else None, message)


def lesson_rows(content_dir: Path, records: CheckRecords) -> list[CourseRows]:
    """Every course and every lesson folder in it, loading or not, in course order."""
    if not content_dir.is_dir():
        return []
    courses, errors = collect([content_dir])
    by_dir: dict[Path, Course] = {course.path: course for course in courses}
    loaded_records = records.load()
    sections = []
    for course_dir in course_dirs(content_dir):
        course = by_dir.get(course_dir)
        lessons = {lesson.path: lesson for lesson in course.lessons} if course else {}
        course_problems = [
            _problem(e, course_dir)
            for e in errors
            if e.path == course_dir or (e.path.parent == course_dir and not is_lesson_dir(e.path))
        ]
        rows = []
        for folder in lesson_dirs(course_dir):
            rows.append(
                _row(course_dir, folder, lessons.get(folder), errors, records, loaded_records)
            )
        if course is None and not course_problems:
            course_problems = [Problem("course.md", None, "the course does not load.")]
        sections.append(
            CourseRows(
                slug=course_dir.name,
                title=course.title if course else course_dir.name,
                problems=course_problems,
                lessons=rows,
            )
        )
    return sections


def _row(
    course_dir: Path,
    folder: Path,
    lesson: Lesson | None,
    errors: list[ContentError],
    records: CheckRecords,
    loaded_records: dict[str, list[CheckRecord]],
) -> LessonRow:
    parts = lesson_folder_parts(folder.name)
    number, slug = parts if parts else (None, folder.name)
    key = f"{course_dir.name}/{slug}" if parts else None
    if lesson is not None:
        return LessonRow(
            course=course_dir.name,
            folder=folder.name,
            key=key,
            slug=slug,
            number=lesson.number,
            title=lesson.title,
            verdict=check_verdict(folder, records, loaded_records),
            lesson=lesson,
        )
    problems = [_problem(e, folder) for e in errors if e.path == folder or folder in e.path.parents]
    if problems:
        first = problems[0]
        where = f"{first.file}, line {first.line}" if first.line else first.file
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        verdict = Verdict("bad", "Broken", f"Learners do not see it: {where}{more}.", problems)
    else:
        verdict = Verdict("bad", "Broken", "Learners do not see it: its course does not load.")
    return LessonRow(
        course=course_dir.name,
        folder=folder.name,
        key=key,
        slug=slug,
        number=number,
        title=slug.replace("-", " ").capitalize(),  # its front matter may be what is broken
        verdict=verdict,
    )


# --- how learners fare ----------------------------------------------------------------------


@dataclass
class FailingCheck:
    name: str
    failures: int  # failed or errored results, over every check run
    learners: int  # distinct learners who got them
    messages: list[tuple[str, int]] = field(default_factory=list)  # most common first


@dataclass
class LessonStats:
    started: int = 0
    finished: int = 0
    failing: list[FailingCheck] = field(default_factory=list)


def defined_checks(sections: list[CourseRows]) -> dict[str, set[str]]:
    """Per lesson key, the titles of the checks its checks.py defines: the only names the
    dashboard counts (a learner's code can send `test` events named anything)."""
    return {
        row.key: {check.title for check in row.lesson.check_infos}
        for section in sections
        for row in section.lessons
        if row.key and row.lesson is not None
    }


def _failed_results(defined: dict[str, set[str]]) -> Subquery:
    """Each failed or errored result of a check the lesson defines, from a learner's check run,
    as plain columns."""
    data = RunEvent.data
    name = data["name"].as_string()
    ours = or_(
        false(),
        *(and_(Run.lesson_key == key, name.in_(sorted(titles))) for key, titles in defined.items()),
    )
    return (
        select(
            Run.lesson_key.label("lesson_key"),
            Run.user_id.label("user_id"),
            RunEvent.seq.label("seq"),
            data["name"].as_string().label("name"),
            func.substr(data["message"].as_string(), 1, MESSAGE_CHARS).label("message"),
        )
        .join(Run, Run.id == RunEvent.run_id)
        .join(User, User.id == Run.user_id)
        .where(
            RunEvent.type == "test",
            Run.mode == "check",
            User.role == "learner",
            data["status"].as_string().in_(("failed", "error")),
            ours,
        )
        .subquery("failed_results")
    )


def _top(query: Select[Any], partition: list[Any], order: list[Any], limit: int) -> Select[Any]:
    """The first ``limit`` rows of each partition of a grouped query, partition by partition."""
    rank = func.row_number().over(partition_by=partition, order_by=order).label("rank")
    ranked = query.add_columns(rank).subquery()
    keys = [ranked.c[column.name] for column in partition]
    return select(ranked).where(ranked.c.rank <= limit).order_by(*keys, ranked.c.rank)


def lesson_stats(session: Session, defined: dict[str, set[str]]) -> dict[str, LessonStats]:
    """Started, finished and the most failed of the `defined` checks, per lesson key."""
    stats: dict[str, LessonStats] = {}

    finished = func.sum(case((Progress.status == "passed", 1), else_=0))
    for key, started, done in session.execute(
        select(Progress.lesson_key, func.count(), finished)
        .join(User, User.id == Progress.user_id)
        .where(User.role == "learner")
        .group_by(Progress.lesson_key)
    ):
        stats[key] = LessonStats(started=int(started), finished=int(done or 0))

    results = _failed_results(defined)
    failures = func.count()
    per_check = select(
        results.c.lesson_key,
        results.c.name,
        failures.label("failures"),
        func.count(distinct(results.c.user_id)).label("learners"),
    ).group_by(results.c.lesson_key, results.c.name)
    # Ties go to the check that comes first in checks.py (test events run in file order).
    first = func.min(results.c.seq)
    top_checks = _top(per_check, [results.c.lesson_key], [failures.desc(), first], TOP_CHECKS)
    for row in session.execute(top_checks):
        stats.setdefault(row.lesson_key, LessonStats()).failing.append(
            FailingCheck(row.name, int(row.failures), int(row.learners))
        )

    per_message = select(
        results.c.lesson_key, results.c.name, results.c.message, failures.label("times")
    ).group_by(results.c.lesson_key, results.c.name, results.c.message)
    top_messages = _top(
        per_message,
        [results.c.lesson_key, results.c.name],
        [failures.desc(), results.c.message],
        TOP_MESSAGES,
    )
    for row in session.execute(top_messages):
        lesson = stats.get(row.lesson_key)
        check = next((c for c in lesson.failing if c.name == row.name), None) if lesson else None
        if check is not None:
            check.messages.append((row.message or "(no message)", int(row.times)))
    return stats


# --- both, as the JSON the page polls -------------------------------------------------------


def layout_signature(sections: list[CourseRows]) -> str:
    """Changes when what the page draws once changes (courses, their problems, lesson rows and
    titles); the numbers and states the page updates in place are left out."""
    layout = [
        [
            section.slug,
            section.title,
            [str(problem) for problem in section.problems],
            [[row.folder, row.title] for row in section.lessons],
        ]
        for section in sections
    ]
    return hashlib.sha256(json.dumps(layout).encode()).hexdigest()[:16]


def verdict_json(verdict: Verdict) -> dict[str, Any]:
    return {
        "tone": verdict.tone,
        "badge": verdict.badge,
        "detail": verdict.detail,
        "problems": [str(p) for p in verdict.problems],
    }


def dashboard_json(
    sections: list[CourseRows],
    stats: dict[str, LessonStats],
    validating: Collection[str] = (),
) -> dict[str, Any]:
    """Everything the dashboard page updates in place, keyed by ``course/folder``;
    ``validating``: the rows (``course/folder``) being validated in the sandbox right now."""
    lessons = []
    for section in sections:
        for row in section.lessons:
            numbers = stats.get(row.key or "", LessonStats())
            lessons.append(
                {
                    "id": f"{row.course}/{row.folder}",
                    "key": row.key,
                    "title": row.title,
                    "loads": row.loads,
                    "verdict": verdict_json(row.verdict),
                    "validating": f"{row.course}/{row.folder}" in validating,
                    "started": numbers.started,
                    "finished": numbers.finished,
                    "failing": [
                        {
                            "name": check.name,
                            "failures": check.failures,
                            "learners": check.learners,
                            "messages": [
                                {"message": message, "count": count}
                                for message, count in check.messages
                            ],
                        }
                        for check in numbers.failing
                    ],
                }
            )
    return {"layout": layout_signature(sections), "lessons": lessons}


# --- one lesson, for the live preview -------------------------------------------------------


@dataclass
class Preview:
    """A lesson as it is on disk now: loaded, or the problems that stop it from loading."""

    folder: Path
    fingerprint: str
    lesson: Lesson | None
    problems: list[Problem]


def find_lesson_dir(content_dir: Path, course: str, lesson: str) -> Path | None:
    """The folder of ``course``'s lesson named ``lesson`` (its slug or its folder name).

    Only folders found by listing the content are candidates: a request never builds a path."""
    if not content_dir.is_dir():
        return None
    course_dir = next((d for d in course_dirs(content_dir) if d.name == course), None)
    if course_dir is None:
        return None
    for folder in lesson_dirs(course_dir):
        parts = lesson_folder_parts(folder.name)
        if folder.name == lesson or (parts and parts[1] == lesson):
            return folder
    return None


def preview_fingerprint(folder: Path) -> str:
    """Changes whenever a file of the lesson, or its course.md, changes."""
    return lesson_digest(folder, folder.parent / "course.md")


def load_preview(folder: Path) -> Preview:
    fingerprint = preview_fingerprint(folder)  # first: an edit saved while loading shows next
    courses, errors = collect([folder])
    lesson = courses[0].lessons[0] if courses and courses[0].lessons and not errors else None
    problems = [_problem(error, folder) for error in errors]
    if lesson is None and not problems:
        problems = [Problem(folder.name, None, "the lesson does not load.")]
    return Preview(folder, fingerprint, lesson, problems)
