"""Courses and lessons from ``content/``: front matter validated, Markdown rendered, files parsed.

    content/<course>/course.md              front matter: title, description (+ optional Markdown)
    content/<course>/<NN-lesson>/lesson.md  front matter: title, summary, exercise (+ Markdown)
                                 starter.py, solution.py, checks.py

Every problem is a ``ContentError`` naming the file, the line and what to do about it.
Parsed files are cached by path and a hash of their bytes, so ``load_courses`` is cheap to call
on every request in development and picks up every edit as soon as it is saved (even one that
keeps the file's size and modification time).
"""

from __future__ import annotations

import ast
import contextlib
import difflib
import hashlib
import io
import os
import re
import threading
import time
import tokenize
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from app.markdown import render_markdown
from runner import RunMode, RunRequest, SandboxLimits, SummarySpec

LESSON_FILES = ("lesson.md", "starter.py", "solution.py", "checks.py")
_LESSON_DIR = re.compile(r"^(\d+)-([a-z0-9]+(?:-[a-z0-9]+)*)$")
_SLUG = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
_TODO = re.compile(r"\bTODO\s+(\d+)\b")
# A check is tied to TODO N by its function name: test_todo3_..., so the content check knows
# which checks the untouched starter must fail.
_CHECK_TODO = re.compile(r"^test_todo(\d+)(?:_|$)")


class ContentError(Exception):
    """One problem in the content: where it is and how to fix it."""

    def __init__(self, path: Path, line: int | None, message: str) -> None:
        super().__init__(message)
        self.path = path
        self.line = line
        self.message = message

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.line else str(self.path)
        return f"{where}: {self.message}"


class InvalidContent(Exception):
    """Raised by the loaders when there is at least one ``ContentError``; lists them all."""

    def __init__(self, errors: list[ContentError]) -> None:
        super().__init__("\n".join(str(error) for error in errors))
        self.errors = errors


# --- front matter ---------------------------------------------------------------------------


class _Strict(BaseModel):
    # extra="forbid": a misspelt key is an error, not a silently ignored setting.
    model_config = ConfigDict(extra="forbid", frozen=True)


class Exercise(_Strict):
    """The ``exercise:`` block of a lesson's front matter."""

    title: str = Field(..., min_length=1)
    summary: SummarySpec | None = None
    limits: SandboxLimits | None = None
    hints: list[str] = Field(default_factory=list)


class LessonMeta(_Strict):
    title: str = Field(..., min_length=1)
    summary: str = Field(..., min_length=1)
    exercise: Exercise


class CourseMeta(_Strict):
    title: str = Field(..., min_length=1)
    description: str = Field(..., min_length=1)


# --- what the app uses ----------------------------------------------------------------------


class CheckInfo(_Strict):
    """One check in checks.py, read without running it."""

    function: str
    title: str
    hint: str
    line: int
    todo: int | None = None


class Lesson(_Strict):
    course: str
    slug: str
    number: int
    title: str
    summary: str
    body_html: str
    starter: str
    solution: str
    checks: str
    exercise: Exercise
    check_infos: list[CheckInfo]
    path: Path
    # lesson.md's line of exercise.summary.input_size, where a summary that fails is reported.
    summary_line: int | None = None
    # lesson.md's line of exercise.limits, where limits the runner refuses are reported.
    limits_line: int | None = None

    def run_request(
        self, code: str, mode: RunMode = "run", *, owner: str | None = None
    ) -> RunRequest:
        """What the runner needs to run ``code`` for this lesson (`owner`: an opaque key for
        whoever runs it, for the runner's fair queue)."""
        return RunRequest(
            code=code,
            mode=mode,
            checks=self.checks if mode == "check" else None,
            summary=self.exercise.summary,
            limits=self.exercise.limits,
            owner=owner,
        )


class Course(_Strict):
    slug: str
    title: str
    description: str
    body_html: str
    lessons: list[Lesson]
    path: Path

    def lesson(self, slug: str) -> Lesson | None:
        return next((lesson for lesson in self.lessons if lesson.slug == slug), None)


