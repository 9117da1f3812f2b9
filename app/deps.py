"""Shared FastAPI dependencies, declared once as Annotated aliases."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from app.config import Settings
from app.content import ContentCache, Course

if TYPE_CHECKING:
    from app.runs import RunManager

log = logging.getLogger("app.content")


async def get_db(request: Request) -> AsyncIterator[Session]:
    """A session for the request. Closed on the event loop, never in a worker thread: a request
    must not hold its connection while it waits for a thread (see app/db.py, `in_thread`)."""
    session = request.app.state.sessions()
    try:
        yield session
    finally:
        session.close()


def get_settings_dep(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def get_courses(request: Request) -> list[Course]:
    """The valid courses and lessons. A broken lesson (say, one an instructor is still writing)
    is left out and logged, never a reason to fail the learner's page."""
    # Cached while no file changes (app/content.ContentCache): edits show without a restart.
    cache: ContentCache = request.app.state.content
    courses, errors = cache.get()
    reported: set[str] = request.app.state.__dict__.setdefault("_content_errors_logged", set())
    for error in errors:
        if str(error) not in reported:
            reported.add(str(error))
            log.warning("content problem, lesson left out: %s", error)
    return courses


def get_runs(request: Request) -> RunManager:
    runs: RunManager = request.app.state.runs
    return runs


SessionDep = Annotated[Session, Depends(get_db)]
SettingsDep = Annotated[Settings, Depends(get_settings_dep)]
CoursesDep = Annotated[list[Course], Depends(get_courses)]
RunsDep = Annotated["RunManager", Depends(get_runs)]
