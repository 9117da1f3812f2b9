"""Runs: start one per learner at a time, store every event, and fan it out to browsers.

A run's events go to the runner client's stream → an in-memory channel (for every browser
following it, live) → the database (batched, for reconnects and history). A browser that
reconnects with Last-Event-ID gets what it missed, from memory while the run is live and from
the database afterwards. The final `done` settles the run's status and the learner's progress.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import logging
import time
import uuid
from collections import defaultdict, deque
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from app.content import Lesson
from app.metrics import WebMetrics
from app.models import Progress, Run, RunEvent
from app.runners import RUNNER_FAILED, RunnerBusy, RunnerClient, internal_error
from runner import logs
from runner.protocol import Done, DoneStatus, ErrorInfo, RunMode

log = logging.getLogger("app.runs")
FLUSH_EVERY_S = 0.2
KEEP_FINISHED_S = 120  # finished channels stay in memory this long for late followers
SUPERSEDED = ErrorInfo(type="Superseded", message="Stopped because you started a newer run.")
SERVER_RESTARTED = "The server restarted while your code ran"
SERVER_STOPPING = "The server is restarting and stopped your run"


class RateLimited(Exception):
    def __init__(self, retry_after: int) -> None:
        super().__init__(f"You started many runs in the last minute. Try again in {retry_after} s.")
        self.retry_after = retry_after


class RunChannel:
    """All events of one live run, for any number of followers."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self.done = False
        self.changed = asyncio.Condition()

    async def publish(self, event: dict[str, Any]) -> None:
        async with self.changed:
            self.events.append(event)
            self.done = self.done or event["type"] == "done"
            self.changed.notify_all()

    def _past(self, index: int) -> Callable[[], bool]:
        return lambda: len(self.events) > index or self.done

    async def follow(self, after_seq: int) -> AsyncIterator[dict[str, Any]]:
        index = 0
        while True:
            async with self.changed:
                await self.changed.wait_for(self._past(index))
                batch = self.events[index:]
                finished = self.done
            index += len(batch)
            for event in batch:
                if event["seq"] > after_seq:
                    yield event
            if finished and index >= len(self.events):
                return