# --- parsing one file (cached) --------------------------------------------------------------

M = TypeVar("M", bound=BaseModel)


@dataclass(frozen=True)
class _Document:
    meta: BaseModel
    body_html: str
    node: yaml.Node | None  # kept to point later errors (e.g. a factory name) at their line


@dataclass(frozen=True)
class _PythonFile:
    source: str
    tree: ast.Module


_cache: dict[tuple[Path, str], tuple[bytes, Any]] = {}


def _cached(path: Path, kind: str, parse: Any) -> Any:
    """``parse(path)``, remembered until the file's bytes change.

    Keyed by a hash of the bytes, not the mtime and size: an edit within the filesystem's
    timestamp granularity that keeps the size (a digit changed) would otherwise be missed.
    Reading a lesson's few small files costs far less than parsing and rendering them."""
    stamp = hashlib.sha256(path.read_bytes()).digest()
    hit = _cache.get((path, kind))
    if hit is not None and hit[0] == stamp:
        return hit[1]
    value = parse(path)  # errors are not cached: the next call reports them again
    _cache[(path, kind)] = (stamp, value)
    return value


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidContent(
            [ContentError(path, None, f"is not UTF-8 text ({exc.reason}): save it as UTF-8.")]
        ) from None


def _split_front_matter(path: Path, text: str) -> tuple[str, str]:
    """The YAML between the leading ``---`` lines, and the Markdown after them."""
    lines = text.splitlines(keepends=True)
    if not lines or lines[0].strip() != "---":
        raise InvalidContent(
            [
                ContentError(
                    path,
                    1,
                    'no front matter: start the file with a line "---", then the keys '
                    '("title: ..."), then another "---" line.',
                )
            ]
        )
    for index, line in enumerate(lines[1:], start=1):
        if line.strip() == "---":
            return "".join(lines[1:index]), "".join(lines[index + 1 :])
    raise InvalidContent(
        [ContentError(path, 1, 'the front matter is never closed: add a "---" line after it.')]
    )


# Front matter starts on the file's second line; YAML marks count from 0.
_FRONT_MATTER_OFFSET = 2


def _parse_yaml(path: Path, text: str) -> tuple[Any, yaml.Node | None]:
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + _FRONT_MATTER_OFFSET if mark else 1
        problem = " ".join(part for part in (exc.context, exc.problem) if part)
        raise InvalidContent(
            [
                ContentError(
                    path,
                    line,
                    f"the front matter is not valid YAML ({problem}): indent nested keys with "
                    'spaces and put values that contain ": " or start with a quote in quotes.',
                )
            ]
        ) from None
    except yaml.YAMLError as exc:
        raise InvalidContent(
            [ContentError(path, 1, f"the front matter is not valid YAML ({exc}).")]
        ) from None
    return data, node


def _line_of(node: yaml.Node | None, loc: tuple[int | str, ...]) -> int:
    """The file line of the key at ``loc``, or of its nearest parent that exists."""
    line = 1  # the opening "---" when nothing better is known
    for key in loc:
        if isinstance(node, yaml.MappingNode):
            match = next((kv for kv in node.value if kv[0].value == key), None)
            if match is None:
                break
            line = match[0].start_mark.line + _FRONT_MATTER_OFFSET
            node = match[1]
        elif isinstance(node, yaml.SequenceNode) and isinstance(key, int) and key < len(node.value):
            node = node.value[key]
            line = node.start_mark.line + _FRONT_MATTER_OFFSET
        else:
            break
    return line


def _model_at(model: type[BaseModel], loc: tuple[int | str, ...]) -> type[BaseModel] | None:
    """The pydantic model that holds the keys at ``loc`` (for "allowed keys" messages)."""
    for key in loc:
        field = model.model_fields.get(str(key))
        if field is None:
            return None
        candidates = [field.annotation, *getattr(field.annotation, "__args__", ())]
        nested = [c for c in candidates if isinstance(c, type) and issubclass(c, BaseModel)]
        if not nested:
            return None
        model = nested[0]
    return model


