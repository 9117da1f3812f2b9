"""Driving one run: events from the runner client's stream go to the process's in-memory
channel (live, for every browser following it here) and to the database (in batches, for
browsers on other web processes, reconnects and history); the final `done` settles the run.

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

from app.fanout import Fanout
from app.metrics import WebMetrics
from app.models import Run
from app.runners import internal_error
from app.runs import store
from app.runs.channel import RunChannel
from runner.protocol import Done, DoneStatus, ErrorInfo

log = logging.getLogger("app.runs")
FLUSH_EVERY_S = 0.2


class RunDriver:
    """One run, from its stream's first event to its `done`."""

    def __init__(
        self,
        run: Run,
        stream: AsyncIterator[Any],
        channel: RunChannel,
        *,
        sessions: sessionmaker[Session],
        fanout: Fanout,
        metrics: WebMetrics,
        ending: Callable[[], tuple[DoneStatus, ErrorInfo | None]],
        finishing: Callable[[], None],
    ) -> None:
        self.run, self.stream, self.channel = run, stream, channel
        self.sessions, self.fanout, self.metrics = sessions, fanout, metrics
        self.ending = ending  # why it is being cancelled (the learner's Stop, superseded, ...)
        self.finishing = finishing  # it is writing its `done`: no cancel may cut that short
        self.pending: list[dict[str, Any]] = []
        # One batch at a time, in order: were the flusher's batch and the `done`'s stored in
        # two transactions at once, the later could commit first, and a process reading the
        # run from the database would see its `done` before the events it ends.
        self.storing = asyncio.Lock()
        self.started_at = time.monotonic()
        self.last_seq = -1
        self.done: dict[str, Any] | None = None

    async def drive(self) -> None:
        stop_flushing = asyncio.Event()
        flusher = asyncio.create_task(self._flush_every_while(stop_flushing))
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
            # Not cancelled: a batch being stored is stored (and in order) before the last one.
            stop_flushing.set()
            with contextlib.suppress(Exception):
                await flusher
            with contextlib.suppress(Exception):
                await self.stream.aclose()  # type: ignore[attr-defined]
            await self._store_safely("its last events could not be stored")

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
        self.pending.append(event)
        if event["type"] == "done":
            # Stored and settled before anyone hears of it: a browser that sees `done` and asks
            # for the run (or reloads the page) finds its final status and progress.
            self.finishing()
            self.done = event
            await self._store_safely("storing its end failed")
            await self._in_thread(store.settle, self.run, event, what="settling it failed")
            elapsed = time.monotonic() - self.started_at
            self.metrics.runs.labels(status=event["status"]).inc()
            self.metrics.run_duration.observe(elapsed)
            log.info(
                "run finished", extra={"status": event["status"], "duration_s": round(elapsed, 3)}
            )
        await self.channel.publish(event)

    async def _flush_every_while(self, stop: asyncio.Event) -> None:
        """Events go to the database in batches, at most FLUSH_EVERY_S after they happen, also
        while the code is quiet: browsers on other web processes see them that soon, and if
        this process dies, little of what browsers have seen is missing afterwards."""
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), FLUSH_EVERY_S)
            await self._store_safely("storing events failed; retrying")

    async def _store_safely(self, what: str) -> None:
        async with self.storing:
            batch, self.pending = self.pending, []
            if batch and not await self._in_thread(
                store.store, self.fanout, self.run.id, batch, what=what
            ):
                self.pending[:0] = batch  # not stored: the next flush tries them again

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
        done = Done(
            seq=self.last_seq + 1,
            t=round(elapsed, 6),
            status=status,
            duration_ms=round(elapsed * 1000, 3),
            error=error,
        )
        return done.model_dump(exclude_none=True)

    def _failed(self, what: str, exc: BaseException | None) -> dict[str, Any]:
        reason = type(exc).__name__ if exc else "no final event"
        return internal_error(self.last_seq + 1, self.started_at, what, reason).model_dump(
            exclude_none=True
        )
