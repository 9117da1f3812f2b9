"""API models: what the JSON API takes and gives."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from runner import RunMode


def valid_code(text: str) -> str:
    """Code is text a database and a Python file can hold: UTF-8, no NUL characters."""
    if "\x00" in text:
        raise ValueError("the code contains a NUL character; delete it and try again")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValueError(
            "the code contains characters that are not valid text (lone surrogates)"
        ) from exc
    return text


CodeText = Annotated[str, AfterValidator(valid_code)]


class RunCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    lesson: str = Field(
        ...,
        pattern=r"^[a-z0-9-]+/[a-z0-9-]+$",
        examples=["intro-to-deep-learning/deep-learning-introduction"],
    )
    code: CodeText
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

    code: CodeText


class DraftPublic(BaseModel):
    lesson: str
    code: str
    updated_at: datetime


class SolutionPublic(BaseModel):
    code: str
