"""The instructor pages: the dashboard (every lesson's state and how learners fare on it, live,
and a button that validates a lesson in the sandbox) and the live preview of a lesson being
written. For instructors and admins only."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexers import PythonLexer

from app.auth import CurrentUser, OptionalUser, verify_csrf
from app.config import Settings
from app.content_check import (
    CheckRecords,
    Validation,
    lesson_digest,
    record_key,
    validate_lesson,
)
from app.dashboard import (
    Preview,
    check_verdict,
    dashboard_json,
    defined_checks,
    find_lesson_dir,
    layout_signature,
    lesson_rows,
    lesson_stats,
    load_preview,
    preview_fingerprint,
    record_verdict,
    verdict_json,
)
from app.db import ReleasingRoute
from app.deps import SessionDep, SettingsDep
from app.models import User
from app.runners import RunnerBusy, RunnerClient
from app.templating import render
from runner import Event, RunRequest, SandboxLimits, current_run_id

log = logging.getLogger("app.instructor")
router = APIRouter(tags=["instructor"], route_class=ReleasingRoute)

STAFF_ROLES = ("instructor", "admin")
STATS_EVERY_S = 4  # how often the dashboard polls its numbers
PREVIEW_EVERY_S = 1  # how often a preview looks for saved edits


def _forbid_learners(user: User) -> User:
    if user.role not in STAFF_ROLES:
        raise HTTPException(
            403,
            "The instructor pages are for instructors and admins, and this account is a "
            "learner's. An admin can create an instructor account with "
            "`torchdojo create-user EMAIL --role instructor`.",
        )
    return user


def require_staff(user: CurrentUser) -> User:
    """An instructor or admin: 401 when signed out, 403 for a learner."""
    return _forbid_learners(user)


StaffUser = Annotated[User, Depends(require_staff)]


def _page_user(request: Request, user: User | None) -> User | RedirectResponse:
    """A page sends a signed-out visitor to sign in (and back); a learner gets the 403 page."""
    if user is None:
        return RedirectResponse(f"/login?next={quote(request.url.path)}", status_code=303)
    return _forbid_learners(user)


@router.get("/instructor", response_class=HTMLResponse, include_in_schema=False)
def dashboard(
    request: Request, user: OptionalUser, db: SessionDep, settings: SettingsDep
) -> Response:
    staff = _page_user(request, user)
    if isinstance(staff, Response):
        return staff
    sections = lesson_rows(settings.content_dir, CheckRecords(settings.content_check_file))
    return render(
        request,
        "instructor/dashboard.html",
        staff,
        sections=sections,
        layout=layout_signature(sections),
        stats=lesson_stats(db, defined_checks(sections)),
        validating=set(_VALIDATING),
        now=datetime.now(UTC).strftime("%H:%M UTC"),
        every_s=STATS_EVERY_S,
    )


@router.get("/api/instructor/stats")
def stats(user: StaffUser, db: SessionDep, settings: SettingsDep) -> dict[str, Any]:
    """Every lesson, in course order: whether it loads (and what the content check said about
    its files), learners who started and finished it, and its most failed checks with their
    most common messages, and whether it is being validated in the sandbox right now. The
    dashboard polls this."""
    sections = lesson_rows(settings.content_dir, CheckRecords(settings.content_check_file))
    stats = lesson_stats(db, defined_checks(sections))
    return dashboard_json(sections, stats, validating=set(_VALIDATING))


# --- validating one lesson in the sandbox ---------------------------------------------------

# The validations running in this process, by row ("course/folder"). A second request for a
# lesson already being validated waits for that one and gets its verdict: nothing runs twice.
_VALIDATING: dict[str, asyncio.Task[dict[str, Any]]] = {}


def _forget(task: asyncio.Task[dict[str, Any]]) -> None:
    for row, running in list(_VALIDATING.items()):
        if running is task:
            del _VALIDATING[row]
    if not task.cancelled():
        task.exception()  # retrieved here too: every request that waited may have gone away


class _DoesNotLoad(Exception):
    def __init__(self, problems: list[str]) -> None:
        super().__init__("the lesson does not load")
        self.problems = problems


@router.post(
    "/api/instructor/lessons/{course}/{lesson}/validate",
    dependencies=[Depends(verify_csrf)],
    responses={404: {}, 409: {}, 502: {}, 503: {}},
)
async def validate(
    course: str,
    lesson: str,
    request: Request,
    user: StaffUser,
    db: SessionDep,
    settings: SettingsDep,
) -> Response:
    """Run the lesson's solution and starter in check mode through the app's runners, judge them
    as `torchdojo content check` does (the solution passes every check, the starter runs and
    fails its checks) and record the verdict for the dashboard. Answers the verdict (`ok`,
    `problems`, each run's outcome, and the row's new `verdict`) once both runs have ended.

    409 when the lesson does not load (with its `problems`), 503 with Retry-After when every
    runner is busy, 502 when the runner failed (nothing is recorded then)."""
    folder = find_lesson_dir(settings.content_dir, course, lesson)
    if folder is None:
        raise HTTPException(404, f"There is no lesson folder {course}/{lesson} in the content.")
    row = f"{folder.parent.name}/{folder.name}"
    who = user.email
    db.close()  # the runs may take minutes: hold no database connection meanwhile
    task = _VALIDATING.get(row)
    if task is None:
        runner: RunnerClient = request.app.state.runner
        task = asyncio.create_task(_validate(runner, folder, row, settings, who))
        _VALIDATING[row] = task
        task.add_done_callback(_forget)
    try:
        # Shielded: a browser that goes away does not stop the runs, and the verdict is kept.
        result = await asyncio.shield(task)
    except _DoesNotLoad as exc:
        first = exc.problems[0] if exc.problems else "it does not load"
        return JSONResponse(
            {
                "detail": f"This lesson does not load, so it cannot run in the sandbox: {first}",
                "problems": exc.problems,
            },
            409,
        )
    except RunnerBusy as exc:
        raise HTTPException(
            503,
            f"{exc} The lesson was not validated.",
            headers={"Retry-After": str(exc.retry_after)},
        ) from exc
    return JSONResponse(result)


async def _validate(
    runner: RunnerClient, folder: Path, row: str, settings: Settings, who: str
) -> dict[str, Any]:
    run_id = f"validate-{uuid.uuid4().hex[:16]}"
    current_run_id.set(run_id)  # this task's own context: on its log lines, and the runner's

    async def open_run(request: RunRequest) -> AsyncIterator[Event]:
        return await runner.open(request, run_id=run_id)

    # The digest before loading: an edit saved meanwhile then reads as "changed", not verified.
    digest = await asyncio.to_thread(lesson_digest, folder)
    preview = await asyncio.to_thread(load_preview, folder)
    if preview.lesson is None:
        raise _DoesNotLoad([str(problem) for problem in preview.problems])
    log.info("validating a lesson", extra={"lesson": row, "by": who})
    validation = await validate_lesson(open_run, preview.lesson, digest)
    failure = validation.runner_failure
    if failure is not None:
        log.warning("lesson validation failed in the runner: %s", failure, extra={"lesson": row})
        raise HTTPException(
            502,
            f"The lesson could not be validated: {failure}. Nothing was recorded; try again.",
        )
    records = CheckRecords(settings.content_check_file)
    note = ""
    try:
        await asyncio.to_thread(records.add, {record_key(folder): validation.record})
        verdict = await asyncio.to_thread(check_verdict, folder, records)
    except OSError as exc:
        log.error("lesson validation not recorded in %s: %s", records.path, exc)
        note = (
            f"The verdict could not be recorded in {records.path} ({exc}), so the dashboard "
            "will not remember it: make TORCHDOJO_CONTENT_CHECK_FILE a file the app can write."
        )
        verdict = record_verdict(validation.record)
    log.info(
        "lesson validated",
        extra={"lesson": row, "ok": validation.record.ok, "problems": len(validation.problems)},
    )
    return _validation_json(validation, row, verdict_json(verdict), recorded=not note, note=note)


def _validation_json(
    validation: Validation, row: str, verdict: dict[str, Any], *, recorded: bool, note: str
) -> dict[str, Any]:
    record = validation.record
    return {
        "id": row,
        "ok": record.ok,
        "problems": record.problems,
        "checked_at": record.checked_at,
        "digest": record.digest,
        "recorded": recorded,
        "note": note,
        "runs": [
            {
                "which": outcome.which,
                "status": outcome.done.status if outcome.done else None,
                "duration_ms": outcome.done.duration_ms if outcome.done else None,
                "checks": len(outcome.tests),
                "passed": sum(test.status == "passed" for test in outcome.tests),
            }
            for outcome in validation.outcomes
        ],
        "verdict": verdict,
    }


def _preview_or_404(settings: SettingsDep, course: str, lesson: str) -> Preview:
    folder = find_lesson_dir(settings.content_dir, course, lesson)
    if folder is None:
        raise HTTPException(404, f"There is no lesson folder {course}/{lesson} in the content.")
    return load_preview(folder)


def _code(source: str) -> str:
    html: str = highlight(source, PythonLexer(), HtmlFormatter(nowrap=True))
    return html


def _preview_context(preview: Preview) -> dict[str, Any]:
    lesson = preview.lesson
    limits = lesson.exercise.limits if lesson else None
    return {
        "preview": preview,
        "course_slug": preview.folder.parent.name,
        "limits": limits or SandboxLimits(),
        "limits_set": limits.model_fields_set if limits else set(),
        "starter_html": _code(lesson.starter) if lesson else "",
        "solution_html": _code(lesson.solution) if lesson else "",
        "checks_html": _code(lesson.checks) if lesson else "",
    }


@router.get(
    "/instructor/preview/{course}/{lesson}", response_class=HTMLResponse, include_in_schema=False
)
def preview_page(
    request: Request, course: str, lesson: str, user: OptionalUser, settings: SettingsDep
) -> Response:
    """The lesson as learners will see it, from the files on disk, updated as they are saved."""
    staff = _page_user(request, user)
    if isinstance(staff, Response):
        return staff
    preview = _preview_or_404(settings, course, lesson)
    return render(
        request,
        "instructor/preview.html",
        staff,
        every_s=PREVIEW_EVERY_S,
        **_preview_context(preview),
    )


@router.get(
    "/instructor/preview/{course}/{lesson}/content",
    response_class=HTMLResponse,
    include_in_schema=False,
)
def preview_content(
    request: Request, course: str, lesson: str, user: StaffUser, settings: SettingsDep
) -> Response:
    """The preview's content alone, for the page to swap in when a file changed."""
    preview = _preview_or_404(settings, course, lesson)
    return render(request, "instructor/_preview_content.html", user, **_preview_context(preview))


@router.get("/api/instructor/preview/{course}/{lesson}/fingerprint")
def fingerprint(course: str, lesson: str, user: StaffUser, settings: SettingsDep) -> dict[str, str]:
    """A hash of the lesson's files and its course.md: the preview reloads when it changes."""
    folder = find_lesson_dir(settings.content_dir, course, lesson)
    if folder is None:
        raise HTTPException(404, f"There is no lesson folder {course}/{lesson} in the content.")
    return {"fingerprint": preview_fingerprint(folder)}
