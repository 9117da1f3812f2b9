"""The zygote imports what the lessons import (runner/harness/warmup.py, PRELOAD), so no job
pays for an import a lesson makes: a new lesson that imports something new fails here until
it is added there."""

from __future__ import annotations

import ast
from pathlib import Path

from runner.harness.warmup import PRELOAD

CONTENT = Path(__file__).resolve().parents[2] / "content"
PROVIDED = {"dojo"}  # the harness's own module


def imported_modules(source: str) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
    return names


def test_every_module_the_lessons_import_is_preloaded() -> None:
    files = sorted(CONTENT.rglob("*.py"))
    assert files, "no lesson code found"
    missing = {}
    for path in files:
        for name in imported_modules(path.read_text()) - PROVIDED:
            if name not in PRELOAD:
                missing.setdefault(name, []).append(str(path.relative_to(CONTENT)))
    assert not missing, f"add these to warmup.PRELOAD: {missing}"
