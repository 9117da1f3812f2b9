"""For the content tests: the seed course and lesson, edits of a lesson copy, golden files."""

from __future__ import annotations

import os
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SEED_COURSE = ROOT / "content" / "intro-to-deep-learning"


SEED_LESSON = "01-deep-learning-introduction"


GOLDEN = ROOT / "tests" / "content" / "golden"


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
