"""``torchdojo content check [PATHS]``: prove that lessons work before learners see them.

Static first: front matter, file layout, every Python file parses, every check has a title and
a hint. Then, in the real sandbox, for every lesson at once: the solution passes every check,
and the starter runs without an error but fails its checks (each ``test_todoN_...`` check, tied
to TODO N, must fail). Every problem names the file and line and says what to fix.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from app.content import CheckInfo, ContentError, Lesson, collect
from runner.protocol import Done, RunRequest, Test

if TYPE_CHECKING:
    from runner.pool import WarmPool

Which = Literal["solution", "starter"]


@dataclass
class Outcome:
    """What one run of a lesson file in the sandbox came to."""

    lesson: Lesson
    which: Which
    done: Done | None = None
    tests: list[Test] = field(default_factory=list)
    stderr: str = ""

    @property
    def path(self) -> Path:
        return self.lesson.path / f"{self.which}.py"


async def _run(pool: WarmPool, lesson: Lesson, which: Which) -> Outcome:
    outcome = Outcome(lesson, which)
    code = lesson.solution if which == "solution" else lesson.starter
    request: RunRequest = lesson.run_request(code, mode="check")
    async for event in pool.run(request):
        if isinstance(event, Test):
            outcome.tests.append(event)
        elif isinstance(event, Done):
            outcome.done = event
        elif event.type == "output" and event.stream == "stderr":
            outcome.stderr += event.text
    return outcome


async def _run_all(lessons: list[Lesson]) -> list[Outcome]:
    """Every lesson's solution and starter, run concurrently in warm sandboxes."""
    from runner.pool import WarmPool  # imported here: static checks work without the runner

    size = max(1, min(2 * len(lessons), os.cpu_count() or 2))
    async with WarmPool(size=size) as pool:
        runs: list[tuple[Lesson, Which]] = [
            (lesson, which) for lesson in lessons for which in ("solution", "starter")
        ]
        return list(await asyncio.gather(*(_run(pool, *run) for run in runs)))


def _stopped(outcome: Outcome) -> str:
    """Why a run did not complete, in words."""
    done = outcome.done
    if done is None:
        return "ended without a result (the runner sent no done event)"
    if done.status == "timeout":
        limit = outcome.lesson.exercise.limits
        wall = f"{limit.wall_s:g} s" if limit else "the default wall time"
        return f"ran out of time ({wall}); make it faster or raise exercise.limits.wall_s"
    if done.error:
        return f"stopped with {done.error.type}: {done.error.message}"
    return f"ended with status {done.status}"


def _clause(message: str) -> str:
    """A check's message on one line, without its closing full stop."""
    return " ".join(message.split()).rstrip(".") or "no message"


def _check_line(lesson: Lesson, title: str) -> tuple[CheckInfo | None, int]:
    info = next((i for i in lesson.check_infos if i.title == title), None)
    return info, info.line if info else 1


def judge_solution(outcome: Outcome) -> list[ContentError]:
    """The solution must complete and pass every check."""
    lesson, checks = outcome.lesson, outcome.lesson.path / "checks.py"
    if outcome.done is None or outcome.done.status != "completed":
        line = outcome.done.error.line if outcome.done and outcome.done.error else None
        return [ContentError(outcome.path, line, f"the solution {_stopped(outcome)}. Fix it.")]
    errors = []
    for test in outcome.tests:
        if test.status == "passed":
            continue
        _, line = _check_line(lesson, test.name)
        verb = "fails" if test.status == "failed" else f"gets {test.status} from"
        errors.append(
            ContentError(
                checks,
                line,
                f'the solution {verb} check "{test.name}": {_clause(test.message)}. '
                "Fix the solution or the check.",
            )
        )
    if not outcome.tests:
        errors.append(ContentError(checks, 1, "no checks ran: add test_* functions."))
    return errors


def judge_starter(outcome: Outcome) -> list[ContentError]:
    """The starter must run without errors and fail its checks, cleanly."""
    lesson, checks = outcome.lesson, outcome.lesson.path / "checks.py"
    if outcome.done is None or outcome.done.status != "completed":
        line = outcome.done.error.line if outcome.done and outcome.done.error else None
        return [
            ContentError(
                outcome.path,
                line,
                f"the starter {_stopped(outcome)}, but it must run before any TODO is done: "
                "give each TODO a placeholder that runs.",
            )
        ]
    if outcome.tests and all(test.status == "passed" for test in outcome.tests):
        return [
            ContentError(
                outcome.path,
                1,
                "the starter already passes every check, so a learner has nothing to do: "
                "leave its TODOs undone, or add checks for them.",
            )
        ]
    errors = []
    for test in outcome.tests:
        info, line = _check_line(lesson, test.name)
        if test.status == "error":
            errors.append(
                ContentError(
                    checks,
                    line,
                    f'check "{test.name}" crashes on the starter ({_clause(test.message)}) '
                    "instead of failing: make it fail with an assert and a message a learner "
                    "can act on.",
                )
            )
        elif test.status == "passed" and info and info.todo is not None:
            errors.append(
                ContentError(
                    checks,
                    line,
                    f'the starter passes check "{test.name}", which is tied to TODO {info.todo} '
                    f"by its name ({info.function}): leave TODO {info.todo} undone in "
                    "starter.py, or make the check stricter.",
                )
            )
    return errors


def _paint(text: str, colour: str) -> str:
    codes = {"green": "32", "red": "31"}
    if sys.stdout.isatty() and not os.environ.get("NO_COLOR"):
        return f"\033[{codes[colour]}m{text}\033[0m"
    return text


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def main(paths: list[str]) -> int:
    """Check the lessons under ``paths``; 0 when all is well, 1 with every problem printed."""
    started = time.monotonic()
    courses, errors = collect([Path(p) for p in paths or ["content"]])
    lessons = [lesson for course in courses for lesson in course.lessons]
    outcomes: list[Outcome] = []
    if lessons:
        try:
            outcomes = asyncio.run(_run_all(lessons))
        except Exception as exc:  # no bubblewrap, no seccomp, ...: nothing was proven
            print(_paint(f"The sandbox could not start: {exc}", "red"))
            print("The content check runs every solution and starter in the real sandbox.")
            return 1
    for outcome in outcomes:
        judge = judge_solution if outcome.which == "solution" else judge_starter
        errors.extend(judge(outcome))
    if not lessons and not errors:
        print(f"No lessons found in {', '.join(paths)}: give a content, course or lesson folder.")
        return 1

    for error in errors:
        print(error)
    elapsed = time.monotonic() - started
    if errors:
        print(_paint(f"{_plural(len(errors), 'problem')} found ({elapsed:.1f} s).", "red"))
        return 1
    for outcome in outcomes:
        if outcome.which == "solution":
            seconds = (outcome.done.duration_ms / 1000) if outcome.done else 0.0
            print(
                f"  {outcome.lesson.course}/{outcome.lesson.path.name}: "
                f"{_plural(len(outcome.tests), 'check')}, solution passes all in {seconds:.1f} s"
            )
    print(
        _paint(
            f"OK: {_plural(len(courses), 'course')}, {_plural(len(lessons), 'lesson')}: "
            "front matter valid, files parse, solutions pass, starters run and fail their "
            f"checks ({elapsed:.1f} s).",
            "green",
        )
    )
    return 0
