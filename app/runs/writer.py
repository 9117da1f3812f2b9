"""One writer per web process for every live run's events: every FLUSH_EVERY_S it stores what
all of this process's runs sent since, in one transaction, with one notification for the other
processes. A class of 50 runs costs five transactions a second, not 250.

Being the only writer, it keeps each run's events in order: a process reading a run from the
database never sees an event before the ones it follows. A batch that fails to store (the
database is away) is kept and tried again on the next tick; the runs go on meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from app.fanout import Fanout
from app.runs import store

log = logging.getLogger("app.runs")
FLUSH_EVERY_S = 0.2


class EventWriter:
    def __init__(self, sessions: sessionmaker[Session], fanout: Fanout) -> None:
        self.sessions, self.fanout = sessions, fanout
        self.pending: dict[str, list[dict[str, Any]]] = {}
        self._wake = asyncio.Event()
        self._written = asyncio.Condition()
        self._taken = 0  # batches taken from `pending` so far
        self._finished = 0  # of those, stored or given back
        self._failing = False
        self._task: asyncio.Task[None] | None = None
        self._closing = False

    async def start(self) -> None:
        self._task = asyncio.create_task(self._loop())

    async def close(self) -> None:
        """Store what is left (one last try), then stop."""
        self._closing = True
        self._wake.set()
        if self._task is not None:
            with contextlib.suppress(Exception):
                await self._task
        await self._write_once()

    def add(self, run_id: str, event: dict[str, Any]) -> None:
        self.pending.setdefault(run_id, []).append(event)

    async def flush(self, run_id: str) -> bool:
        """Store now what is pending; True once every event of `run_id` added so far is in the
        database, False if the attempt failed (they stay pending for the next tick)."""
        if self._task is None or self._task.done():  # not running (tests, shutting down)
            await self._write_once()
            return run_id not in self.pending
        target = self._taken + 1  # the next batch taken holds everything pending now
        self._wake.set()
        async with self._written:
            await self._written.wait_for(lambda: self._finished >= target)
        return run_id not in self.pending

    async def _loop(self) -> None:
        while not self._closing:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), FLUSH_EVERY_S)
            self._wake.clear()
            await self._write_once()

    async def _write_once(self) -> None:
        batch, self.pending = self.pending, {}
        self._taken += 1
        try:
            if batch:
                await asyncio.to_thread(self._store, batch)
            if self._failing:
                log.warning("storing run events works again")
                self._failing = False
        except Exception:
            if not self._failing:  # once per outage, not five times a second
                log.exception("storing run events failed; trying again every %ss", FLUSH_EVERY_S)
                self._failing = True
            for run_id, events in batch.items():  # back in front of what came meanwhile
                self.pending[run_id] = events + self.pending.get(run_id, [])
        finally:
            self._finished += 1
            async with self._written:
                self._written.notify_all()

    def _store(self, batch: dict[str, list[dict[str, Any]]]) -> None:
        with self.sessions() as session:
            store.store(session, self.fanout, batch)
