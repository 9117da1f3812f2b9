"""torchdojo's runner: a zygote with torch imported forks a fresh single-use bubblewrap sandbox
for each run; as a library, an HTTP service (`python -m runner serve`) and a CLI.

This module is the runner's public API: what the web app (and anything else) may import. The
protocol's models are the contract (docs/runner-protocol.md); the pool and its settings are
for embedding the runner in another process (the web app's `make run` mode). Everything else
under `runner/` is the runner's own business. The pool is imported on first use: importing
the protocol does not start anything.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from runner.config import RunnerSettings, lesson_maximum
from runner.config import get_settings as runner_settings
from runner.logs import RUN_ID_HEADER, LogFormat
from runner.logs import configure as configure_logging
from runner.logs import run_id as current_run_id
from runner.logs import serve as serve_app
from runner.protocol import (
    Done,
    DoneStatus,
    ErrorInfo,
    Event,
    RunMode,
    RunRequest,
    SandboxLimits,
    Summary,
    SummarySpec,
    Test,
    dump_event,
    parse_event,
)

if TYPE_CHECKING:
    from runner.pool import PoolBusy, WarmPool

__all__ = [
    "RUN_ID_HEADER",
    "Done",
    "DoneStatus",
    "ErrorInfo",
    "Event",
    "LogFormat",
    "PoolBusy",
    "RunMode",
    "RunRequest",
    "RunnerSettings",
    "SandboxLimits",
    "Summary",
    "SummarySpec",
    "Test",
    "WarmPool",
    "configure_logging",
    "current_run_id",
    "dump_event",
    "lesson_maximum",
    "parse_event",
    "runner_settings",
    "serve_app",
]


def __getattr__(name: str) -> Any:
    if name in ("WarmPool", "PoolBusy"):
        from runner import pool

        return getattr(pool, name)
    raise AttributeError(f"module 'runner' has no attribute {name!r}")
