"""create_app: the torchdojo web app."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from sqlalchemy.orm import Session, sessionmaker
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.sessions import SessionMiddleware

from app.config import ROOT, Settings, get_settings
from app.content import ContentCache
from app.db import make_engine, make_sessionmaker, migrate
from app.fanout import make_fanout
from app.metrics import RequestMetrics, WebMetrics
from app.middleware import BodyLimit, SecurityHeaders
from app.retention import purge
from app.routes import api, instructor
from app.runners import make_runner
from app.runs import RunManager

log = logging.getLogger("app")


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    engine = make_engine(settings.database_url, settings.database_connections)
    sessions = make_sessionmaker(engine)
    metrics = WebMetrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        migrate(settings.database_url)
        runner = make_runner(settings.runner_url, settings.runner_pool_size, metrics)
        await runner.start()
        fanout = make_fanout(settings.database_url)
        await fanout.start()
        app.state.runner = runner
        app.state.runs = RunManager(
            runner=runner,
            sessions=sessions,
            runs_per_minute=settings.runs_per_minute,
            metrics=metrics,
            owner_secret=settings.secret_key,
            fanout=fanout,
        )
        app.state.runs.recover()  # runs a killed server process left behind get their `done`
        await app.state.runs.start_background()
        purger = asyncio.create_task(purge_periodically(settings, sessions))
        try:
            yield
        finally:
            purger.cancel()
            await app.state.runs.close()
            await fanout.close()
            await runner.close()
            engine.dispose()

    app = FastAPI(title="torchdojo", version="0.1.0", lifespan=lifespan)
    app.state.settings = settings
    app.state.content = ContentCache(settings.content_dir)
    app.state.sessions = sessions
    app.state.metrics = metrics
    app.add_middleware(
        SessionMiddleware,
        secret_key=settings.secret_key,
        session_cookie="torchdojo_session",
        same_site="lax",
        https_only=settings.cookies_secure,
        max_age=14 * 24 * 3600,
    )
    # The last added is the outermost: the headers go on every answer (a 413 too), and the
    # body cap stands before anything reads a byte. (Ours, not FastAPI's max_body_size: that
    # answers a bare "Content Too Large" in plain text, where people need to read what to do.)
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_kb * 1024)
    app.add_middleware(SecurityHeaders)
    app.add_middleware(RequestMetrics, metrics=metrics)
    app.mount("/static", StaticFiles(directory=ROOT / "static", check_dir=False), name="static")
    app.include_router(api)
    app.include_router(instructor.router)

    @app.exception_handler(RequestValidationError)
    async def readable_validation_error(request: Request, exc: RequestValidationError) -> Response:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in error['loc'][1:]) or 'body'}: {error['msg']}"
            for error in exc.errors()
        )
        return JSONResponse(
            {"detail": f"The request is not valid: {problems}.", "errors": jsonable(exc.errors())},
            422,
        )

    # Starlette's own HTTPException too: a URL no route has is a 404 of Starlette's.
    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        wants_page = not request.url.path.startswith("/api") and "text/html" in request.headers.get(
            "accept", ""
        )
        if wants_page:  # a person in a browser gets a page, not JSON
            from app.templating import render

            heading = {404: "Not found", 401: "Please sign in", 403: "Not allowed"}.get(
                exc.status_code, "Something went wrong"
            )
            return render(
                request,
                "error.html",
                None,
                exc.status_code,
                heading=heading,
                detail=exc.detail,
                code=exc.status_code,
            )
        return JSONResponse({"detail": exc.detail}, exc.status_code, headers=exc.headers)

    return app


async def purge_periodically(settings: Settings, sessions: sessionmaker[Session]) -> None:
    """Old run events go while the app runs (app/retention.py); never a reason to stop."""
    if not settings.purge_every_s:
        return
    while True:
        await asyncio.sleep(settings.purge_every_s)

        def once() -> str:
            with sessions() as session:
                report = purge(
                    session,
                    keep_days=settings.keep_run_events_days,
                    budget_bytes=int(settings.run_events_budget_mb * 1e6),
                )
            return str(report)

        try:
            log.info("retention: %s", await asyncio.to_thread(once))
        except Exception:
            log.exception("retention: the purge failed; trying again later")


def jsonable(errors: object) -> object:
    """Validation errors without the offending input: it may not even be encodable (a lone
    surrogate), and echoing it back helps no one."""
    return [
        {"type": error["type"], "loc": list(error["loc"]), "msg": error["msg"]}
        for error in errors  # type: ignore[attr-defined]
    ]
