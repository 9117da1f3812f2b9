"""``torchdojo content check [PATHS]``: prove that lessons work before learners see them.

Static first: front matter, file layout, every Python file parses, every check has a title and
a hint, every TODO has a check. Then, in the real sandbox, for every lesson at once: the
solution passes every check (and, when the front matter asks for a model summary, the summary
works on it), and the starter runs without an error but fails its checks (each
``test_todoN_...`` check, tied to TODO N, must run and fail). Every problem names the file and
line and says what to fix.

Run from the command line (with a sandbox pool of its own), the outcome for each lesson that
reached the sandbox is recorded (``CheckRecords``) so the instructor dashboard can say "verified
in the sandbox", "changed since the last check" or "failed". The dashboard's Validate button
checks one lesson the same way (``validate_lesson``) through the web app's runner client, its
embedded pool or its runner services: the runs are started by an ``Opener``, whichever it is, and
judged and recorded by the same code.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import hashlib
import json
import os
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from app.content import CheckInfo, ContentError, Lesson, collect
from runner import Done, Event, RunRequest, Summary, Test

if TYPE_CHECKING:
    from runner import WarmPool

Which = Literal["solution", "starter"]
WHICH: tuple[Which, ...] = ("solution", "starter")

Opener = Callable[[RunRequest], Awaitable[AsyncIterator[Event]]]
"""Starts one run and gives its events: the web app's ``RunnerClient.open`` (embedded pool or
runner services; it raises ``RunnerBusy`` at once when no runner has room), or ``pool_opener``."""


@dataclass
class Outcome:
    """What one run of a lesson file in the sandbox came to."""

    lesson: Lesson
    which: Which
    done: Done | None = None
    tests: list[Test] = field(default_factory=list)
    stderr: str = ""
    summary: Summary | None = None

    @property
    def path(self) -> Path:
        return self.lesson.path / f"{self.which}.py"


def pool_opener(pool: WarmPool) -> Opener:
    """Runs in a WarmPool of one's own (the command line's)."""

    async def open_run(request: RunRequest) -> AsyncIterator[Event]:
        return pool.run(request)

    return open_run


async def _run(open_run: Opener, lesson: Lesson, which: Which) -> Outcome:
    outcome = Outcome(lesson, which)
    code = lesson.solution if which == "solution" else lesson.starter
    request: RunRequest = lesson.run_request(code, mode="check")
    events = await open_run(request)
    try:
        async for event in events:
            if isinstance(event, Test):
                outcome.tests.append(event)
            elif isinstance(event, Done):
                outcome.done = event
            elif isinstance(event, Summary):
                outcome.summary = event
            elif event.type == "output" and event.stream == "stderr":
                outcome.stderr += event.text
    finally:
        close = getattr(events, "aclose", None)  # stopped early: give its sandbox back now
        if close is not None:
            await close()
    return outcome


async def run_lessons(open_run: Opener, lessons: list[Lesson]) -> list[Outcome]:
    """Every lesson's solution and starter, run concurrently, in that order. If one cannot start
    (every runner busy), the others are stopped and its error raised."""
    tasks = [
        asyncio.ensure_future(_run(open_run, lesson, which))
        for lesson in lessons
        for which in WHICH
    ]
    try:
        return list(await asyncio.gather(*tasks))
    finally:
        for task in tasks:
            task.cancel()  # a no-op for those that finished
        await asyncio.gather(*tasks, return_exceptions=True)


async def _run_all(lessons: list[Lesson]) -> list[Outcome]:
    """Every lesson's solution and starter, run concurrently in warm sandboxes."""
    from runner import WarmPool  # imported here: static checks work without the runner

    size = max(1, min(2 * len(lessons), os.cpu_count() or 2))
    async with WarmPool(size=size) as pool:
        return await run_lessons(pool_opener(pool), lessons)


def _stopped(outcome: Outcome) -> str:
    """Why a run did not complete, in words."""
    done = outcome.done
    if done is None:
        return "ended without a result (the runner sent no done event)"
    if done.status == "timeout":
        limit = outcome.lesson.exercise.limits
        wall = f"{limit.wall_s:g} s" if limit else "the default wall time"
        return f"ran out of time ({wall}); make it faster or raise exercise.limits.wall_s"
    if done.error:
        return f"stopped with {done.error.type}: {done.error.message}"
    return f"ended with status {done.status}"


def _clause(message: str) -> str:
    """A check's message on one line, without its closing full stop."""
    return " ".join(message.split()).rstrip(".") or "no message"


def _check_line(lesson: Lesson, title: str) -> tuple[CheckInfo | None, int]:
    info = next((i for i in lesson.check_infos if i.title == title), None)
    return info, info.line if info else 1


