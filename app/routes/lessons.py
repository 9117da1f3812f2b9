"""Lesson lookups shared by the routes, and the solution endpoint."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException
from sqlalchemy import select

from app.auth import CurrentUser
from app.content import Course, Lesson, find_lesson
from app.db import ReleasingRoute
from app.deps import CoursesDep, SessionDep
from app.models import Progress, User
from app.schemas import SolutionPublic

router = APIRouter(prefix="/api/lessons", tags=["lessons"], route_class=ReleasingRoute)


def lesson_or_404(courses: list[Course], key: str) -> Lesson:
    course, _, slug = key.partition("/")
    lesson = find_lesson(courses, course, slug)
    if lesson is None:
        raise HTTPException(404, f"There is no lesson {key!r}. Pick one from the course page.")
    return lesson


def may_see_solution(user: User | None, progress: Progress | None) -> bool:
    """The rule for the reference solution: instructors and admins always; a learner once a
    Check of theirs has failed, or the lesson is passed (static/src/status.js opens the button
    after a run by the same rule)."""
    if user is None:
        return False
    if user.role != "learner":
        return True
    return progress is not None and (progress.failed_checks > 0 or progress.status == "passed")


@router.get("/{course}/{lesson}/solution")
def solution(
    course: str, lesson: str, user: CurrentUser, db: SessionDep, courses: CoursesDep
) -> SolutionPublic:
    """The reference solution, once the learner has had a failed check (or passed)."""
    key = f"{course}/{lesson}"
    found = lesson_or_404(courses, key)
    progress = db.scalar(
        select(Progress).where(Progress.user_id == user.id, Progress.lesson_key == key)
    )
    if not may_see_solution(user, progress):
        raise HTTPException(
            403, "Press Check first: the solution opens after a check that did not pass."
        )
    return SolutionPublic(code=found.solution)
