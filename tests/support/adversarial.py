"""The hostile programs of tests/runner/adversarial/, as both the runner's tests and the
deployment test run them: each file says what it tries (`# Tries:`), how its run must end
(`# Expect: status, ...`) and, when it needs more than the usual limits, which (`# Limits:`);
a `<case>.checks.py` beside it makes it a Check."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CASES = Path(__file__).resolve().parents[1] / "runner" / "adversarial"
SMALL = {"wall_s": 8, "memory_mb": 768, "output_kb": 64, "processes": 64}


@dataclass(frozen=True)
class Case:
    name: str
    source: str
    checks: str | None
    expected: frozenset[str]
    limits: dict[str, Any]

    def code(self, **values: str) -> str:
        """The program with its {PLACEHOLDERS} filled in (longest names first)."""
        code = self.source
        for key in sorted(values, key=len, reverse=True):
            code = code.replace("{" + key + "}", values[key])
        return code

    def request_fields(self) -> dict[str, Any]:
        fields: dict[str, Any] = {"limits": self.limits}
        if self.checks is not None:
            fields.update(mode="check", checks=self.checks)
        return fields


def names() -> list[str]:
    return sorted(p.stem for p in CASES.glob("*.py") if "." not in p.stem)


def load(name: str) -> Case:
    source = (CASES / f"{name}.py").read_text()
    expect = re.search(r"^# Expect: (.+)$", source, re.MULTILINE)
    assert expect, f"{name}.py says what it expects (# Expect: status, ...)"
    limits = dict(SMALL)
    if match := re.search(r"^# Limits: (.+)$", source, re.MULTILINE):
        for part in match.group(1).split(","):
            key, value = part.strip().split("=")
            limits[key] = float(value) if key == "wall_s" else int(value)
    checks_file = CASES / f"{name}.checks.py"
    return Case(
        name=name,
        source=source,
        checks=checks_file.read_text() if checks_file.exists() else None,
        expected=frozenset(s.strip() for s in expect.group(1).split(",")),
        limits=limits,
    )
