"""A live run's events in memory, for every browser this process serves that follows it.

The process driving the run publishes into it as events come from the runner; any other process
fills its own copy from the database, once for all its followers (`RunManager._mirror`)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any


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

    async def close(self) -> None:
        """No more events will come (the run ended, or its copy broke: followers reconnect)."""
        async with self.changed:
            self.done = True
            self.changed.notify_all()

    def _past(self, index: int) -> Callable[[], bool]:
        return lambda: len(self.events) > index or self.done

    async def follow(self, after_seq: int) -> AsyncIterator[dict[str, Any]]:
        """The events after `after_seq`, and the `done` whatever its number: a run ended for a
        dead driver has its `done` numbered after what was stored, which may be below what a
        browser saw live (events the driver had not stored yet). That browser gets it numbered
        after the last event it has, so its stream stays gapless and ends."""
        index, last = 0, after_seq
        while True:
            async with self.changed:
                await self.changed.wait_for(self._past(index))
                batch = self.events[index:]
                finished = self.done
            index += len(batch)
            for event in batch:
                if event["type"] == "done" and event["seq"] <= last:
                    event = {**event, "seq": last + 1}
                if event["seq"] > last:
                    last = event["seq"]
                    yield event
            if finished and index >= len(self.events):
                return
