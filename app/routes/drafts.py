"""Drafts: a learner's code per lesson, saved as they type and restored on reload."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter, Depends, HTTPException
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from app.auth import CurrentUser, verify_csrf
from app.db import ReleasingRoute
from app.deps import CoursesDep, SessionDep, SettingsDep
from app.models import Draft
from app.routes.lessons import lesson_or_404
from app.schemas import DraftIn, DraftPublic

router = APIRouter(prefix="/api/drafts", tags=["drafts"], route_class=ReleasingRoute)


@router.get("/{course}/{lesson}")
def get_draft(
    course: str, lesson: str, user: CurrentUser, db: SessionDep, courses: CoursesDep
) -> DraftPublic:
    key = f"{course}/{lesson}"
    lesson_or_404(courses, key)
    draft = db.scalar(select(Draft).where(Draft.user_id == user.id, Draft.lesson_key == key))
    if draft is None:
        raise HTTPException(404, "No saved draft for this lesson yet.")
    return DraftPublic(lesson=key, code=draft.code, updated_at=draft.updated_at)


@router.put("/{course}/{lesson}", dependencies=[Depends(verify_csrf)])
def save_draft(
    course: str,
    lesson: str,
    body: DraftIn,
    user: CurrentUser,
    db: SessionDep,
    courses: CoursesDep,
    settings: SettingsDep,
) -> DraftPublic:
    key = f"{course}/{lesson}"
    lesson_or_404(courses, key)
    check_code_size(body.code, settings.max_code_kb)
    return DraftPublic(lesson=key, code=body.code, updated_at=save(db, user.id, key, body.code))


def check_code_size(code: str, max_kb: int) -> None:
    size = len(code.encode())
    if size > max_kb * 1024:
        raise HTTPException(
            413,
            f"Your code is {size // 1024} KiB; the limit is {max_kb} KiB. "
            "Shorten it and try again.",
        )


def save(db: SessionDep, user_id: int, key: str, code: str) -> datetime:
    now = datetime.now(UTC)
    for _ in range(2):  # two saves at once (two tabs, two quick Runs): the second updates
        draft = db.scalar(select(Draft).where(Draft.user_id == user_id, Draft.lesson_key == key))
        if draft is None:
            db.add(Draft(user_id=user_id, lesson_key=key, code=code, updated_at=now))
        else:
            draft.code, draft.updated_at = code, now
        try:
            db.commit()
            return now
        except IntegrityError:
            db.rollback()  # the other one inserted it first: update theirs
    raise HTTPException(409, "Your draft changed in another tab at the same moment; try again.")


def load(db: SessionDep, user_id: int, key: str) -> str | None:
    return db.scalar(select(Draft.code).where(Draft.user_id == user_id, Draft.lesson_key == key))
