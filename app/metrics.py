"""Prometheus metrics of the web app (GET /metrics): HTTP requests by route and status, runs by
status, run duration, live runs and open event streams, runner errors by kind, and the
process's own (CPU, memory, descriptors). Every label has a bounded set of values: routes are
the app's route templates, never raw paths; runner replicas, which come and go, are named in
the log lines, not in labels. The runner serves its own (pool, queue wait)."""

from __future__ import annotations

import time
from collections.abc import Callable

from prometheus_client import (
    PLATFORM_COLLECTOR,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    ProcessCollector,
)
from starlette.types import ASGIApp, Message, Receive, Scope, Send

DURATION_BUCKETS = (0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)
REQUEST_BUCKETS = (0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10)


class WebMetrics:
    """One registry per app instance, so tests can run several side by side."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        ProcessCollector(registry=self.registry)
        self.registry.register(PLATFORM_COLLECTOR)
        self.requests = Counter(
            "torchdojo_web_http_requests",
            "HTTP requests answered, by method, route template and status code",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.request_duration = Histogram(
            "torchdojo_web_http_request_duration_seconds",
            "Time to the response's first byte (event streams: to their start), by route",
            ["route"],
            buckets=REQUEST_BUCKETS,
            registry=self.registry,
        )
        self.runs = Counter(
            "torchdojo_web_runs",
            "Runs finished, by done.status (busy: refused because every runner was busy)",
            ["status"],
            registry=self.registry,
        )
        self.run_duration = Histogram(
            "torchdojo_web_run_duration_seconds",
            "Time from a learner pressing Run to the run's done event",
            buckets=DURATION_BUCKETS,
            registry=self.registry,
        )
        self.runner_errors = Counter(
            "torchdojo_web_runner_errors",
            "Runner replicas that failed a request: unreachable, busy (503), http (other "
            "status), died (stream broke mid-run); which replica: the log",
            ["kind"],
            registry=self.registry,
        )
        self.open_streams = Gauge(
            "torchdojo_web_open_event_streams",
            "Browsers following a run's events (SSE) right now",
            registry=self.registry,
        )
        self.active_runs = Gauge(
            "torchdojo_web_active_runs", "Runs in progress", registry=self.registry
        )

    def runner_error(self, kind: str) -> None:
        self.runner_errors.labels(kind=kind).inc()

    def track_active_runs(self, count: Callable[[], int]) -> None:
        self.active_runs.set_function(lambda: float(count()))


class RequestMetrics:
    """Counts and times every HTTP request, labelled by its route template (`/api/runs/{run_id}`,
    not the id), `unmatched` for paths no route has."""

    def __init__(self, app: ASGIApp, metrics: WebMetrics) -> None:
        self.app, self.metrics = app, metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def observe(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                self.metrics.request_duration.labels(route=_route(scope)).observe(
                    time.perf_counter() - started
                )
            await send(message)

        try:
            await self.app(scope, receive, observe)
        finally:
            self.metrics.requests.labels(
                method=scope["method"] if scope["method"] in _METHODS else "other",
                route=_route(scope),
                status=str(status),
            ).inc()


_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"})


def _route(scope: Scope) -> str:
    route = scope.get("route")
    path = getattr(route, "path", None)
    if path is None and scope["path"].startswith("/static/"):
        return "/static"
    return str(path) if path else "unmatched"
