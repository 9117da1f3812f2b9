"""Health and metrics: the app, its database and its runner."""

from __future__ import annotations

import secrets

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text

from app.db import ReleasingRoute, in_thread
from app.deps import SessionDep, SettingsDep

router = APIRouter(tags=["health"], route_class=ReleasingRoute)


@router.get("/healthz")
async def healthz(request: Request, db: SessionDep) -> JSONResponse:
    body: dict[str, object] = {"status": "ok"}
    try:
        await in_thread(db, lambda session: session.execute(text("SELECT 1")))
        body["database"] = "ok"
    except Exception as exc:
        body.update(status="failing", database=str(exc))
    body["runner"] = await request.app.state.runner.health()
    return JSONResponse(body, 200 if body["status"] == "ok" else 503)


@router.get("/livez")
async def livez(request: Request) -> dict[str, str]:
    """The process answers (no database, no runner): the liveness probe, which restarts a
    process that hangs, never one whose database is away. `replica`: this process, as the
    database names the driver of its runs."""
    return {"status": "ok", "replica": request.app.state.runs.replica}


@router.get("/readyz")
async def readyz(request: Request, db: SessionDep) -> JSONResponse:
    """Ready for traffic: the database answers. (A runner that is away is not this process's
    fault: runs then say so, and the pages still work.)"""
    try:
        await in_thread(db, lambda session: session.execute(text("SELECT 1")))
    except Exception as exc:
        return JSONResponse({"status": "not ready", "database": str(exc)[:500]}, 503)
    return JSONResponse({"status": "ok", "database": "ok"})


@router.get("/metrics", responses={200: {"content": {"text/plain": {}}}, 401: {}})
async def metrics(request: Request, settings: SettingsDep) -> Response:
    """Prometheus text: runs by status, run duration, active runs, open event streams, runner
    errors per replica. Needs `Authorization: Bearer <TORCHDOJO_METRICS_TOKEN>` when one is set."""
    if settings.metrics_token:
        given = request.headers.get("authorization", "").removeprefix("Bearer ").strip()
        if not secrets.compare_digest(given.encode(), settings.metrics_token.encode()):
            return JSONResponse(
                {"detail": "Metrics need `Authorization: Bearer <TORCHDOJO_METRICS_TOKEN>`."},
                401,
                headers={"WWW-Authenticate": "Bearer"},
            )
    return Response(
        generate_latest(request.app.state.metrics.registry), media_type=CONTENT_TYPE_LATEST
    )