def _explain(model: type[BaseModel], error: Any) -> str:
    """A pydantic error as a sentence an instructor can act on."""
    loc: tuple[int | str, ...] = tuple(error["loc"])
    dotted = ".".join(str(part) for part in loc)
    parent = ".".join(str(part) for part in loc[:-1])
    key = str(loc[-1]) if loc else ""
    if error["type"] == "extra_forbidden":
        holder = _model_at(model, loc[:-1])
        allowed = list(holder.model_fields) if holder else []
        close = difflib.get_close_matches(key, allowed, n=1)
        guess = f' (did you mean "{close[0]}"?)' if close else ""
        where = f" in {parent}" if parent else ""
        return f'unknown key "{key}"{where}{guess}: the keys allowed here are {", ".join(allowed)}.'
    if error["type"] == "missing":
        where = f' under "{parent}:"' if parent else ""
        return f'"{dotted}" is missing: add a line "{key}: ..."{where}.'
    return f'"{dotted}": {error["msg"]} (got {error["input"]!r}): fix the value.'


def _parse_document(path: Path, model: type[M]) -> _Document:
    text = _read_text(path)
    front, body = _split_front_matter(path, text)
    data, node = _parse_yaml(path, front)
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise InvalidContent(
            [
                ContentError(
                    path, 2, 'the front matter must be "key: value" lines, e.g. "title: ..."'
                )
            ]
        )
    try:
        meta = model.model_validate(data)
    except ValidationError as exc:
        errors = [
            ContentError(path, _line_of(node, tuple(err["loc"])), _explain(model, err))
            for err in exc.errors()
        ]
        raise InvalidContent(errors) from None
    return _Document(meta=meta, body_html=render_markdown(body), node=node)


# CPython before 3.11.8 can fail ast.parse when two threads parse at once ("SystemError: AST
# constructor recursion depth mismatch", gh-106905); requests load content in worker threads.
_PARSE_LOCK = threading.Lock()


def _parse_python(path: Path) -> _PythonFile:
    source = _read_text(path)
    try:
        with _PARSE_LOCK:
            tree = ast.parse(source, filename=str(path))
    except SyntaxError as exc:
        raise InvalidContent(
            [
                ContentError(
                    path,
                    exc.lineno,
                    f"Python syntax error: {exc.msg}. Fix the code so that the file parses.",
                )
            ]
        ) from None
    return _PythonFile(source=source, tree=tree)


# --- reading checks.py and starter.py without running them ----------------------------------


def _check_decorator(func: ast.FunctionDef | ast.AsyncFunctionDef) -> ast.Call | None:
    for decorator in func.decorator_list:
        if isinstance(decorator, ast.Call):
            target = decorator.func
            name = target.attr if isinstance(target, ast.Attribute) else getattr(target, "id", "")
            if name == "check":
                return decorator
    return None


