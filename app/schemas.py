"""API models: what the JSON API takes and gives."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from runner.protocol import RunMode


class RunCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    lesson: str = Field(
        ...,
        pattern=r"^[a-z0-9-]+/[a-z0-9-]+$",
        examples=["intro-to-deep-learning/deep-learning-introduction"],
    )
    code: str
    mode: RunMode = "run"


class RunCreated(BaseModel):
    id: str
    events_url: str


class RunPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    lesson_key: str
    mode: str
    status: str
    tests_passed: int | None
    tests_total: int | None
    created_at: datetime
    finished_at: datetime | None


class DraftIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: str


class DraftPublic(BaseModel):
    lesson: str
    code: str
    updated_at: datetime


class SolutionPublic(BaseModel):
    code: str
