"""Prometheus metrics of the web app (GET /metrics): runs by status, run duration, live runs and
open event streams, runner errors per replica. The runner serves its own (pool, queue wait)."""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

DURATION_BUCKETS = (0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)


class WebMetrics:
    """One registry per app instance, so tests can run several side by side."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
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
            "status), died (stream broke mid-run)",
            ["replica", "kind"],
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

    def runner_error(self, replica: str, kind: str) -> None:
        self.runner_errors.labels(replica=replica, kind=kind).inc()

    def track_active_runs(self, count: Callable[[], int]) -> None:
        self.active_runs.set_function(lambda: float(count()))
