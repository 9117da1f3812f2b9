"""Runs a lesson's checks.py with pytest against the learner's finished script, one message per
check, in the order of the file.

No learner-written conftest, plugin or ini file can load: pytest runs with --noconftest, an
explicit empty ini file, no plugin autoload, the PYTEST_* variables the learner's code may
have set removed, importlib import mode (nothing put on sys.path), and the checks in a folder
made for them after the learner's code ended, under a random name. (Learner code shares this
process: one who patches pytest itself in memory fools their own checks and nothing else; see
docs/runner-protocol.md, "The honest limit".)
"""

from __future__ import annotations

import os
import sys
import tempfile
import types
from typing import Any

import pytest

from .messages import send

LEARNER_FILE = "main.py"
CHECKS_FILE = "checks.py"
# Variables through which pytest would load the learner's plugins or options.
PYTEST_VARIABLES = ("PYTEST_ADDOPTS", "PYTEST_PLUGINS", "PYTEST_DEBUG", "PYTEST_THEME")


def _first_paragraph(text: str) -> str:
    return text.strip().split("\n\n")[0].strip()[:2000]


class ChecksPlugin:
    """Runs a lesson's checks.py with pytest and sends one message per check, in file order."""

    def __init__(self, submission: types.ModuleType, learner_failed: dict[str, Any] | None) -> None:
        self._submission = submission
        self._learner_failed = learner_failed
        self.counts = {"passed": 0, "failed": 0, "errors": 0}

    @pytest.fixture
    def submission(self) -> types.ModuleType:
        return self._submission

    def pytest_runtest_setup(self, item: Any) -> None:
        if self._learner_failed is not None:
            line = self._learner_failed.get("line")
            where = f" on line {line}" if line else ""
            pytest.skip(f"not run: your code stopped with an error{where}; fix it first")

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_makereport(self, item: Any, call: Any) -> Any:
        outcome = yield
        report = outcome.get_result()
        report.dojo_excinfo = call.excinfo  # read in logreport below

    def pytest_runtest_logreport(self, report: Any) -> None:
        if report.when == "call" or (report.when == "setup" and not report.passed):
            function = getattr(self._items.get(report.nodeid), "function", None)
            title = getattr(function, "dojo_title", None) or report.nodeid.split("::")[-1]
            hint = getattr(function, "dojo_hint", "")
            status, message = self._outcome(report)
            if status == "passed":
                self.counts["passed"] += 1
                hint = ""
            elif status == "failed":
                self.counts["failed"] += 1
            elif status == "error":
                self.counts["errors"] += 1
            send(
                {
                    "type": "test",
                    "name": title,
                    "status": status,
                    "message": message,
                    "hint": hint,
                    "duration_ms": round(report.duration * 1000, 3),
                }
            )

    @staticmethod
    def _outcome(report: Any) -> tuple[str, str]:
        if report.passed:
            return "passed", ""
        if report.skipped:
            longrepr = report.longrepr
            reason = longrepr[2] if isinstance(longrepr, tuple) else str(longrepr)
            return "skipped", reason.removeprefix("Skipped: ")
        excinfo = getattr(report, "dojo_excinfo", None)
        if excinfo is None:
            return "error", _first_paragraph(str(report.longrepr))
        exc = excinfo.value
        if isinstance(exc, AssertionError):
            text = str(exc)
            # pytest appends its own explanation ("assert False\n + where …") to the check's
            # message; the learner reads the check author's words, or the bare assertion.
            own, _, explanation = text.partition("\nassert ")
            message = own if own.strip() else "assert " + explanation if explanation else text
            return "failed", _first_paragraph(message) or "the check's condition was false"
        where = ""
        for entry in reversed(excinfo.traceback):
            if os.path.basename(str(entry.path)) == LEARNER_FILE:
                where = f" (your code, line {entry.lineno + 1})"
                break
        return "error", f"{type(exc).__name__}: {_first_paragraph(str(exc))}{where}"

    def pytest_collection_modifyitems(self, items: list[Any]) -> None:
        self._items = {item.nodeid: item for item in items}

    def pytest_collectreport(self, report: Any) -> None:
        if report.failed:
            self.counts["errors"] += 1
            send(
                {
                    "type": "test",
                    "name": "loading the checks",
                    "status": "error",
                    "message": _first_paragraph(str(report.longrepr))[-2000:],
                    "hint": "The checks could not be loaded. If your code defines every name the "
                    "exercise asks for, tell your instructor.",
                    "duration_ms": 0.0,
                }
            )


def run_checks(
    source: str, submission: types.ModuleType, learner_failed: dict[str, Any] | None
) -> dict[str, int]:
    folder = tempfile.mkdtemp(prefix=".checks-", dir="/tmp")
    path = os.path.join(folder, CHECKS_FILE)
    with open(path, "w") as handle:
        handle.write(source)
    plugin = ChecksPlugin(submission, learner_failed)
    plugin._items = {}
    for name in PYTEST_VARIABLES:
        os.environ.pop(name, None)
    os.environ["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"
    # unraisableexception runs gc.collect() over and over at session end: 0.7 s of nothing.
    args = [
        path,
        "--noconftest",
        "--import-mode=importlib",
        "-p",
        "no:cacheprovider",
        "-p",
        "no:terminal",
        "-p",
        "no:unraisableexception",
        "--rootdir",
        folder,
        "-c",
        os.devnull,
        "-s",
        "-W",
        "ignore::DeprecationWarning",
    ]
    sys.stdout.flush()
    pytest.main(args, plugins=[plugin])
    return plugin.counts
