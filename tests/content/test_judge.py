"""How `torchdojo content check` judges one run, from runner events built by hand.

The sandbox runs themselves are covered by test_content_check; here every way a run can go
wrong is built directly from runner.protocol events, so each rule is tested without a sandbox.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from app.content import ContentError, Lesson, load_lesson
from app.content_check import Outcome, Which, judge_solution, judge_starter
from runner.protocol import Done, ErrorInfo, Summary, Test
from tests.support.content import SEED_COURSE, SEED_LESSON


@pytest.fixture(scope="module")
def lesson() -> Lesson:
    return load_lesson(SEED_COURSE / SEED_LESSON)


def _done(status: str = "completed", error: ErrorInfo | None = None) -> Done:
    return Done(seq=99, t=1.0, status=status, duration_ms=1000.0, error=error)


def _tests(lesson: Lesson, status: dict[str, str], default: str) -> list[Test]:
    """One test event per check of the lesson, in file order: ``status`` by function name."""
    return [
        Test(
            seq=i,
            t=0.5,
            name=info.title,
            status=status.get(info.function, default),
            message="" if status.get(info.function, default) == "passed" else "not yet",
            hint=info.hint,
        )
        for i, info in enumerate(lesson.check_infos, start=1)
    ]


def _summary(lesson: Lesson) -> Summary:
    spec = lesson.exercise.summary
    assert spec is not None
    return Summary(
        seq=98, t=0.9, model="Net", input_size=spec.input_size, rows=[], total_params=1,
        trainable_params=1,
    )  # fmt: skip


def _outcome(lesson: Lesson, which: Which, **fields: object) -> Outcome:
    return Outcome(lesson, which, **fields)  # type: ignore[arg-type]


def _text(errors: list[ContentError], lesson: Lesson) -> list[str]:
    return [str(error).replace(str(lesson.path), "<lesson>") for error in errors]


def _tied(lesson: Lesson) -> list[str]:
    return [info.function for info in lesson.check_infos if info.todo is not None]


def test_a_good_starter_and_solution_have_no_problems(lesson: Lesson) -> None:
    untied = {info.function: "passed" for info in lesson.check_infos if info.todo is None}
    starter = _outcome(
        lesson, "starter", done=_done(), tests=_tests(lesson, untied, default="failed")
    )
    assert judge_starter(starter) == []
    solution = _outcome(
        lesson,
        "solution",
        done=_done(),
        tests=_tests(lesson, {}, default="passed"),
        summary=_summary(lesson),
    )
    assert judge_solution(solution) == []


def test_a_starter_that_crashes(lesson: Lesson) -> None:
    crash = ErrorInfo(type="NameError", message="name 'modle' is not defined", line=42)
    outcome = _outcome(lesson, "starter", done=_done("error", crash))
    assert _text(judge_starter(outcome), lesson) == [
        "<lesson>/starter.py:42: the starter stopped with NameError: name 'modle' is not "
        "defined, but it must run before any TODO is done: give each TODO a placeholder "
        "that runs."
    ]


def test_a_check_that_crashes_on_the_starter(lesson: Lesson) -> None:
    first = lesson.check_infos[0]
    tests = _tests(lesson, {first.function: "error"}, default="failed")
    tests[0] = tests[0].model_copy(update={"message": "AttributeError: 'NoneType' ..."})
    [error] = judge_starter(_outcome(lesson, "starter", done=_done(), tests=tests))
    assert (error.path.name, error.line) == ("checks.py", first.line)
    assert f'check "{first.title}" crashes on the starter' in error.message
    assert "make it fail with an assert" in error.message


def test_a_starter_that_passes_one_todo_check(lesson: Lesson) -> None:
    tied = next(info for info in lesson.check_infos if info.todo is not None)
    tests = _tests(lesson, {tied.function: "passed"}, default="failed")
    [error] = judge_starter(_outcome(lesson, "starter", done=_done(), tests=tests))
    assert (error.path.name, error.line) == ("checks.py", tied.line)
    assert error.message.startswith(f'the starter passes check "{tied.title}", which is tied')
    assert f"leave TODO {tied.todo} undone in starter.py" in error.message


def test_a_starter_with_no_results(lesson: Lesson) -> None:
    errors = judge_starter(_outcome(lesson, "starter", done=_done(), tests=[]))
    assert _text(errors, lesson) == [
        "<lesson>/checks.py:1: no checks ran on the starter, so nothing proves a learner has "
        "work to do: make sure checks.py defines test_* functions that can run on the starter."
    ]


def test_a_skipped_or_missing_todo_check_on_the_starter(lesson: Lesson) -> None:
    skipped, missing = [i for i in lesson.check_infos if i.todo is not None][:2]
    tests = [
        test
        for test in _tests(lesson, {skipped.function: "skipped"}, default="failed")
        if test.name != missing.title
    ]
    errors = judge_starter(_outcome(lesson, "starter", done=_done(), tests=tests))
    assert [(e.path.name, e.line) for e in errors] == [
        ("checks.py", skipped.line),
        ("checks.py", missing.line),
    ]
    assert f"tied to TODO {skipped.todo}, was skipped on the starter" in errors[0].message
    assert f"tied to TODO {missing.todo}, did not run on the starter" in errors[1].message


def test_a_solution_that_times_out(lesson: Lesson) -> None:
    errors = judge_solution(_outcome(lesson, "solution", done=_done("timeout")))
    assert _text(errors, lesson) == [
        "<lesson>/solution.py: the solution ran out of time (60 s); make it faster or raise "
        "exercise.limits.wall_s. Fix it."
    ]


def test_a_solution_without_a_model_summary(lesson: Lesson) -> None:
    stderr = "[torchdojo] no model summary: RuntimeError: mat1 and mat2 shapes cannot be\n"
    outcome = _outcome(
        lesson, "solution", done=_done(), tests=_tests(lesson, {}, "passed"), stderr=stderr
    )
    [error] = judge_solution(outcome)
    text = (Path(lesson.path) / "lesson.md").read_text().splitlines()
    assert error.path.name == "lesson.md" and "input_size:" in text[(error.line or 0) - 1]
    assert "(RuntimeError: mat1 and mat2 shapes cannot be)" in error.message
    assert "Fix the input size or the factory." in error.message