def judge_solution(outcome: Outcome) -> list[ContentError]:
    """The solution must complete and pass every check."""
    lesson, checks = outcome.lesson, outcome.lesson.path / "checks.py"
    if outcome.done is None or outcome.done.status != "completed":
        line = outcome.done.error.line if outcome.done and outcome.done.error else None
        return [ContentError(outcome.path, line, f"the solution {_stopped(outcome)}. Fix it.")]
    errors = []
    for test in outcome.tests:
        if test.status == "passed":
            continue
        _, line = _check_line(lesson, test.name)
        verb = "fails" if test.status == "failed" else f"gets {test.status} from"
        errors.append(
            ContentError(
                checks,
                line,
                f'the solution {verb} check "{test.name}": {_clause(test.message)}. '
                "Fix the solution or the check.",
            )
        )
    if not outcome.tests:
        errors.append(ContentError(checks, 1, "no checks ran: add test_* functions."))
    if lesson.exercise.summary and outcome.summary is None:
        errors.append(_no_summary(outcome))
    return errors


# What the harness writes to stderr when the model summary fails (runner/harness/capture.py).
_SUMMARY_FAILED = "[torchdojo] no model summary: "


def _no_summary(outcome: Outcome) -> ContentError:
    """The front matter asks for a model summary, but the solution's run gave none."""
    spec = outcome.lesson.exercise.summary
    assert spec is not None
    reason = next(
        (
            line.removeprefix(_SUMMARY_FAILED).strip()
            for line in outcome.stderr.splitlines()
            if line.startswith(_SUMMARY_FAILED)
        ),
        "the runner sent no summary",
    )
    return ContentError(
        outcome.lesson.path / "lesson.md",
        outcome.lesson.summary_line,
        f"the model summary fails on the solution ({_clause(reason)}), so learners would see "
        f"none: exercise.summary.input_size {spec.input_size} must be the shape of a batch "
        f"that the model from {spec.factory}() accepts (the batch size first, e.g. [1, 64] for "
        "64 features). Fix the input size or the factory.",
    )


def judge_starter(outcome: Outcome) -> list[ContentError]:
    """The starter must run without errors and fail its checks, cleanly."""
    lesson, checks = outcome.lesson, outcome.lesson.path / "checks.py"
    if outcome.done is None or outcome.done.status != "completed":
        line = outcome.done.error.line if outcome.done and outcome.done.error else None
        return [
            ContentError(
                outcome.path,
                line,
                f"the starter {_stopped(outcome)}, but it must run before any TODO is done: "
                "give each TODO a placeholder that runs.",
            )
        ]
    if not outcome.tests:
        return [
            ContentError(
                checks,
                1,
                "no checks ran on the starter, so nothing proves a learner has work to do: "
                "make sure checks.py defines test_* functions that can run on the starter.",
            )
        ]
    if all(test.status == "passed" for test in outcome.tests):
        return [
            ContentError(
                outcome.path,
                1,
                "the starter already passes every check, so a learner has nothing to do: "
                "leave its TODOs undone, or add checks for them.",
            )
        ]
    errors = []
    for test in outcome.tests:
        info, line = _check_line(lesson, test.name)
        if test.status == "error":
            errors.append(
                ContentError(
                    checks,
                    line,
                    f'check "{test.name}" crashes on the starter ({_clause(test.message)}) '
                    "instead of failing: make it fail with an assert and a message a learner "
                    "can act on.",
                )
            )
        elif test.status == "skipped" and info and info.todo is not None:
            errors.append(
                ContentError(
                    checks,
                    line,
                    f'check "{test.name}", tied to TODO {info.todo}, was skipped on the starter, '
                    f"so nothing proves TODO {info.todo} is left to do: make it fail with an "
                    "assert and a message instead of skipping.",
                )
            )
        elif test.status == "passed" and info and info.todo is not None:
            errors.append(
                ContentError(
                    checks,
                    line,
                    f'the starter passes check "{test.name}", which is tied to TODO {info.todo} '
                    f"by its name ({info.function}): leave TODO {info.todo} undone in "
                    "starter.py, or make the check stricter.",
                )
            )
    ran = {test.name for test in outcome.tests}
    if not ran <= {info.title for info in lesson.check_infos}:
        return errors  # checks.py did not load ("loading the checks" crashed): said above
    errors.extend(
        ContentError(
            checks,
            info.line,
            f'check "{info.title}", tied to TODO {info.todo}, did not run on the starter: '
            "make sure pytest collects it (a plain def test_... at the top level of checks.py, "
            "no parametrize or class around it).",
        )
        for info in lesson.check_infos
        if info.todo is not None and info.title not in ran
    )
    return errors


def judge(outcome: Outcome) -> list[ContentError]:
    """The problems one run shows: the solution's or the starter's rules."""
    return judge_solution(outcome) if outcome.which == "solution" else judge_starter(outcome)


