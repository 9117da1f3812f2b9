"""Shared FastAPI dependencies, declared once as Annotated aliases."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from app.config import Settings
from app.content import Course, load_courses

if TYPE_CHECKING:
    from app.runs import RunManager


def get_db(request: Request) -> Iterator[Session]:
    with request.app.state.sessions() as session:
        yield session


def get_settings_dep(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def get_courses(request: Request) -> list[Course]:
    # Cached per file by mtime: cheap per request, and edits show up without a restart.
    return load_courses(request.app.state.settings.content_dir)


def get_runs(request: Request) -> RunManager:
    runs: RunManager = request.app.state.runs
    return runs


SessionDep = Annotated[Session, Depends(get_db)]
SettingsDep = Annotated[Settings, Depends(get_settings_dep)]
CoursesDep = Annotated[list[Course], Depends(get_courses)]
RunsDep = Annotated["RunManager", Depends(get_runs)]
