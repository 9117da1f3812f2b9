"""The runner as an HTTP service (see shared design, "Runner service and CLI").

POST /v1/runs   a RunRequest; answers NDJSON events as they happen (closing the
                connection cancels the run); 413 code or body too large, 422 invalid or limits
                above this runner's maximums, 503 queue full
GET  /healthz   {"status": "ok", "pool": {"warm", "busy", "queued"}, "device"}
GET  /metrics   Prometheus text
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse, Response, StreamingResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import ValidationError

from runner import logs
from runner.config import RunnerSettings, get_settings, lesson_maximum
from runner.metrics import RunnerMetrics
from runner.pool import CodeTooLarge, PoolBusy, WarmPool
from runner.protocol import Done, RunRequest, dump_event

log = logging.getLogger("runner.service")


def create_app(settings: RunnerSettings | None = None) -> FastAPI:
    settings = settings or get_settings()
    metrics = RunnerMetrics()
    maximum = lesson_maximum(settings)
    # Code and checks at their size limit, every character JSON-escaped (\u0001: 6 bytes),
    # and room for the rest: past this the body is refused before any of it is parsed.
    max_body = 2 * 6 * settings.max_code_kb * 1024 + 64 * 1024

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        pool = WarmPool(settings, metrics=metrics)
        await pool.start(wait=False)  # serve /healthz while the sandboxes warm up
        metrics.track_pool(lambda: pool.stats)
        app.state.pool = pool
        try:
            yield
        finally:
            await pool.close()

    app = FastAPI(title="torchdojo runner", version="1", lifespan=lifespan)

    @app.post(
        "/v1/runs",
        response_class=StreamingResponse,
        responses={200: {"content": {"application/x-ndjson": {}}}, 413: {}, 422: {}, 503: {}},
    )
    async def create_run(request: Request) -> Response:
        """Run code in a fresh sandbox and stream its events as NDJSON.

        The body is a RunRequest (JSON). An `X-Run-Id` header (the web app's run id) is carried
        on every log line of the run."""
        pool: WarmPool = request.app.state.pool
        run = request.headers.get(logs.RUN_ID_HEADER, "")[:64] or None
        logs.run_id.set(run)
        raw = await _read_body(request, max_body)
        if raw is None:
            log.info("run refused: body over %d bytes", max_body)
            return JSONResponse(
                {"detail": f"The request body is over this runner's {max_body // 1024} KiB limit."},
                status_code=413,
            )
        try:
            body = RunRequest.model_validate_json(raw)
        except ValidationError as exc:
            return JSONResponse({"detail": jsonable_encoder(exc.errors())}, status_code=422)
        if body.limits is not None and (over := body.limits.above(maximum)):
            log.info("run refused: %s", "; ".join(over))
            return JSONResponse({"detail": "; ".join(over)}, status_code=422)
        try:
            pool.check_size(body)
            ticket = pool.reserve()
        except CodeTooLarge as exc:
            log.info("run refused: %s", exc)
            return JSONResponse({"detail": str(exc)}, status_code=413)
        except PoolBusy as exc:
            log.info("run refused: the queue is full")
            return JSONResponse(
                {"detail": str(exc)}, status_code=503, headers={"Retry-After": str(exc.retry_after)}
            )

        async def events() -> AsyncIterator[bytes]:
            logs.run_id.set(run)
            log.info("run accepted", extra={"mode": body.mode})
            stream = pool.run(body, ticket=ticket)
            status = "disconnected"  # the web app closed the connection before `done`
            try:
                async for event in stream:
                    if isinstance(event, Done):
                        status = event.status
                    yield (dump_event(event) + "\n").encode()
            finally:
                ticket.release()
                await stream.aclose()  # a closed connection ends the run and its sandbox
                log.info("run finished", extra={"status": status})

        return StreamingResponse(
            events(),
            media_type="application/x-ndjson",
            headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
        )

    @app.get("/healthz")
    async def healthz(request: Request) -> JSONResponse:
        """Liveness and pool state; 503 until at least one sandbox could start."""
        pool: WarmPool = request.app.state.pool
        stats = pool.stats
        body = {"status": "ok", "pool": stats, "device": pool.device}
        if pool.last_error and stats["warm"] == 0 and stats["busy"] == 0:
            body.update(status="failing", detail=pool.last_error)
            return JSONResponse(body, status_code=503)
        return JSONResponse(body)

    @app.get("/metrics")
    async def prometheus_metrics() -> Response:
        """Prometheus text: runs by status, queue wait and run duration, pool gauges."""
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    return app


async def _read_body(request: Request, limit: int) -> bytes | None:
    """The request body, or None as soon as it is over `limit` bytes (nothing more is read)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        return None
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            return None
    return bytes(body)
