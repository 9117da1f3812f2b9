"""RunManager: starts runs, stops them, and lets any number of browsers follow them, on any
web process.

A run is driven by the process that started it (`RunDriver`), which says so in the database
every few seconds (the heartbeat). A learner has one active run: a start supersedes the one
still going, wherever it runs (in this process: cancelled here; in another: it is asked to, over
the fanout; a run whose driver died: ended in the database). A browser following a run this
process drives reads it from memory; for a run another process drives, this process reads it
from the database once for all its followers (a mirror channel, woken by the fanout as each
batch is stored), so a thousand browsers cost as many queries as one.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import logging
import uuid
from collections.abc import AsyncIterator
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from app.content import Lesson
from app.fanout import POLL_S, Fanout
from app.metrics import WebMetrics
from app.models import Run
from app.runners import RUNNER_FAILED, RunnerBusy, RunnerClient
from app.runs import store
from app.runs.channel import RunChannel
from app.runs.driver import RunDriver
from app.runs.writer import EventWriter
from runner import DoneStatus, ErrorInfo, RunMode, current_run_id

log = logging.getLogger("app.runs")
KEEP_FINISHED_S = 120  # finished channels stay in memory this long for late followers
HEARTBEAT_S = 5.0  # well within store.STALE_S
SUPERSEDED = ErrorInfo(type="Superseded", message="Stopped because you started a newer run.")
STOPPED = ErrorInfo(type="Cancelled", message="Stopped: you cancelled the run.")
SERVER_STOPPING = "The server is restarting and stopped your run"


class RunManager:
    def __init__(
        self,
        *,
        runner: RunnerClient,
        sessions: sessionmaker[Session],
        runs_per_minute: int,
        metrics: WebMetrics | None = None,
        owner_secret: str = "",
        fanout: Fanout | None = None,
    ) -> None:
        self.runner = runner
        self.owner_secret = owner_secret.encode()
        self.sessions = sessions
        self.runs_per_minute = runs_per_minute
        self.metrics = metrics or WebMetrics()
        self.metrics.track_active_runs(lambda: len(self.tasks))
        self.fanout = fanout or Fanout()
        self.fanout.on_word(self._heard)
        self.writer = EventWriter(sessions, self.fanout)
        self.replica = uuid.uuid4().hex[:16]  # this process, as the database names drivers
        self.channels: dict[str, RunChannel] = {}
        self.tasks: dict[str, asyncio.Task[None]] = {}
        self.mirrors: dict[str, asyncio.Task[None]] = {}  # runs other processes drive
        # One start at a time per learner in this process (across processes: a row lock).
        self.starting: dict[int, asyncio.Lock] = {}
        # Why a run is being cancelled, when it is not the learner's own Stop.
        self.endings: dict[str, tuple[DoneStatus, ErrorInfo | None]] = {}
        self.ending: set[str] = set()  # runs writing their final `done`: not to be interrupted
        self._beating: asyncio.Task[None] | None = None

    async def start_background(self) -> None:
        """The heartbeat of this process's runs, the sweep that ends dead drivers' runs, and the
        writer of every run's events."""
        self._beating = asyncio.create_task(self._heartbeat())
        await self.writer.start()

    def owner_key(self, user_id: int) -> str:
        """The learner as the runner sees them: a stable key that names no account."""
        digest = hmac.new(self.owner_secret, str(user_id).encode(), hashlib.sha256)
        return digest.hexdigest()[:20]

    # -- starting --

    async def start(
        self, *, user_id: int, lesson_key: str, lesson: Lesson, code: str, mode: RunMode
    ) -> Run:
        """Create the run and start it; the learner's run still going is superseded."""
        lock = self.starting.setdefault(user_id, asyncio.Lock())
        async with lock:
            run = Run(
                id=uuid.uuid4().hex,
                user_id=user_id,
                lesson_key=lesson_key,
                mode=mode,
                code=code,
                status="running",
                driver=self.replica,
                heartbeat_at=store.now(),
            )
            current_run_id.set(run.id)  # on every log line from here on, the runner's included
            log.info("run starting", extra={"lesson": lesson_key, "mode": mode})
            going = await self._db(store.create, run, runs_per_minute=self.runs_per_minute)
            for previous in going:
                await self._supersede(previous)
            await self._launch(run, lesson, code, mode)
            return run

    async def _launch(self, run: Run, lesson: Lesson, code: str, mode: RunMode) -> None:
        channel = self.channels[run.id] = RunChannel()
        try:
            request = lesson.run_request(code, mode, owner=self.owner_key(run.user_id))
            stream = await self.runner.open(request, run_id=run.id)
        except RunnerBusy:
            self.metrics.runs.labels(status="busy").inc()
            log.info("run refused: every runner is busy")
            self.channels.pop(run.id, None)
            await self._db(store.delete, run.id)
            raise
        driver = RunDriver(
            run,
            stream,
            channel,
            sessions=self.sessions,
            writer=self.writer,
            metrics=self.metrics,
            ending=lambda: self.endings.pop(run.id, ("cancelled", None)),
            finishing=lambda: self.ending.add(run.id),
        )
        task = asyncio.create_task(driver.drive())
        self.tasks[run.id] = task
        task.add_done_callback(lambda _: self._forget(run.id))

    async def _supersede(self, previous: store.Going) -> None:
        if previous.run_id in self.tasks:
            await self.cancel(previous.run_id, status="cancelled", error=SUPERSEDED)
        elif previous.alive:
            await self._db(self._say, "supersede", previous.run_id)
        else:
            await self._db(store.end_stale, self.fanout)

    # -- stopping --

    async def cancel(
        self, run_id: str, status: DoneStatus = "cancelled", error: ErrorInfo | None = None
    ) -> bool:
        """Stop a live run; its `done` gets `status` and `error` (default: the learner's Stop).
        A run another process drives is asked to stop there."""
        task = self.tasks.get(run_id)
        if task is None:
            return bool(await self._db(self._ask_driver, "cancel", run_id))
        if task.done():
            return False
        self.endings[run_id] = (status, error)
        if run_id not in self.ending:  # a run already writing its `done` is left to finish it
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
        return True

    async def _heard(self, kind: str, run_id: str) -> None:
        """Another process asked this one to stop a run it drives."""
        if run_id in self.tasks:
            error = SUPERSEDED if kind == "supersede" else None
            await self.cancel(run_id, status="cancelled", error=error)

    def _say(self, session: Session, kind: str, run_id: str) -> None:
        self.fanout.say(session, kind, run_id)
        session.commit()

    def _ask_driver(self, session: Session, kind: str, run_id: str) -> bool:
        """Ask the process driving a run still going to stop it; False if it is not going."""
        run = session.get(Run, run_id)
        if run is None or run.status != "running":
            return False
        self._say(session, kind, run_id)
        return True

    async def wait(self, run_id: str) -> None:
        task = self.tasks.get(run_id)
        if task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def close(self) -> None:
        """Shutting down: every live run ends, and its learner is told it was not their doing."""
        if self._beating is not None:
            self._beating.cancel()
        stopping = ErrorInfo(
            type="ServerRestart", message=RUNNER_FAILED.format(what=SERVER_STOPPING)
        )
        for run_id in list(self.tasks):
            await self.cancel(run_id, status="internal_error", error=stopping)
        for mirror in list(self.mirrors.values()):
            mirror.cancel()
        await asyncio.gather(*self.mirrors.values(), return_exceptions=True)
        await self.writer.close()

    def recover(self) -> int:
        """At start-up (and every heartbeat): runs whose driver went quiet (a killed process)
        can no longer end on their own. Each gets its `done` (internal_error) and its status,
        so its learner's browser stops waiting. Returns how many."""
        with self.sessions() as session:
            ended = store.end_stale(session, self.fanout)
        if ended:
            log.warning("ended %d run(s) whose web process stopped", ended)
        return ended

    def _forget(self, run_id: str) -> None:
        self.tasks.pop(run_id, None)
        self.ending.discard(run_id)
        self.endings.pop(run_id, None)
        with contextlib.suppress(RuntimeError):  # the loop is closing
            asyncio.get_running_loop().call_later(KEEP_FINISHED_S, self.channels.pop, run_id, None)

    async def _heartbeat(self) -> None:
        while True:
            await asyncio.sleep(HEARTBEAT_S)
            try:
                await self._db(store.heartbeat, self.replica, list(self.tasks))
                await asyncio.to_thread(self.recover)
            except Exception:
                log.exception("the runs' heartbeat failed; trying again")

    # -- following --

    async def follow(self, run_id: str, after_seq: int = -1) -> AsyncIterator[dict[str, Any]]:
        """Every event after `after_seq`, until its `done`: from memory while this process
        drives the run, else from this process's mirror of what the database holds."""
        channel = self.channels.get(run_id) or self._mirror(run_id)
        async for event in channel.follow(after_seq):
            yield event

    def _mirror(self, run_id: str) -> RunChannel:
        """A channel this process fills from the database, for a run it does not drive."""
        channel = self.channels[run_id] = RunChannel()
        task = asyncio.create_task(self._copy_from_db(run_id, channel))
        self.mirrors[run_id] = task
        task.add_done_callback(lambda _: self._forget_mirror(run_id, channel))
        return channel

    async def _copy_from_db(self, run_id: str, channel: RunChannel) -> None:
        last = -1
        try:
            while True:
                async with self.fanout.waiting_for(run_id) as stored:
                    rows = await self._db(store.events_after, self.fanout, run_id, last)
                    for row in rows:
                        await channel.publish(row)
                        if row["type"] == "done":
                            return
                        last = max(last, row["seq"])
                    if not rows and not await self._db(_exists, run_id):
                        return  # deleted (purged): nothing more will come
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(POLL_S):
                            await stored.wait()
        except Exception:
            # Its followers' streams end without a `done`; their browsers reconnect (after
            # their Last-Event-ID) to a fresh mirror.
            log.exception("reading run %s from the database failed", run_id)
            if self.channels.get(run_id) is channel:
                del self.channels[run_id]
        finally:
            await channel.close()

    def _forget_mirror(self, run_id: str, channel: RunChannel) -> None:
        self.mirrors.pop(run_id, None)

        def drop() -> None:
            if self.channels.get(run_id) is channel:
                del self.channels[run_id]

        with contextlib.suppress(RuntimeError):  # the loop is closing
            asyncio.get_running_loop().call_later(KEEP_FINISHED_S, drop)

    async def _db(self, step: Any, *args: Any, **kwargs: Any) -> Any:
        """A database step in a worker thread, with a session of its own."""

        def work() -> Any:
            with self.sessions() as session:
                return step(session, *args, **kwargs)

        return await asyncio.to_thread(work)

    def going_run(self, session: Session, user_id: int, lesson_key: str) -> dict[str, str]:
        return store.going_run(session, user_id, lesson_key) or {}


def _exists(session: Session, run_id: str) -> bool:
    return session.get(Run, run_id) is not None
