"""Prometheus metrics of the runner: runs by status, queue wait, run duration, pool gauges."""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

DURATION_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)
WAIT_BUCKETS = (0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 2.5, 5, 10, 30, 60)


class RunnerMetrics:
    """One registry per service instance, so tests can run several side by side."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self.runs = Counter(
            "torchdojo_runner_runs",
            "Runs finished, by done.status",
            ["status"],
            registry=self.registry,
        )
        self.queue_wait = Histogram(
            "torchdojo_runner_queue_wait_seconds",
            "Time a run waited for a warm sandbox",
            buckets=WAIT_BUCKETS,
            registry=self.registry,
        )
        self.run_duration = Histogram(
            "torchdojo_runner_run_duration_seconds",
            "Time from request to done",
            buckets=DURATION_BUCKETS,
            registry=self.registry,
        )
        self.pool = Gauge(
            "torchdojo_runner_pool_sandboxes",
            "Sandboxes by state",
            ["state"],
            registry=self.registry,
        )

    def track_pool(self, stats: Callable[[], dict[str, int]]) -> None:
        def reader(state: str) -> Callable[[], float]:
            return lambda: float(stats()[state])

        for state in ("warm", "busy", "queued"):
            self.pool.labels(state=state).set_function(reader(state))
