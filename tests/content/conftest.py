"""Fixtures for content tests: a copy of the seed course to break, and golden comparisons."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SEED_COURSE = ROOT / "content" / "intro-to-deep-learning"
SEED_LESSON = "01-deep-learning-introduction"
GOLDEN = Path(__file__).parent / "golden"


@pytest.fixture
def course(tmp_path: Path) -> Path:
    """A fresh copy of the seed course with its first lesson only, ready to break one thing in.

    Only the seed lesson: a static problem in it must not send the course's other lessons
    to the sandbox, and golden messages must not change when lessons are added.
    """
    target = tmp_path / SEED_COURSE.name
    target.mkdir()
    shutil.copy(SEED_COURSE / "course.md", target / "course.md")
    shutil.copytree(
        SEED_COURSE / SEED_LESSON,
        target / SEED_LESSON,
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    return target


def edit(path: Path, old: str, new: str) -> None:
    """Replace one exact piece of a file (failing loudly if the seed changed under the test)."""
    text = path.read_text()
    assert text.count(old) == 1, f"{old!r} should occur once in {path.name}"
    path.write_text(text.replace(old, new))


def normalise(output: str, tmp_path: Path) -> str:
    """Output without what changes from run to run: the tmp folder and timings."""
    output = output.replace(str(tmp_path), "<tmp>")
    return re.sub(r"\d+\.\d s\b", "N s", output)


def assert_golden(name: str, actual: str) -> None:
    """Compare with golden/<name>.txt; UPDATE_GOLDEN=1 rewrites the file instead."""
    path = GOLDEN / f"{name}.txt"
    if os.environ.get("UPDATE_GOLDEN"):
        path.parent.mkdir(exist_ok=True)
        path.write_text(actual)
    assert path.exists(), f"no golden file {path.name}: run once with UPDATE_GOLDEN=1"
    assert actual == path.read_text()
