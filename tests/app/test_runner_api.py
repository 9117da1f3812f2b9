"""The web app uses the runner through its public API (runner/__init__.py) only: the runner's
insides (the pool, the sandbox, the harness) can change without the web app noticing."""

from __future__ import annotations

import ast
from pathlib import Path

import runner

ROOT = Path(__file__).resolve().parents[2]


def test_the_web_app_imports_only_the_runners_public_api() -> None:
    reaching_in = []
    for path in sorted((ROOT / "app").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            names = []
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            for name in names:
                if name.startswith("runner."):
                    reaching_in.append(f"{path.relative_to(ROOT)}:{node.lineno}: {name}")
    assert not reaching_in, "import these from `runner` instead:\n" + "\n".join(reaching_in)


def test_every_public_name_resolves() -> None:
    for name in runner.__all__:
        assert getattr(runner, name) is not None, name
    assert runner.WarmPool.__module__ == "runner.pool"  # loaded on first use
