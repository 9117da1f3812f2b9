"""Fixtures for content tests: a copy of the seed course to break, and golden comparisons."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.support.content import SEED_COURSE, SEED_LESSON


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
