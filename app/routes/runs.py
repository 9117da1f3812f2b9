"""Runs: start one, follow its events (SSE), cancel it."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from collections.abc import AsyncIterator
from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Depends, Header, HTTPException, Request
from fastapi.responses import StreamingResponse
from sqlalchemy.orm import Session

from app.auth import CurrentUser, current_user, require_user, verify_csrf
from app.db import ReleasingRoute, in_thread
from app.deps import CoursesDep, RunsDep, SessionDep, SettingsDep
from app.models import Run
from app.routes import drafts
from app.routes.lessons import lesson_or_404
from app.runners import RunnerBusy
from app.runs import RateLimited
from app.schemas import RunCreate, RunCreated, RunPublic

router = APIRouter(prefix="/api/runs", tags=["runs"], route_class=ReleasingRoute)
RUN_ID = re.compile(r"[0-9a-f]{32}")
KEEPALIVE_S = 15.0
STREAM_OPENS = 8  # threads that check the streams being opened (see run_events)


def own_run(db: SessionDep, run_id: str, user_id: int) -> Run:
    # Run ids are 32 hex digits: anything else is not one (and never reaches the database,
    # which may refuse some text, like a NUL, with an error instead of "not found").
    run = db.get(Run, run_id) if RUN_ID.fullmatch(run_id) else None
    if run is None or run.user_id != user_id:  # another learner's run does not exist for you
        raise HTTPException(404, "No such run.")
    return run


def _follower_check(db: Session, request: Request, run_id: str) -> None:
    """The signed-in learner, and their run (one thread hop for both)."""
    own_run(db, run_id, require_user(current_user(request, db)).id)


@router.post(
    "", status_code=201, dependencies=[Depends(verify_csrf)], responses={413: {}, 429: {}, 503: {}}
)
async def create_run(
    body: RunCreate,
    user: CurrentUser,
    db: SessionDep,
    courses: CoursesDep,
    runs: RunsDep,
    settings: SettingsDep,
) -> RunCreated:
    """Save the code as the learner's draft, then run or check it.

    The learner's previous run, if still going, is cancelled: one active run per learner."""
    lesson = lesson_or_404(courses, body.lesson)
    drafts.check_code_size(body.code, settings.max_code_kb)
    # Saved before anything can go wrong.
    await in_thread(db, drafts.save, user.id, body.lesson, body.code)
    try:
        run = await runs.start(
            user_id=user.id, lesson_key=body.lesson, lesson=lesson, code=body.code, mode=body.mode
        )
    except RateLimited as exc:
        raise HTTPException(429, str(exc), headers={"Retry-After": str(exc.retry_after)}) from exc
    except RunnerBusy as exc:
        raise HTTPException(
            503, f"{exc} Your code is saved.", headers={"Retry-After": str(exc.retry_after)}
        ) from exc
    return RunCreated(id=run.id, events_url=f"/api/runs/{run.id}/events")


@router.get("/{run_id}")
def get_run(run_id: str, user: CurrentUser, db: SessionDep) -> RunPublic:
    return RunPublic.model_validate(own_run(db, run_id, user.id))


@router.get(
    "/{run_id}/events",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}}},
)
async def run_events(
    run_id: str,
    request: Request,
    db: SessionDep,
    runs: RunsDep,
    last_event_id: Annotated[str | None, Header()] = None,
) -> StreamingResponse:
    """Server-sent events: what is stored first, then live; resumes after Last-Event-ID."""
    # Checked in a pool of threads of the streams' own: a class whose browsers all open their
    # streams at once queues there, not in front of everyone's pages.
    opens = request.app.state.__dict__.get("stream_opens")
    if opens is None:
        opens = request.app.state.stream_opens = anyio.CapacityLimiter(STREAM_OPENS)
    await in_thread(db, _follower_check, request, run_id, limiter=opens)
    try:
        after = int(last_event_id) if last_event_id is not None else -1
    except ValueError:
        after = -1

    async def stream() -> AsyncIterator[str]:
        runs.metrics.open_streams.inc()
        events = runs.follow(run_id, after).__aiter__()
        next_event: asyncio.Task[dict[str, Any]] | None = None
        try:
            yield "retry: 1000\n\n"
            while True:
                next_event = next_event or asyncio.ensure_future(events.__anext__())
                done, _ = await asyncio.wait({next_event}, timeout=KEEPALIVE_S)
                if not done:
                    # A comment while nothing happens (a run waiting in the runner's queue,
                    # a long quiet training): proxies cut idle streams.
                    yield ": still here\n\n"
                    continue
                try:
                    event = next_event.result()
                except StopAsyncIteration:
                    return
                next_event = None
                data = json.dumps(event, separators=(",", ":"))
                yield f"id: {event['seq']}\nevent: message\ndata: {data}\n\n"
        finally:
            if next_event is not None:
                next_event.cancel()
            with contextlib.suppress(Exception):
                await events.aclose()  # type: ignore[attr-defined]
            runs.metrics.open_streams.dec()

    return StreamingResponse(
        stream(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


@router.post("/{run_id}/cancel", status_code=202, dependencies=[Depends(verify_csrf)])
async def cancel_run(
    run_id: str, user: CurrentUser, db: SessionDep, runs: RunsDep
) -> dict[str, bool]:
    await in_thread(db, own_run, run_id, user.id)
    return {"cancelled": await runs.cancel(run_id)}
