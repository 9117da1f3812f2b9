"""Health: the app, its database and its runner."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy import text

from app.deps import SessionDep

router = APIRouter(tags=["health"])


@router.get("/healthz")
async def healthz(request: Request, db: SessionDep) -> JSONResponse:
    body: dict[str, object] = {"status": "ok"}
    try:
        db.execute(text("SELECT 1"))
        body["database"] = "ok"
    except Exception as exc:
        body.update(status="failing", database=str(exc))
    body["runner"] = await request.app.state.runner.health()
    return JSONResponse(body, 200 if body["status"] == "ok" else 503)
