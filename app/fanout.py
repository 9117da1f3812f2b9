"""Word between web processes: "run R has new events", "stop run R".

With PostgreSQL every web process LISTENs on one channel, and a process NOTIFYs it in the same
transaction that stores a run's events (so the word never arrives before the events do), or to
ask the process driving a run to stop it. Any replica can then serve any request: a browser
following a run another replica drives reads its events from the database as they are stored,
woken by the notification. On SQLite (one process: `make run`) the word stays in the process;
followers also look every `POLL_S` seconds, so a lost notification costs a moment, never an
event.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.orm import Session

log = logging.getLogger("app.fanout")
CHANNEL = "torchdojo"
POLL_S = 1.0
IDS_PER_WORD = 200  # run ids (32 hex digits and a comma) in one notification: under 8000 bytes

Handler = Callable[[str, str], Coroutine[Any, Any, None]]  # (kind, run id)


class Fanout:
    """In-process word (SQLite); `PostgresFanout` carries it between processes."""

    def __init__(self) -> None:
        self._waiters: dict[str, set[asyncio.Event]] = defaultdict(set)
        self._handlers: list[Handler] = []
        self._loop: asyncio.AbstractEventLoop | None = None

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()

    async def close(self) -> None:
        return None

    def on_word(self, handler: Handler) -> None:
        """`handler(kind, run_id)` for every word but "events" (those wake followers)."""
        self._handlers.append(handler)

    def say(self, session: Session, kind: str, run_id: str) -> None:
        """Say it when `session`'s transaction commits (callable from any thread)."""
        loop = self._loop
        if loop is None:
            return

        def committed(_: Session) -> None:
            loop.call_soon_threadsafe(self._heard, f"{kind}:{run_id}")

        event.listen(session, "after_commit", committed, once=True)

    def say_many(self, session: Session, kind: str, run_ids: list[str]) -> None:
        """One word about several runs (the event writer's batch): as few notifications as
        PostgreSQL's payload limit allows."""
        for start in range(0, len(run_ids), IDS_PER_WORD):
            self.say(session, kind, ",".join(run_ids[start : start + IDS_PER_WORD]))

    @contextlib.asynccontextmanager
    async def waiting_for(self, run_id: str) -> AsyncIterator[asyncio.Event]:
        """An asyncio.Event set when run `run_id` has new events (wait on it with a timeout)."""
        waiter = asyncio.Event()
        self._waiters[run_id].add(waiter)
        try:
            yield waiter
        finally:
            self._waiters[run_id].discard(waiter)
            if not self._waiters[run_id]:
                del self._waiters[run_id]

    def _heard(self, payload: str) -> None:
        kind, _, run_id = payload.partition(":")
        if kind == "events":
            for one in run_id.split(","):
                for event in self._waiters.get(one, ()):
                    event.set()
            return
        for handler in self._handlers:
            task: asyncio.Task[None] = asyncio.get_running_loop().create_task(handler(kind, run_id))
            task.add_done_callback(_log_failure)


def _log_failure(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("handling a word between web processes failed", exc_info=task.exception())


class PostgresFanout(Fanout):
    """LISTEN/NOTIFY on one channel; the listening connection is reopened if it drops."""

    def __init__(self, url: str) -> None:
        super().__init__()
        # psycopg's own URL form (SQLAlchemy's names the driver).
        self.url = url.replace("postgresql+psycopg://", "postgresql://", 1)
        self._task: asyncio.Task[None] | None = None
        self._listening = asyncio.Event()

    async def start(self) -> None:
        await super().start()
        self._task = asyncio.create_task(self._listen())
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(10):
                await self._listening.wait()

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    def say(self, session: Session, kind: str, run_id: str) -> None:
        session.execute(
            text("SELECT pg_notify(:channel, :payload)"),
            {
                "channel": CHANNEL,
                "payload": f"{kind}:{run_id}",
            },
        )

    async def _listen(self) -> None:
        import psycopg

        delay = 0.5
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(
                    self.url, autocommit=True
                ) as connection:
                    await connection.execute(f"LISTEN {CHANNEL}")
                    self._listening.set()
                    delay = 0.5
                    async for notification in connection.notifies():
                        self._heard(notification.payload)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the database restarted, say: listen again soon
                log.warning(
                    "listening for other web processes failed (%s); again in %.1fs", exc, delay
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10)


def make_fanout(database_url: str) -> Fanout:
    return PostgresFanout(database_url) if database_url.startswith("postgresql") else Fanout()
