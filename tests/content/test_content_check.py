"""Golden tests of `torchdojo content check` messages, one broken thing per case.

Static cases need no sandbox; the ones that run lessons need the runner (runner.pool).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from app.content_check import main
from tests.support.content import (
    ROOT,
    SEED_COURSE,
    SEED_LESSON,
    assert_golden,
    edit,
    normalise,
)

# The solution's whole check run must stay under this on CPU (the budget).
SOLUTION_BUDGET_S = 20.0


def _bad_yaml(course: Path) -> None:
    edit(course / SEED_LESSON / "lesson.md", "title: Deep Learning Introduction", "title: A: B")


def _unknown_key(course: Path) -> None:
    edit(course / SEED_LESSON / "lesson.md", "    wall_s: 60", "    wal_s: 60")


def _missing_title(course: Path) -> None:
    edit(course / SEED_LESSON / "lesson.md", "title: Deep Learning Introduction\n", "")


def _bad_limit(course: Path) -> None:
    edit(course / SEED_LESSON / "lesson.md", "    wall_s: 60", "    wall_s: -5")


def _limits_above_maximum(course: Path) -> None:
    # Valid for the protocol (at most 3600 s), but above the runner's maximum (300 s by default).
    edit(course / SEED_LESSON / "lesson.md", "    wall_s: 60", "    wall_s: 900")


def _no_front_matter(course: Path) -> None:
    path = course / SEED_LESSON / "lesson.md"
    path.write_text(path.read_text().split("\n---\n", 1)[1])


def _course_missing_description(course: Path) -> None:
    text = (course / "course.md").read_text()
    (course / "course.md").write_text(text.split("description:")[0] + "---\n")


def _missing_checks(course: Path) -> None:
    (course / SEED_LESSON / "checks.py").unlink()


def _factory_typo(course: Path) -> None:
    edit(course / SEED_LESSON / "lesson.md", "factory: build_model", "factory: build_modle")


def _starter_syntax(course: Path) -> None:
    edit(course / SEED_LESSON / "starter.py", "EPOCHS = 30", "EPOCHS = = 30")


def _solution_syntax(course: Path) -> None:
    edit(course / SEED_LESSON / "solution.py", "loss_fn = nn.CrossEntropyLoss()", "loss_fn = (")


def _checks_syntax(course: Path) -> None:
    edit(course / SEED_LESSON / "checks.py", "N_CLASSES = 10", "N_CLASSES = 10 +")


def _check_without_hint(course: Path) -> None:
    hint = "total_params = sum(p.numel() for p in model.parameters() if p.requires_grad)"
    edit(course / SEED_LESSON / "checks.py", f'    hint="{hint}",\n', "")


def _check_for_unknown_todo(course: Path) -> None:
    edit(course / SEED_LESSON / "checks.py", "def test_todo6_parameter", "def test_todo7_parameter")


def _todo_without_check(course: Path) -> None:
    last = 'print(f"Trainable parameters: {total_params}")\n'
    edit(course / SEED_LESSON / "starter.py", last, last + "\n# TODO 7: Plot the loss.\n")


def _input_size_not_positive(course: Path) -> None:
    edit(course / SEED_LESSON / "lesson.md", "input_size: [1, 64]", "input_size: [0, 64]")


STATIC_CASES: dict[str, Callable[[Path], None]] = {
    "bad_yaml": _bad_yaml,
    "unknown_key": _unknown_key,
    "missing_title": _missing_title,
    "bad_limit": _bad_limit,
    "limits_above_maximum": _limits_above_maximum,
    "no_front_matter": _no_front_matter,
    "course_missing_description": _course_missing_description,
    "missing_checks": _missing_checks,
    "factory_typo": _factory_typo,
    "starter_syntax": _starter_syntax,
    "solution_syntax": _solution_syntax,
    "checks_syntax": _checks_syntax,
    "check_without_hint": _check_without_hint,
    "check_for_unknown_todo": _check_for_unknown_todo,
    "todo_without_check": _todo_without_check,
    "input_size_not_positive": _input_size_not_positive,
}


@pytest.mark.parametrize("case", STATIC_CASES)
def test_static_problem_is_reported(
    case: str, course: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    STATIC_CASES[case](course)
    # A broken lesson never reaches the sandbox, so these need no runner and stay fast.
    assert main([str(course)]) == 1
    assert_golden(case, normalise(capsys.readouterr().out, tmp_path))


def test_missing_path_is_reported(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([str(tmp_path / "nowhere")]) == 1
    out = normalise(capsys.readouterr().out, tmp_path)
    assert "<tmp>/nowhere: not found: give a content, course or lesson folder." in out


def test_empty_folder_is_reported(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([str(tmp_path)]) == 1
    assert "No lessons found" in capsys.readouterr().out


# --- in the sandbox -----------------------------------------------------------------------------


@pytest.mark.slow
def test_sandbox_problems_are_reported(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A solution failing a check, a starter that already passes, and a model summary that
    fails on the solution (an input size the model cannot take), checked in one run."""
    pytest.importorskip("runner.pool")
    import shutil

    from tests.support.content import SEED_COURSE

    fails = tmp_path / "solution-fails" / SEED_LESSON
    passes = tmp_path / "starter-passes" / SEED_LESSON
    no_summary = tmp_path / "summary-fails" / SEED_LESSON
    for lesson in (fails, passes, no_summary):
        shutil.copytree(SEED_COURSE / SEED_LESSON, lesson)
        shutil.copy(SEED_COURSE / "course.md", lesson.parent / "course.md")
    edit(fails / "solution.py", "total_params = sum(", "total_params = 0 * sum(")
    (passes / "starter.py").write_text((passes / "solution.py").read_text())
    edit(no_summary / "lesson.md", "input_size: [1, 64]", "input_size: [1, 65]")

    assert main([str(tmp_path)]) == 1
    assert_golden("sandbox_problems", normalise(capsys.readouterr().out, tmp_path))