def read_checks(path: Path, tree: ast.Module) -> tuple[list[CheckInfo], list[ContentError]]:
    """Each ``test_*`` function's title, hint and TODO number, from the ``@check`` decorator."""
    infos: list[CheckInfo] = []
    errors: list[ContentError] = []
    seen: dict[str, int] = {}
    for func in tree.body:
        if not isinstance(func, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        if not func.name.startswith("test"):
            continue
        call = _check_decorator(func)
        title = call.args[0] if call and call.args else None
        hint = next((kw.value for kw in call.keywords if kw.arg == "hint"), None) if call else None
        if not (isinstance(title, ast.Constant) and isinstance(title.value, str)) or not (
            isinstance(hint, ast.Constant) and isinstance(hint.value, str)
        ):
            errors.append(
                ContentError(
                    path,
                    func.lineno,
                    f'{func.name} needs a title and a hint: decorate it with @check("what the '
                    'learner reads", hint="what to try when it fails"), both plain strings.',
                )
            )
            continue
        if title.value in seen:
            errors.append(
                ContentError(
                    path,
                    func.lineno,
                    f'two checks are titled "{title.value}" (the other is on line '
                    f"{seen[title.value]}): give each check its own title.",
                )
            )
            continue
        seen[title.value] = func.lineno
        todo = _CHECK_TODO.match(func.name)
        infos.append(
            CheckInfo(
                function=func.name,
                title=title.value,
                hint=hint.value,
                line=func.lineno,
                todo=int(todo.group(1)) if todo else None,
            )
        )
    if not infos and not errors:
        errors.append(
            ContentError(
                path, 1, "has no checks: add a test_* function decorated with @check(...)."
            )
        )
    return infos, errors


def todo_lines(source: str) -> dict[int, int]:
    """TODO number -> the line of its first mention in a comment (``# TODO N: ...``)."""
    found: dict[int, int] = {}
    tokens = tokenize.generate_tokens(io.StringIO(source).readline)
    for token in tokens:
        if token.type == tokenize.COMMENT:
            for match in _TODO.finditer(token.string):
                found.setdefault(int(match.group(1)), token.start[0])
    return found


def _defines(tree: ast.Module, name: str) -> bool:
    """Whether ``name`` is bound at the top level of the module."""
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            if node.name == name:
                return True
        elif isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if any(isinstance(t, ast.Name) and t.id == name for t in targets):
                return True
    return False


# --- lessons and courses --------------------------------------------------------------------


def _load_lesson(folder: Path, course: str, errors: list[ContentError]) -> Lesson | None:
    """The lesson in ``folder``, or None with its problems appended to ``errors``."""
    before = len(errors)
    match = _LESSON_DIR.match(folder.name)
    if match is None:
        errors.append(
            ContentError(
                folder,
                None,
                "a lesson folder is named NN-slug, in lowercase letters, digits and dashes "
                "(e.g. 02-tensors): rename it.",
            )
        )
        return None
    for name in LESSON_FILES:
        if not (folder / name).is_file():
            errors.append(
                ContentError(
                    folder / name,
                    None,
                    f"missing: every lesson has {', '.join(LESSON_FILES)}. Add {name}.",
                )
            )
    document: _Document | None = None
    python: dict[str, _PythonFile] = {}
    for name in LESSON_FILES:
        path = folder / name
        if not path.is_file():
            continue
        try:
            if name == "lesson.md":
                document = _cached(path, "lesson", lambda p: _parse_document(p, LessonMeta))
            else:
                python[name] = _cached(path, "python", _parse_python)
        except InvalidContent as exc:
            errors.extend(exc.errors)

    infos: list[CheckInfo] = []
    if "checks.py" in python:
        infos, check_errors = read_checks(folder / "checks.py", python["checks.py"].tree)
        errors.extend(check_errors)
        if "starter.py" in python:
            errors.extend(_todo_problems(folder, infos, python["starter.py"].source))
    summary_line: int | None = None
    limits_line: int | None = None
    if document is not None:
        summary_line, limits_line = _exercise_problems(folder, document, python, errors)
    if len(errors) > before or document is None:
        return None
    meta = document.meta
    assert isinstance(meta, LessonMeta)
    return Lesson(
        course=course,
        slug=match.group(2),
        number=int(match.group(1)),
        title=meta.title,
        summary=meta.summary,
        body_html=document.body_html,
        starter=python["starter.py"].source,
        solution=python["solution.py"].source,
        checks=python["checks.py"].source,
        exercise=meta.exercise,
        check_infos=infos,
        path=folder,
        summary_line=summary_line,
        limits_line=limits_line,
    )


def _todo_problems(folder: Path, infos: list[CheckInfo], starter: str) -> list[ContentError]:
    """Checks tied to a TODO the starter lacks, and TODOs no check is tied to."""
    todos = todo_lines(starter)
    problems = [
        ContentError(
            folder / "checks.py",
            info.line,
            f"{info.function} is tied to TODO {info.todo} by its name, but "
            f'starter.py has no "# TODO {info.todo}" marker: fix the number in the '
            "name or add the TODO.",
        )
        for info in infos
        if info.todo is not None and info.todo not in todos
    ]
    if infos:  # no checks at all is reported once, by read_checks
        tied = {info.todo for info in infos}
        problems += [
            ContentError(
                folder / "starter.py",
                line,
                f"TODO {todo} has no check: add one to checks.py named "
                f"test_todo{todo}_..., so the content check proves the starter leaves "
                "it undone and a learner sees when it is done.",
            )
            for todo, line in sorted(todos.items())
            if todo not in tied
        ]
    return problems


def _exercise_problems(
    folder: Path,
    document: _Document,
    python: dict[str, _PythonFile],
    errors: list[ContentError],
) -> tuple[int | None, int | None]:
    """Problems of the front matter's exercise block (appended to `errors`); returns the lines
    of its summary's input_size and of its limits, where later errors about them point."""
    meta = document.meta
    assert isinstance(meta, LessonMeta)
    summary = meta.exercise.summary
    limits_line = _line_of(document.node, ("exercise", "limits")) if meta.exercise.limits else None
    if not summary:
        return None, limits_line
    summary_line = _line_of(document.node, ("exercise", "summary", "input_size"))
    if not all(size > 0 for size in summary.input_size):
        errors.append(
            ContentError(
                folder / "lesson.md",
                summary_line,
                f"exercise.summary.input_size is {summary.input_size}, but every size must "
                "be a whole number above 0: the batch size, then the shape of one input "
                "(e.g. [1, 64] for 64 features).",
            )
        )
    for name in ("starter.py", "solution.py"):
        if name in python and not _defines(python[name].tree, summary.factory):
            errors.append(
                ContentError(
                    folder / "lesson.md",
                    _line_of(document.node, ("exercise", "summary", "factory")),
                    f'exercise.summary.factory is "{summary.factory}", but {name} defines '
                    f"no {summary.factory} at its top level: fix the name or define it there.",
                )
            )
    return summary_line, limits_line


# --- finding courses and lessons: the one place that says which folders they are -------------

# Any folder whose name starts with a digit is meant as a lesson (a misnamed one is reported,
# not skipped); NN-slug is the valid form (_LESSON_DIR), NN-anything its number and name.
_LESSON_FOLDER = re.compile(r"^(\d+)-(.+)$")


def is_lesson_dir(path: Path) -> bool:
    return path.is_dir() and path.name[:1].isdigit()


def lesson_dirs(course_dir: Path) -> list[Path]:
    """The lesson folders of a course folder, in order."""
    return sorted(p for p in course_dir.iterdir() if is_lesson_dir(p))


def lesson_folder_parts(name: str) -> tuple[int, str] | None:
    """(number, slug) of a lesson folder's name, also of one not validly named: 02-Tensors."""
    match = _LESSON_FOLDER.match(name)
    return (int(match.group(1)), match.group(2)) if match else None


def course_dirs(root: Path) -> list[Path]:
    """The course folders under a content root, in the order `collect` reads them: not hidden
    (. or _), with a course.md or at least one lesson folder."""
    return [
        child
        for child in sorted(p for p in root.iterdir() if p.is_dir())
        if not child.name.startswith((".", "_"))
        and ((child / "course.md").is_file() or any(map(is_lesson_dir, child.iterdir())))
    ]


def _load_course(
    folder: Path, errors: list[ContentError], only: Path | None = None
) -> Course | None:
    """The course in ``folder`` with its valid lessons (or just ``only``); problems go to errors."""
    course_md = folder / "course.md"
    before = len(errors)
    if not _SLUG.match(folder.name):
        errors.append(
            ContentError(
                folder,
                None,
                "a course folder is named in lowercase letters, digits and dashes "
                "(e.g. intro-to-deep-learning): rename it.",
            )
        )
    document: _Document | None = None
    if not course_md.is_file():
        errors.append(
            ContentError(course_md, None, "missing: add course.md with a title and a description.")
        )
    else:
        try:
            document = _cached(course_md, "course", lambda p: _parse_document(p, CourseMeta))
        except InvalidContent as exc:
            errors.extend(exc.errors)

    lessons: list[Lesson] = []
    numbers: dict[int, Path] = {}
    folders = [only] if only else sorted(p for p in folder.iterdir() if is_lesson_dir(p))
    for lesson_dir in folders:
        lesson = _load_lesson(lesson_dir, folder.name, errors)
        if lesson is None:
            continue
        if lesson.number in numbers:
            errors.append(
                ContentError(
                    lesson_dir,
                    None,
                    f"has the same number as {numbers[lesson.number].name}: renumber one of them.",
                )
            )
            continue
        numbers[lesson.number] = lesson_dir
        lessons.append(lesson)
    if document is None or (len(errors) > before and not lessons):
        return None
    meta = document.meta
    assert isinstance(meta, CourseMeta)
    return Course(
        slug=folder.name,
        title=meta.title,
        description=meta.description,
        body_html=document.body_html,
        lessons=sorted(lessons, key=lambda lesson: lesson.number),
        path=folder,
    )


def collect(paths: list[Path]) -> tuple[list[Course], list[ContentError]]:
    """Courses from content roots, course folders or lesson folders, and every problem found.

    A course comes back with its valid lessons only, so its other lessons can still be checked.
    """
    courses: list[Course] = []
    errors: list[ContentError] = []
    for path in paths:
        if not path.is_dir():
            errors.append(
                ContentError(path, None, "not found: give a content, course or lesson folder.")
            )
        elif (path / "lesson.md").is_file() or _LESSON_DIR.match(path.name):
            course = _load_course(path.parent, errors, only=path)
            courses.extend([course] if course else [])
        elif (path / "course.md").is_file():
            course = _load_course(path, errors)
            courses.extend([course] if course else [])
        else:
            for child in course_dirs(path):
                course = _load_course(child, errors)
                courses.extend([course] if course else [])
    return courses, errors


class ContentCache:
    """What `collect([root])` gives, remembered while no file under `root` changes.

    Each call stats the tree (a few dozen files: well under a millisecond) and reuses the last
    result when every file's mtime and size are as they were. A tree touched in the last
    `settle_s` is collected again on every call (each file's parse is still cached by its
    bytes, above): an edit that kept the size within the clock's granularity is not missed.
    So a lesson page costs no parsing, and an instructor's edit shows on the next request."""

    def __init__(self, root: Path, settle_s: float = 2.0) -> None:
        self.root, self.settle_s = root, settle_s
        self._lock = threading.Lock()
        self._stamp: tuple[tuple[str, int, int], ...] | None = None
        self._value: tuple[list[Course], list[ContentError]] = ([], [])

    def get(self) -> tuple[list[Course], list[ContentError]]:
        stamp = _tree_stamp(self.root)
        newest = max((mtime for _, mtime, _ in stamp), default=0) / 1e9
        settled = time.time() - newest > self.settle_s
        with self._lock:
            if stamp != self._stamp or not settled:
                self._value = collect([self.root])
                self._stamp = stamp
            return self._value


def _tree_stamp(root: Path) -> tuple[tuple[str, int, int], ...]:
    found: list[tuple[str, int, int]] = []
    for folder, dirs, files in os.walk(root):
        dirs.sort()
        for name in sorted(files):
            try:
                stat = os.stat(os.path.join(folder, name))
            except OSError:  # removed meanwhile
                continue
            found.append((os.path.join(folder, name), stat.st_mtime_ns, stat.st_size))
        with contextlib.suppress(OSError):  # a folder removed meanwhile
            found.append((folder, os.stat(folder).st_mtime_ns, len(dirs)))
    return tuple(found)


def load_courses(root: Path | str = "content") -> list[Course]:
    """Every course under ``root``; raises ``InvalidContent`` listing all problems."""
    courses, errors = collect([Path(root)])
    if errors:
        raise InvalidContent(errors)
    return courses


def load_lesson(folder: Path | str) -> Lesson:
    """One lesson folder; raises ``InvalidContent`` listing all problems."""
    courses, errors = collect([Path(folder)])
    if errors:
        raise InvalidContent(errors)
    return courses[0].lessons[0]


def find_lesson(courses: list[Course], course: str, lesson: str) -> Lesson | None:
    found = next((c for c in courses if c.slug == course), None)
    return found.lesson(lesson) if found else None
