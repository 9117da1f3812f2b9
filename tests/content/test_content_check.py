"""Golden tests of `torchdojo content check` messages, one broken thing per case.

Static cases need no sandbox; the ones that run lessons need the runner (runner.pool).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from app.content_check import main
from tests.content.conftest import SEED_LESSON, assert_golden, edit, normalise


def _bad_yaml(course: Path) -> None:
    edit(course / SEED_LESSON / "lesson.md", "title: Deep Learning Introduction", "title: A: B")


def _unknown_key(course: Path) -> None:
    edit(course / SEED_LESSON / "lesson.md", "    wall_s: 60", "    wal_s: 60")


def _missing_title(course: Path) -> None:
    edit(course / SEED_LESSON / "lesson.md", "title: Deep Learning Introduction\n", "")


def _bad_limit(course: Path) -> None:
    edit(course / SEED_LESSON / "lesson.md", "    wall_s: 60", "    wall_s: -5")


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
    edit(course / SEED_LESSON / "checks.py", "def test_todo6_", "def test_todo7_")


STATIC_CASES: dict[str, Callable[[Path], None]] = {
    "bad_yaml": _bad_yaml,
    "unknown_key": _unknown_key,
    "missing_title": _missing_title,
    "bad_limit": _bad_limit,
    "no_front_matter": _no_front_matter,
    "course_missing_description": _course_missing_description,
    "missing_checks": _missing_checks,
    "factory_typo": _factory_typo,
    "starter_syntax": _starter_syntax,
    "solution_syntax": _solution_syntax,
    "checks_syntax": _checks_syntax,
    "check_without_hint": _check_without_hint,
    "check_for_unknown_todo": _check_for_unknown_todo,
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
    """A solution failing a check and a starter that already passes, checked in one run."""
    pytest.importorskip("runner.pool")
    import shutil

    from tests.content.conftest import SEED_COURSE

    fails = tmp_path / "solution-fails" / SEED_LESSON
    passes = tmp_path / "starter-passes" / SEED_LESSON
    for lesson in (fails, passes):
        shutil.copytree(SEED_COURSE / SEED_LESSON, lesson)
        shutil.copy(SEED_COURSE / "course.md", lesson.parent / "course.md")
    edit(fails / "solution.py", "total_params = sum(", "total_params = 0 * sum(")
    (passes / "starter.py").write_text((passes / "solution.py").read_text())

    assert main([str(tmp_path)]) == 1
    assert_golden("sandbox_problems", normalise(capsys.readouterr().out, tmp_path))


@pytest.mark.slow
def test_shipped_content_passes(capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("runner.pool")
    from tests.content.conftest import ROOT

    assert main([str(ROOT / "content")]) == 0, capsys.readouterr().out
    out = capsys.readouterr().out
    assert "OK: 1 course, 7 lessons" in out
    assert "01-deep-learning-introduction: 9 checks, solution passes all" in out