def _command(tmp_path: Path, *paths: Path) -> subprocess.CompletedProcess[str]:
    """The installed `torchdojo content check PATHS`, as an instructor runs it, recording its
    results in tmp_path (not the checkout's var/)."""
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),  # this checkout's app, whichever checkout installed the command
        "TORCHDOJO_CONTENT_CHECK_FILE": str(tmp_path / "content-check.json"),
        "NO_COLOR": "1",
    }
    command = Path(sys.executable).with_name("torchdojo")
    return subprocess.run(
        [str(command), "content", "check", *map(str, paths)],
        cwd=tmp_path,  # no .env from the checkout
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_the_command_exits_1_and_names_the_file_and_line(course: Path, tmp_path: Path) -> None:
    _factory_typo(course)
    result = _command(tmp_path, course / SEED_LESSON)
    assert result.returncode == 1, result.stdout + result.stderr
    lesson_md = course / SEED_LESSON / "lesson.md"
    assert f'{lesson_md}:9: exercise.summary.factory is "build_modle"' in result.stdout
    assert "2 problems found" in result.stdout


@pytest.mark.slow
def test_shipped_content_passes(tmp_path: Path) -> None:
    """Every shipped lesson, each given as content/<course>/<lesson>, through the real command."""
    pytest.importorskip("runner.pool")
    lessons = sorted(p for p in SEED_COURSE.iterdir() if p.is_dir() and p.name[:1].isdigit())
    result = _command(tmp_path, *lessons)
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert f"OK: 1 course, {len(lessons)} lessons" in out
    seed = re.search(rf"{SEED_LESSON}: 10 checks, solution passes all in ([\d.]+) s", out)
    assert seed, out
    assert float(seed.group(1)) < SOLUTION_BUDGET_S  # the runner's duration_ms, in seconds
    recorded = json.loads((tmp_path / "content-check.json").read_text())["lessons"]
    assert all(recorded[f"{SEED_COURSE.name}/{p.name}"][0]["ok"] for p in lessons)
