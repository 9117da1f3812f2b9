"""HTML pages: the course index and the lesson page (with its no-JavaScript run form)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import select

from app.auth import OptionalUser, verify_csrf
from app.content import Course
from app.deps import CoursesDep, RunsDep, SessionDep, SettingsDep
from app.models import Progress, User
from app.routes import drafts
from app.routes.lessons import lesson_or_404
from app.runners import RunnerBusy
from app.runs import RateLimited
from app.schemas import valid_code
from app.templating import render

router = APIRouter(tags=["pages"], include_in_schema=False)


def _progress(db: SessionDep, user: User | None) -> dict[str, Progress]:
    if user is None:
        return {}
    return {
        p.lesson_key: p for p in db.scalars(select(Progress).where(Progress.user_id == user.id))
    }


@router.get("/", response_class=HTMLResponse)
def index(request: Request, user: OptionalUser, db: SessionDep, courses: CoursesDep) -> Response:
    progress = {key: p.status for key, p in _progress(db, user).items()}
    return render(request, "index.html", user, courses=courses, progress=progress)


def _lesson_context(courses: list[Course], course_slug: str, lesson_slug: str) -> dict[str, Any]:
    key = f"{course_slug}/{lesson_slug}"
    lesson = lesson_or_404(courses, key)
    course = next(c for c in courses if c.slug == course_slug)
    index = course.lessons.index(lesson)
    return {
        "course": course,
        "lesson": lesson,
        "lesson_key": key,
        "starter": lesson.starter,
        "prev_lesson": course.lessons[index - 1] if index > 0 else None,
        "next_lesson": course.lessons[index + 1] if index + 1 < len(course.lessons) else None,
    }


@router.get("/courses/{course}/{lesson}", response_class=HTMLResponse)
def lesson_page(
    request: Request,
    course: str,
    lesson: str,
    user: OptionalUser,
    db: SessionDep,
    courses: CoursesDep,
) -> Response:
    context = _lesson_context(courses, course, lesson)
    key = context["lesson_key"]
    code = drafts.load(db, user.id, key) if user else None
    progress = _progress(db, user).get(key)
    can_show = bool(progress and (progress.failed_checks or progress.status == "passed")) or bool(
        user and user.role != "learner"
    )
    return render(
        request,
        "lesson.html",
        user,
        code=code if code is not None else context["starter"],
        run=None,
        can_show_solution=can_show,
        **context,
    )


@router.post(
    "/courses/{course}/{lesson}/run",
    response_class=HTMLResponse,
    dependencies=[Depends(verify_csrf)],
)
async def run_from_form(
    request: Request,
    course: str,
    lesson: str,
    user: OptionalUser,
    db: SessionDep,
    courses: CoursesDep,
    runs: RunsDep,
    settings: SettingsDep,
    code: Annotated[str, Form()],
    mode: Annotated[str, Form()] = "run",
) -> Response:
    """The page without JavaScript: run, wait for the result, show the page with it."""
    context = _lesson_context(courses, course, lesson)
    if user is None:
        return RedirectResponse(f"/login?next=/courses/{course}/{lesson}", status_code=303)
    if mode not in ("run", "check"):
        raise HTTPException(422, "mode must be run or check")
    try:
        valid_code(code)
    except ValueError as exc:
        raise HTTPException(422, f"Your code could not be saved: {exc}.") from exc
    drafts.check_code_size(code, settings.max_code_kb)
    drafts.save(db, user.id, context["lesson_key"], code)
    messages: list[tuple[str, str]] = []
    result = None
    try:
        run = await runs.start(
            user_id=user.id,
            lesson_key=context["lesson_key"],
            lesson=context["lesson"],
            code=code,
            mode="check" if mode == "check" else "run",
        )
        await runs.wait(run.id)
        events = [event async for event in runs.follow(run.id)]
        result = {
            "id": run.id,
            "status": events[-1]["status"] if events else "internal_error",
            "events": events,
        }
    except (RateLimited, RunnerBusy) as exc:
        messages.append(("error", f"{exc} Your code is saved."))
    return render(
        request,
        "lesson.html",
        user,
        code=code,
        run=result,
        messages=messages,
        can_show_solution=False,
        **context,
    )
