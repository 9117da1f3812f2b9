"""HTML pages: the course index and the lesson page (with its no-JavaScript run form)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import select

from app.auth import (
    AuthError,
    OptionalUser,
    client_address,
    sign_in,
    sign_in_attempt,
    sign_up_attempt,
    verify_csrf,
)
from app.content import Course
from app.db import ReleasingRoute, in_thread
from app.deps import CoursesDep, RunsDep, SessionDep, SettingsDep
from app.models import Progress, User
from app.routes import drafts
from app.routes.lessons import lesson_or_404, may_see_solution
from app.runners import RunnerBusy
from app.runs import RateLimited, RunManager
from app.schemas import valid_code
from app.templating import render

router = APIRouter(tags=["pages"], include_in_schema=False, route_class=ReleasingRoute)


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


def _can_show_solution(db: SessionDep, user: User | None, key: str) -> bool:
    return may_see_solution(user, _progress(db, user).get(key) if user else None)


def _active_run(db: SessionDep, runs: RunManager, user: User | None, key: str) -> dict[str, str]:
    """The learner's run of this lesson still going (on any web process), for the page to
    follow."""
    return runs.going_run(db, user.id, key) if user else {}


KEPT_MESSAGE = "You are signed in, and your code is saved to your account: press Run or Check."


@router.get("/courses/{course}/{lesson}", response_class=HTMLResponse)
def lesson_page(
    request: Request,
    course: str,
    lesson: str,
    user: OptionalUser,
    db: SessionDep,
    courses: CoursesDep,
    runs: RunsDep,
    kept: str | None = None,
) -> Response:
    context = _lesson_context(courses, course, lesson)
    key = context["lesson_key"]
    code = drafts.load(db, user.id, key) if user else None
    return render(
        request,
        "lesson.html",
        user,
        code=code if code is not None else context["starter"],
        run=None,
        active_run=_active_run(db, runs, user, key),
        can_show_solution=_can_show_solution(db, user, key),
        messages=[("info", KEPT_MESSAGE)] if kept == "1" and user else [],
        **context,
    )


def _keep_code_sign_in(
    request: Request,
    context: dict[str, Any],
    code: str,
    *,
    email: str = "",
    error: str | None = None,
) -> Response:
    """The sign-in form for a run posted while signed out, carrying the code along."""
    lesson_path = f"/courses/{context['course'].slug}/{context['lesson'].slug}"
    return render(
        request,
        "auth.html",
        None,
        400 if error else 401,
        mode="signin",
        error=error,
        email=email,
        next=lesson_path,
        keep_code=code,
        keep_action=f"{lesson_path}/sign-in",
        lesson_title=context["lesson"].title,
    )


@router.post(
    "/courses/{course}/{lesson}/sign-in",
    response_class=HTMLResponse,
    dependencies=[Depends(verify_csrf)],
)
def sign_in_keeping_code(
    request: Request,
    course: str,
    lesson: str,
    db: SessionDep,
    courses: CoursesDep,
    settings: SettingsDep,
    email: Annotated[str, Form()],
    password: Annotated[str, Form()],
    code: Annotated[str, Form()],
    account: Annotated[str, Form()] = "existing",
) -> Response:
    """Sign in (or sign up) from the form a signed-out run post showed; the code becomes the
    learner's draft of the lesson, so the lesson page shows it."""
    context = _lesson_context(courses, course, lesson)
    try:
        valid_code(code)
    except ValueError as exc:
        raise HTTPException(422, f"Your code could not be saved: {exc}.") from exc
    drafts.check_code_size(code, settings.max_code_kb)
    attempt = sign_up_attempt if account == "new" else sign_in_attempt
    try:
        user = attempt(
            session=db,
            settings=settings,
            address=client_address(request),
            email=email,
            password=password,
        )
    except AuthError as exc:
        return _keep_code_sign_in(request, context, code, email=email, error=str(exc))
    sign_in(request, db, user)
    drafts.save(db, user.id, context["lesson_key"], code)
    return RedirectResponse(f"/courses/{course}/{lesson}?kept=1", status_code=303)


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
    if user is None:  # nothing is lost: the sign-in form carries the code to the draft
        return _keep_code_sign_in(request, context, code)
    if mode not in ("run", "check"):
        raise HTTPException(422, "mode must be run or check")
    try:
        valid_code(code)
    except ValueError as exc:
        raise HTTPException(422, f"Your code could not be saved: {exc}.") from exc
    drafts.check_code_size(code, settings.max_code_kb)
    await in_thread(db, drafts.save, user.id, context["lesson_key"], code)
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
        can_show_solution=await in_thread(db, _can_show_solution, user, context["lesson_key"]),
        **context,
    )