def _paint(text: str, colour: str) -> str:
    codes = {"green": "32", "red": "31"}
    if sys.stdout.isatty() and not os.environ.get("NO_COLOR"):
        return f"\033[{codes[colour]}m{text}\033[0m"
    return text


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def _limits_refused(lesson: Lesson) -> ContentError | None:
    """Limits above what this machine's runner allows: every run of the lesson would be refused
    (the runner service answers 422, the embedded pool the same), so no learner could run it."""
    from runner import lesson_maximum, runner_settings

    limits = lesson.exercise.limits
    over = limits.above(lesson_maximum(runner_settings())) if limits else []
    if not over:
        return None
    return ContentError(
        lesson.path / "lesson.md",
        lesson.limits_line,
        f"exercise.{'; exercise.'.join(over)}, so every run of this lesson would be refused: "
        "lower the limits, or raise the runner's RUNNER_MAX_LIMITS (docs/configuration.md).",
    )


def main(paths: list[str], results: Path | None = None) -> int:
    """Check the lessons under ``paths``; 0 when all is well, 1 with every problem printed.

    With ``results``, each lesson that ran in the sandbox is recorded there (``CheckRecords``).
    """
    started = time.monotonic()
    courses, errors = collect([Path(p) for p in paths or ["content"]])
    lessons = [lesson for course in courses for lesson in course.lessons]
    refused = [problem for lesson in lessons if (problem := _limits_refused(lesson))]
    errors.extend(refused)
    lessons = [lesson for lesson in lessons if lesson.path not in {p.path.parent for p in refused}]
    # Taken before the runs: an edit saved while they run is not what they proved.
    digests = {lesson.path: lesson_digest(lesson.path) for lesson in lessons}
    outcomes: list[Outcome] = []
    if lessons:
        try:
            outcomes = asyncio.run(_run_all(lessons))
        except Exception as exc:  # no bubblewrap, no seccomp, ...: nothing was proven
            print(_paint(f"The sandbox could not start: {exc}", "red"))
            print("The content check runs every solution and starter in the real sandbox.")
            return 1
    found: dict[Path, list[ContentError]] = {lesson.path: [] for lesson in lessons}
    for outcome in outcomes:
        problems = judge(outcome)
        found[outcome.lesson.path].extend(problems)
        errors.extend(problems)
    if results is not None and lessons:
        _record(results, lessons, digests, found)
    if not lessons and not errors:
        print(f"No lessons found in {', '.join(paths)}: give a content, course or lesson folder.")
        return 1

    for error in errors:
        print(error)
    elapsed = time.monotonic() - started
    if errors:
        print(_paint(f"{_plural(len(errors), 'problem')} found ({elapsed:.1f} s).", "red"))
        return 1
    for outcome in outcomes:
        if outcome.which == "solution":
            seconds = (outcome.done.duration_ms / 1000) if outcome.done else 0.0
            print(
                f"  {outcome.lesson.course}/{outcome.lesson.path.name}: "
                f"{_plural(len(outcome.tests), 'check')}, solution passes all in {seconds:.1f} s"
            )
    print(
        _paint(
            f"OK: {_plural(len({c.slug for c in courses}), 'course')}, "
            f"{_plural(len(lessons), 'lesson')}: "
            "front matter valid, files parse, solutions pass, starters run and fail their "
            f"checks ({elapsed:.1f} s).",
            "green",
        )
    )
    return 0


# --- recorded results, for the instructor dashboard -----------------------------------------

KEEP_PER_LESSON = 10


def lesson_digest(folder: Path, *extra: Path) -> str:
    """A hash of every file of a lesson (names and bytes; dot files and caches left out), and of
    ``extra`` files: it changes whenever anything the lesson is made of changes."""
    digest = hashlib.sha256()
    files = sorted(
        path
        for path in folder.rglob("*")
        if path.is_file()
        and not any(
            part.startswith(".") or part == "__pycache__" for part in path.relative_to(folder).parts
        )
    )
    for path in [*files, *extra]:
        with contextlib.suppress(OSError):  # deleted while we looked: the next look sees it
            name = path.relative_to(folder) if path.is_relative_to(folder) else path.name
            digest.update(f"{name}\0".encode())
            digest.update(path.read_bytes())
            digest.update(b"\0")
    return digest.hexdigest()


@dataclass(frozen=True)
class CheckRecord:
    """One lesson's content check: which files (by digest), whether it passed, and when."""

    digest: str
    ok: bool
    problems: list[str]  # "checks.py:12: what to fix", relative to the lesson folder
    checked_at: str  # ISO 8601, UTC


