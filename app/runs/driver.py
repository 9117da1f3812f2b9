"""Driving one run: events from the runner client's stream go to the process's in-memory
channel (live, for every browser following it here) and to the process's event writer (the
database, in batches: for browsers on other web processes, reconnects and history); the final
`done` is stored, then settles the run, then is published.

Whatever fails on the way (the runner, the database), the run still ends with exactly one
`done` for everyone following it, and is forgotten: nothing sticks as "running".
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from app.metrics import WebMetrics
from app.models import Run
from app.runners import internal_error
from app.runs import store
from app.runs.channel import RunChannel
from app.runs.writer import EventWriter
from runner import Done, DoneStatus, ErrorInfo

log = logging.getLogger("app.runs")


class RunDriver:
    """One run, from its stream's first event to its `done`."""

    def __init__(
        self,
        run: Run,
        stream: AsyncIterator[Any],
        channel: RunChannel,
        *,
        sessions: sessionmaker[Session],
        writer: EventWriter,
        metrics: WebMetrics,
        ending: Callable[[], tuple[DoneStatus, ErrorInfo | None]],
        finishing: Callable[[], None],
    ) -> None:
        self.run, self.stream, self.channel = run, stream, channel
        self.sessions, self.writer, self.metrics = sessions, writer, metrics
        self.ending = ending  # why it is being cancelled (the learner's Stop, superseded, ...)
        self.finishing = finishing  # it is writing its `done`: no cancel may cut that short
        self.started_at = time.monotonic()
        self.last_seq = -1
        self.done: dict[str, Any] | None = None

    async def drive(self) -> None:
        try:
            await self._follow_stream()
        except asyncio.CancelledError:
            self.finishing()
            status, error = self.ending()
            if self.done is None:
                await self._handle(self._ended(status, error))
        except Exception as exc:  # the runner client failed: the learner still gets a done
            log.exception("run %s failed", self.run.id)
            if self.done is None:
                await self._handle(self._failed("The connection to the code runner failed", exc))
        finally:
            with contextlib.suppress(Exception):
                await self.stream.aclose()  # type: ignore[attr-defined]

    async def _follow_stream(self) -> None:
        async for event in self.stream:
            await self._handle(event.model_dump(exclude_none=True))
            if self.done:
                return
        await self._handle(
            self._failed("The code runner's answer ended before your run finished", None)
        )

    async def _handle(self, event: dict[str, Any]) -> None:
        self.last_seq = event["seq"]
        self.writer.add(self.run.id, event)
        if event["type"] == "done":
            # Stored and settled before anyone hears of it: a browser that sees `done` and asks
            # for the run (or reloads the page) finds its final status and progress.
            self.finishing()
            self.done = event
            if not await self.writer.flush(self.run.id):
                log.error("run %s: its end is not stored yet; the writer keeps trying", self.run.id)
            await self._in_thread(store.settle, self.run, event, what="settling it failed")
            elapsed = time.monotonic() - self.started_at
            self.metrics.runs.labels(status=event["status"]).inc()
            self.metrics.run_duration.observe(elapsed)
            log.info(
                "run finished", extra={"status": event["status"], "duration_s": round(elapsed, 3)}
            )
        await self.channel.publish(event)

    async def _in_thread(self, step: Callable[..., Any], *args: Any, what: str) -> bool:
        """A database step in a worker thread, with its own session. False if it failed (it is
        logged): the run goes on, and ends, whatever the database does."""

        def work() -> None:
            with self.sessions() as session:
                step(session, *args)

        try:
            await asyncio.to_thread(work)
            return True
        except Exception:
            log.exception("run %s: %s", self.run.id, what)
            return False

    def _ended(self, status: DoneStatus, error: ErrorInfo | None) -> dict[str, Any]:
        elapsed = time.monotonic() - self.started_at
        done = Done.ending(self.last_seq + 1, elapsed, status, error)
        return done.model_dump(exclude_none=True)

    def _failed(self, what: str, exc: BaseException | None) -> dict[str, Any]:
        reason = type(exc).__name__ if exc else "no final event"
        return internal_error(self.last_seq + 1, self.started_at, what, reason).model_dump(
            exclude_none=True
        )
