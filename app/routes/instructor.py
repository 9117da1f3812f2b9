"""The instructor pages: the dashboard (every lesson's state and how learners fare on it, live)
and the live preview of a lesson being written. For instructors and admins only."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexers import PythonLexer

from app.auth import CurrentUser, OptionalUser
from app.content_check import CheckRecords
from app.dashboard import (
    Preview,
    dashboard_json,
    find_lesson_dir,
    layout_signature,
    lesson_rows,
    lesson_stats,
    load_preview,
    preview_fingerprint,
)
from app.deps import SessionDep, SettingsDep
from app.models import User
from app.templating import render
from runner.protocol import SandboxLimits

router = APIRouter(tags=["instructor"])

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
    sections = lesson_rows(settings.content_dir, CheckRecords())
    return render(
        request,
        "instructor/dashboard.html",
        staff,
        sections=sections,
        layout=layout_signature(sections),
        stats=lesson_stats(db),
        now=datetime.now(UTC).strftime("%H:%M UTC"),
        every_s=STATS_EVERY_S,
    )


@router.get("/api/instructor/stats")
def stats(user: StaffUser, db: SessionDep, settings: SettingsDep) -> dict[str, Any]:
    """Every lesson, in course order: whether it loads (and what the content check said about
    its files), learners who started and finished it, and its most failed checks with their
    most common messages. The dashboard polls this."""
    return dashboard_json(lesson_rows(settings.content_dir, CheckRecords()), lesson_stats(db))


def _preview_or_404(settings: SettingsDep, course: str, lesson: str) -> Preview:
    folder = find_lesson_dir(settings.content_dir, course, lesson)
    if folder is None:
        raise HTTPException(404, f"There is no lesson folder {course}/{lesson} in the content.")
    return load_preview(folder)


def _code(source: str) -> str:
    return highlight(source, PythonLexer(), HtmlFormatter(nowrap=True))


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