class CheckRecords:
    """Content check results in a JSON file, ``{"lessons": {"course/NN-lesson": [records]}}``.

    Why a file and not a table: the check is a command an instructor runs on their checkout,
    needing no database; the app reads it, and adds to it when an instructor validates a lesson
    from the dashboard (``Settings.content_check_file`` says where it is). Why keyed by
    ``course/folder`` and a digest of the lesson's files: a result is about exact files, so a
    lesson whose files match a record is verified whatever checkout or copy it sits in, and any
    edit reads as "changed since the last check" until it is checked again. A few records per
    lesson are kept, newest first, so undoing an edit finds its earlier result again.
    """

    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self) -> dict[str, list[CheckRecord]]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            return {
                key: [CheckRecord(**record) for record in records]
                for key, records in data["lessons"].items()
            }
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            return {}  # none yet, or unreadable: every lesson reads as not checked

    def lookup(
        self, key: str, digest: str, loaded: dict[str, list[CheckRecord]] | None = None
    ) -> tuple[CheckRecord | None, CheckRecord | None]:
        """The record for exactly these files (or None), and the lesson's latest record."""
        records = (self.load() if loaded is None else loaded).get(key, [])
        exact = next((record for record in records if record.digest == digest), None)
        return exact, records[0] if records else None

    def add(self, entries: dict[str, CheckRecord]) -> None:
        """Record ``{key: record}``: read, merge and replace the file under a lock, atomically."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._locked():
            lessons = self.load()
            for key, record in entries.items():
                older = [r for r in lessons.get(key, []) if r.digest != record.digest]
                lessons[key] = [record, *older][:KEEP_PER_LESSON]
            data = {
                "version": 1,
                "lessons": {
                    key: [asdict(r) for r in records] for key, records in sorted(lessons.items())
                },
            }
            handle, name = tempfile.mkstemp(dir=self.path.parent, prefix=".content-check-")
            with os.fdopen(handle, "w", encoding="utf-8") as file:
                json.dump(data, file, indent=1)
            os.chmod(name, 0o644)  # mkstemp makes it private; the app may run as another user
            os.replace(name, self.path)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        with open(self.path.with_name(self.path.name + ".lock"), "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # two checks at once must not drop each other's
            yield


def record_key(lesson_folder: Path) -> str:
    return f"{lesson_folder.parent.name}/{lesson_folder.name}"


def _relative(error: ContentError, folder: Path) -> str:
    path = error.path.relative_to(folder) if error.path.is_relative_to(folder) else error.path
    return f"{path}:{error.line}: {error.message}" if error.line else f"{path}: {error.message}"


def make_record(lesson: Lesson, digest: str, problems: list[ContentError]) -> CheckRecord:
    """What to record about a lesson whose files had ``digest`` when its runs began."""
    return CheckRecord(
        digest=digest,
        ok=not problems,
        problems=[_relative(error, lesson.path) for error in problems],
        checked_at=datetime.now(UTC).isoformat(timespec="seconds"),
    )


def _record(
    results: Path,
    lessons: list[Lesson],
    digests: dict[Path, str],
    found: dict[Path, list[ContentError]],
) -> None:
    entries = {
        record_key(lesson.path): make_record(lesson, digests[lesson.path], found[lesson.path])
        for lesson in lessons
    }
    try:
        CheckRecords(results).add(entries)
    except OSError as exc:  # a read-only checkout: the check itself still counts
        print(f"(The results could not be recorded for the dashboard in {results}: {exc}.)")


# --- one lesson, from the dashboard -----------------------------------------------------------


@dataclass
class Validation:
    """One lesson checked in the sandbox: its two runs, the problems they show, the record."""

    lesson: Lesson
    outcomes: list[Outcome]  # the solution's, then the starter's
    problems: list[ContentError]
    record: CheckRecord

    @property
    def runner_failure(self) -> str | None:
        """Why the runner itself failed (then the runs prove nothing either way), or None."""
        for outcome in self.outcomes:
            done = outcome.done
            if done is None:
                return f"the {outcome.which}'s run ended without a result"
            if done.status == "internal_error":
                reason = done.error.message if done.error else "no reason given"
                return f"the {outcome.which}'s run failed in the runner: {reason}"
        return None


async def validate_lesson(open_run: Opener, lesson: Lesson, digest: str) -> Validation:
    """Run the lesson's solution and starter through ``open_run`` and judge them exactly as
    ``torchdojo content check`` does. ``digest``: its files' ``lesson_digest``, taken before it
    was loaded, so an edit saved meanwhile reads as "changed" rather than as verified.

    Nothing is recorded here: the caller adds ``record`` to its ``CheckRecords`` unless
    ``runner_failure`` says the runs proved nothing."""
    outcomes = await run_lessons(open_run, [lesson])
    problems = [problem for outcome in outcomes for problem in judge(outcome)]
    return Validation(lesson, outcomes, problems, make_record(lesson, digest, problems))