class RunManager:
    def __init__(
        self,
        *,
        runner: RunnerClient,
        sessions: sessionmaker[Session],
        runs_per_minute: int,
        metrics: WebMetrics | None = None,
        owner_secret: str = "",
    ) -> None:
        self.runner = runner
        self.owner_secret = owner_secret.encode()
        self.sessions = sessions
        self.runs_per_minute = runs_per_minute
        self.metrics = metrics or WebMetrics()
        self.metrics.track_active_runs(lambda: len(self.tasks))
        self.channels: dict[str, RunChannel] = {}
        self.tasks: dict[str, asyncio.Task[None]] = {}
        self.active: dict[int, str] = {}  # user id → their one active run
        self.recent: dict[int, deque[float]] = defaultdict(deque)
        # One start at a time per learner, so two quick clicks cannot both become active runs.
        self.starting: dict[int, asyncio.Lock] = defaultdict(asyncio.Lock)
        # Why a run is being cancelled, when it is not the learner's own Stop.
        self.endings: dict[str, tuple[DoneStatus, ErrorInfo | None]] = {}
        self.ending: set[str] = set()  # runs writing their final `done`: not to be interrupted

    # -- starting and stopping --

    def owner_key(self, user_id: int) -> str:
        """The learner as the runner sees them: a stable key that names no account."""
        digest = hmac.new(self.owner_secret, str(user_id).encode(), hashlib.sha256)
        return digest.hexdigest()[:20]

    def _check_rate(self, user_id: int) -> None:
        now = time.monotonic()
        window = self.recent[user_id]
        while window and now - window[0] > 60:
            window.popleft()
        if len(window) >= self.runs_per_minute:
            raise RateLimited(int(60 - (now - window[0])) + 1)
        window.append(now)

    async def start(
        self, *, user_id: int, lesson_key: str, lesson: Lesson, code: str, mode: RunMode
    ) -> Run:
        """Create the run and start it; a learner's previous active run is cancelled."""
        async with self.starting[user_id]:
            return await self._start(
                user_id=user_id, lesson_key=lesson_key, lesson=lesson, code=code, mode=mode
            )

    async def _start(
        self, *, user_id: int, lesson_key: str, lesson: Lesson, code: str, mode: RunMode
    ) -> Run:
        self._check_rate(user_id)
        previous = self.active.get(user_id)
        if previous:
            await self.cancel(previous, status="cancelled", error=SUPERSEDED)
        run = Run(
            id=uuid.uuid4().hex,
            user_id=user_id,
            lesson_key=lesson_key,
            mode=mode,
            code=code,
            status="running",
        )
        logs.run_id.set(run.id)  # on every log line from here on, the runner's included
        log.info("run starting", extra={"lesson": lesson_key, "mode": mode})
        # Database work in a thread: the event loop keeps serving every other learner meanwhile.
        await asyncio.to_thread(self._create, run)
        channel = self.channels[run.id] = RunChannel()
        self.active[user_id] = run.id
        try:
            request = lesson.run_request(code, mode, owner=self.owner_key(user_id))
            stream = await self.runner.open(request, run_id=run.id)
        except RunnerBusy:
            self.metrics.runs.labels(status="busy").inc()
            log.info("run refused: every runner is busy")
            self._forget(run.id, user_id)
            await asyncio.to_thread(self._delete, run.id)
            raise
        self.tasks[run.id] = asyncio.create_task(self._drive(run, stream, channel))
        return run

    def _create(self, run: Run) -> None:
        with self.sessions() as session:
            session.add(run)
            progress = session.scalar(
                select(Progress).where(
                    Progress.user_id == run.user_id, Progress.lesson_key == run.lesson_key
                )
            )
            if progress is None:
                session.add(
                    Progress(user_id=run.user_id, lesson_key=run.lesson_key, status="started")
                )
            session.commit()

    def _delete(self, run_id: str) -> None:
        with self.sessions() as session:
            run = session.get(Run, run_id)
            if run is not None:
                session.delete(run)
                session.commit()

    async def cancel(
        self, run_id: str, status: DoneStatus = "cancelled", error: ErrorInfo | None = None
    ) -> bool:
        """Stop a live run; its `done` gets `status` and `error` (default: the learner's Stop)."""
        task = self.tasks.get(run_id)
        if task is None or task.done():
            return False
        self.endings[run_id] = (status, error)
        if run_id not in self.ending:  # a run already writing its `done` is left to finish it
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
        return True

    async def wait(self, run_id: str) -> None:
        task = self.tasks.get(run_id)
        if task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def close(self) -> None:
        """Shutting down: every live run ends, and its learner is told it was not their doing."""
        stopping = ErrorInfo(
            type="ServerRestart", message=RUNNER_FAILED.format(what=SERVER_STOPPING)
        )
        for run_id in list(self.tasks):
            await self.cancel(run_id, status="internal_error", error=stopping)

    def recover(self) -> int:
        """At start-up: runs that a previous server process left `running` can no longer end on
        their own (their runner stream died with it). Each gets its `done` (internal_error) and
        its status, so its learner's browser stops waiting. Returns how many."""
        with self.sessions() as session:
            orphans = session.scalars(select(Run).where(Run.status == "running")).all()
            for run in orphans:
                self._end_orphan(session, run)
            session.commit()
        if orphans:
            log.warning("ended %d run(s) left running by a previous server process", len(orphans))
        return len(orphans)

    def _end_orphan(self, session: Session, run: Run) -> dict[str, Any]:
        last = session.scalar(
            select(RunEvent.seq)
            .where(RunEvent.run_id == run.id)
            .order_by(RunEvent.seq.desc())
            .limit(1)
        )
        created = run.created_at.replace(tzinfo=run.created_at.tzinfo or UTC)
        elapsed = max((datetime.now(UTC) - created).total_seconds(), 0.0)
        done = Done(
            seq=(last if last is not None else -1) + 1,
            t=round(elapsed, 6),
            status="internal_error",
            duration_ms=round(elapsed * 1000, 3),
            error=ErrorInfo(
                type="ServerRestart", message=RUNNER_FAILED.format(what=SERVER_RESTARTED)
            ),
        ).model_dump(exclude_none=True)
        session.add(RunEvent(run_id=run.id, seq=done["seq"], type="done", data=done))
        run.status = "internal_error"
        run.finished_at = datetime.now(UTC)
        return done

    # -- driving one run --

    async def _drive(self, run: Run, stream: AsyncIterator[Any], channel: RunChannel) -> None:
        pending: list[dict[str, Any]] = []
        started_at = time.monotonic()
        last_seq = -1
        done: dict[str, Any] | None = None

        async def store_pending() -> None:
            batch = pending[:]
            pending.clear()
            if batch:
                await asyncio.to_thread(self._store, run.id, batch)

        async def flush_every_while() -> None:
            """Events go to the database in batches, at most FLUSH_EVERY_S after they happen,
            also while the code is quiet: if this process dies, little of what browsers have
            already seen is missing when they reconnect to the next one."""
            while True:
                await asyncio.sleep(FLUSH_EVERY_S)
                await store_pending()

        flusher = asyncio.create_task(flush_every_while())

        async def handle(event: dict[str, Any]) -> None:
            nonlocal last_seq, done
            last_seq = event["seq"]
            pending.append(event)
            if event["type"] == "done":
                # Stored and settled before anyone hears of it: a browser that sees `done` and
                # asks for the run (or reloads the page) finds its final status and progress.
                self.ending.add(run.id)  # and no cancel may cut that short
                done = event
                await store_pending()
                await asyncio.to_thread(self._settle, run, event)
                elapsed = time.monotonic() - started_at
                self.metrics.runs.labels(status=event["status"]).inc()
                self.metrics.run_duration.observe(elapsed)
                log.info(
                    "run finished",
                    extra={"status": event["status"], "duration_s": round(elapsed, 3)},
                )
            await channel.publish(event)

        try:
            async for event in stream:
                await handle(event.model_dump(exclude_none=True))
                if done:
                    break
            if done is None:
                await handle(
                    internal_error(
                        last_seq + 1,
                        started_at,
                        "The code runner's answer ended before your run finished",
                        "no final event",
                    ).model_dump(exclude_none=True)
                )
        except asyncio.CancelledError:
            self.ending.add(run.id)
            status, error = self.endings.pop(run.id, ("cancelled", None))
            if done is None:
                cancelled = Done(
                    seq=last_seq + 1,
                    t=round(time.monotonic() - started_at, 6),
                    status=status,
                    duration_ms=round((time.monotonic() - started_at) * 1000, 3),
                    error=error,
                )
                await handle(cancelled.model_dump(exclude_none=True))
        except Exception as exc:  # the runner client failed: the learner still gets a done
            log.exception("run %s failed", run.id)
            if done is None:
                await handle(
                    internal_error(
                        last_seq + 1,
                        started_at,
                        "The connection to the code runner failed",
                        type(exc).__name__,
                    ).model_dump(exclude_none=True)
                )
        finally:
            self.ending.discard(run.id)
            self.endings.pop(run.id, None)
            flusher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await flusher
            with contextlib.suppress(Exception):
                await stream.aclose()  # type: ignore[attr-defined]
            await store_pending()
            self._forget(run.id, run.user_id, keep_channel=True)

    def _forget(self, run_id: str, user_id: int, keep_channel: bool = False) -> None:
        if self.active.get(user_id) == run_id:
            del self.active[user_id]
        self.tasks.pop(run_id, None)
        if not keep_channel:
            self.channels.pop(run_id, None)
        else:
            asyncio.get_running_loop().call_later(KEEP_FINISHED_S, self.channels.pop, run_id, None)

    def _store(self, run_id: str, events: list[dict[str, Any]]) -> None:
        with self.sessions() as session:
            session.add_all(
                RunEvent(run_id=run_id, seq=e["seq"], type=e["type"], data=e) for e in events
            )
            session.commit()

    def _settle(self, run: Run, done: dict[str, Any]) -> None:
        """The run's final status, and the learner's progress on the lesson."""
        tests = done.get("tests")
        with self.sessions() as session:
            stored = session.get(Run, run.id)
            if stored is None:
                return
            stored.status = done["status"]
            stored.finished_at = datetime.now(UTC)
            if tests is not None:
                stored.tests_passed = tests["passed"]
                stored.tests_total = tests["passed"] + tests["failed"] + tests["errors"]
            progress = session.scalar(
                select(Progress).where(
                    Progress.user_id == run.user_id, Progress.lesson_key == run.lesson_key
                )
            )
            if progress is None:
                progress = Progress(
                    user_id=run.user_id, lesson_key=run.lesson_key, status="started"
                )
                session.add(progress)
            if run.mode == "check" and tests is not None:
                all_green = (
                    done["status"] == "completed"
                    and tests["passed"] > 0
                    and not (tests["failed"] or tests["errors"])
                )
                if all_green:
                    progress.status = "passed"
                else:
                    progress.failed_checks = (progress.failed_checks or 0) + 1
            progress.updated_at = datetime.now(UTC)
            session.commit()

    # -- following --

    async def follow(self, run_id: str, after_seq: int = -1) -> AsyncIterator[dict[str, Any]]:
        """Every event after `after_seq`: live while the run is in memory, else from the database"""
        channel = self.channels.get(run_id)
        if channel is not None:
            async for event in channel.follow(after_seq):
                yield event
            return
        rows = await asyncio.to_thread(self._stored_events, run_id, after_seq)
        for data in rows:
            yield data

    def _stored_events(self, run_id: str, after_seq: int) -> list[dict[str, Any]]:
        """A run's stored events after `after_seq`. A run no process drives any more but never
        stored its `done` (its server was killed) gets one now, so no browser waits forever."""
        with self.sessions() as session:
            rows = list(
                session.scalars(
                    select(RunEvent.data)
                    .where(RunEvent.run_id == run_id, RunEvent.seq > after_seq)
                    .order_by(RunEvent.seq)
                ).all()
            )
            if any(row["type"] == "done" for row in rows):
                return rows
            # A browser that reconnects after the `done`'s seq (it saw events the killed
            # process never stored) still gets the `done`: it is final whatever its number.
            stored_done = session.scalar(
                select(RunEvent.data).where(RunEvent.run_id == run_id, RunEvent.type == "done")
            )
            run = session.get(Run, run_id)
            if stored_done is not None:
                rows.append(stored_done)
            elif run is not None and run.status == "running" and run_id not in self.tasks:
                rows.append(self._end_orphan(session, run))
                session.commit()
        return rows
