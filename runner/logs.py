"""Logging for both services: one line per record, JSON when deployed, each carrying the run id.

The web app names every run (`Run.id`) and sends it to the runner as the `X-Run-Id` header;
both services keep it in `run_id` (a context variable) while they work on that run, so the
web app's and the runner's lines about one run can be joined with one query in the log store:

    {"time": "...", "level": "INFO", "logger": "runner.service", "message": "run finished",
     "run_id": "3f2a...", "status": "completed", "duration_s": 1.92}
"""

from __future__ import annotations

import logging
import sys
from contextvars import ContextVar
from typing import Literal

from pythonjsonlogger.json import JsonFormatter

run_id: ContextVar[str | None] = ContextVar("run_id", default=None)
LogFormat = Literal["text", "json"]
RUN_ID_HEADER = "X-Run-Id"


class RunIdFilter(logging.Filter):
    """Stamps every record with the run being worked on (or None)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "run_id"):
            record.run_id = run_id.get()
        return True


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        current = getattr(record, "run_id", None)
        return f"{line} [run {current}]" if current else line


def configure(level: str = "info", fmt: LogFormat = "text") -> None:
    """Route every logger (uvicorn's included) through one stderr handler."""
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(RunIdFilter())
    if fmt == "json":
        handler.setFormatter(
            JsonFormatter(
                "{levelname}{name}{message}{run_id}",
                style="{",
                rename_fields={"levelname": "level", "name": "logger"},
                timestamp="time",  # ISO 8601, UTC
            )
        )
    else:
        handler.setFormatter(TextFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers[:] = []
        logger.propagate = True


def serve(factory: str, host: str, port: int, *, forwarded_allow_ips: str | None = None) -> None:
    """Serve an app factory ("module:function") with uvicorn, keeping the handler that
    `configure` set up, so uvicorn's own lines come out in the same format. With
    `forwarded_allow_ips`, X-Forwarded-For/-Proto are believed from those addresses alone."""
    import uvicorn

    uvicorn.run(
        factory,
        factory=True,
        host=host,
        port=port,
        log_config=None,
        proxy_headers=forwarded_allow_ips is not None,
        forwarded_allow_ips=forwarded_allow_ips,
    )
