"""Fair queueing: runs waiting for a sandbox, served round-robin by owner.

Each owner (the web app sends an opaque key per learner) has its own first-come-first-served
line, and the owner served least recently goes next. So one learner's burst never holds up
another learner: with learner A's five runs waiting and learner B's one, B's run starts as soon
as A's next one has, not after all five. A run without an owner is a line of its own.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

_anonymous = itertools.count()
SERVED_MEMORY = 10_000  # owners whose last turn is remembered (the oldest are forgotten first)


@dataclass(eq=False)
class Waiter:
    """One run waiting for a sandbox: its place in line, and the sandbox once it has one."""

    owner: str
    position: int | None = None  # 1 = next; None while it waits for nothing but a fork
    sandbox: Any = None
    lane: Any = None
    arrival: int = 0
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    @classmethod
    def for_owner(cls, owner: str | None) -> Waiter:
        return cls(owner=owner if owner else f"\0anonymous-{next(_anonymous)}")

    def assign(self, sandbox: Any, lane: Any) -> None:
        self.sandbox, self.lane, self.position = sandbox, lane, None
        self.changed.set()

    def move_to(self, position: int | None) -> None:
        if position != self.position:
            self.position = position
            self.changed.set()


class FairQueue:
    """Waiters per owner; `pop` serves the owner served least recently, `order` says who
    starts when."""

    def __init__(self) -> None:
        self._lines: dict[str, deque[Waiter]] = {}
        self._served: dict[str, int] = {}  # owner -> the turn it last started a run on
        self._turns = itertools.count(1)
        self._arrivals = itertools.count(1)

    def __len__(self) -> int:
        return sum(len(line) for line in self._lines.values())

    def add(self, waiter: Waiter) -> None:
        waiter.arrival = next(self._arrivals)
        self._lines.setdefault(waiter.owner, deque()).append(waiter)

    def remove(self, waiter: Waiter) -> None:
        line = self._lines.get(waiter.owner)
        if line is not None and waiter in line:
            line.remove(waiter)
            if not line:
                del self._lines[waiter.owner]

    def _key(self, owner: str) -> tuple[int, int]:
        return self._served.get(owner, 0), self._lines[owner][0].arrival

    def pop(self, may_start: Callable[[str], bool]) -> Waiter | None:
        """The next waiter: of the owners that may start another run now, the one served least
        recently (then the one waiting longest)."""
        owners = sorted((o for o in self._lines if may_start(o)), key=self._key)
        if not owners:
            return None
        owner = owners[0]
        line = self._lines[owner]
        waiter = line.popleft()
        if not line:
            del self._lines[owner]
        self._served.pop(owner, None)
        self._served[owner] = next(self._turns)  # newest last, so the oldest go first below
        while len(self._served) > SERVED_MEMORY:
            del self._served[next(iter(self._served))]
        return waiter

    def order(self, may_start: Callable[[str], bool]) -> list[Waiter]:
        """Every waiter in the order it would start if nothing else changed (owners that may
        not start another run now after the rest)."""
        heap = [(not may_start(o), *self._key(o), o) for o in self._lines]
        heapq.heapify(heap)
        taken = dict.fromkeys(self._lines, 0)
        turn = next(self._turns)  # beyond any turn served so far
        result: list[Waiter] = []
        while heap:
            blocked, _, _, owner = heapq.heappop(heap)
            line = self._lines[owner]
            result.append(line[taken[owner]])
            taken[owner] += 1
            if taken[owner] < len(line):
                turn += 1
                heapq.heappush(heap, (blocked, turn, line[taken[owner]].arrival, owner))
        return result
