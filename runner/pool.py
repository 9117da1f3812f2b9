"""The warm pool: zygotes, the warm sandboxes they fork, and the fair queue in front of them.

One zygote per lane (the CPU, or each GPU on a GPU host) has torch and friends imported once.
The pool keeps `size` sandboxes warm (forked, confined, waiting for a job: a few MiB each) and
runs at most `size` jobs at once. A job takes a warm sandbox, and a fresh one is forked at
once in its place, so the next run never waits for a warm-up. Runs beyond `size` wait in the
fair queue (round-robin by owner, with `queued` events saying their place); past its bound,
`reserve` raises `PoolBusy`. A zygote that dies is replaced, and one that has served
`zygote_max_jobs` sandboxes or `zygote_max_age_s` seconds is replaced while it keeps serving.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import os
import time
from collections.abc import AsyncGenerator, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from runner.config import RunnerSettings, get_settings
from runner.gpu import GpuDevice, GpuLoad, discover
from runner.metrics import RunnerMetrics
from runner.protocol import Done, Event, Queued, RunRequest, SandboxLimits
from runner.sandbox import seccomp, uids
from runner.sandbox.command import Identity, require_bubblewrap
from runner.sandbox.run_state import RunClock, internal_error
from runner.sandbox.sandbox import Sandbox, SandboxStartError
from runner.sandbox.zygote import Zygote
from runner.scheduling import FairQueue, Waiter

log = logging.getLogger("runner.pool")
SPAWN_FAILURES = 3  # in a row, before the lane's zygote is replaced
REFILL_DELAY_S = 0.1


class PoolBusy(Exception):
    """The queue is full; try again after `retry_after` seconds."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"all sandboxes are busy and the queue is full; retry in {retry_after}s")
        self.retry_after = retry_after


class CodeTooLarge(ValueError):
    """Learner code or checks over the size limit."""


@dataclass
class Ticket:
    """A place in the queue, taken before a response starts so a full queue can answer 503."""

    pool: WarmPool
    released: bool = False

    def release(self) -> None:
        if not self.released:
            self.released = True
            self.pool._waiting -= 1


@dataclass(eq=False)
class Lane:
    """One zygote's share of the pool: the CPU, or one GPU."""

    gpu: GpuDevice | None
    warm_target: int
    zygote: Zygote | None = None
    replacing: bool = False  # a fresh zygote is warming up
    ready: list[Sandbox] = field(default_factory=list)
    spawning: int = 0
    failures: int = 0


class WarmPool:
    """Keeps `size` sandboxes warm and runs jobs in them, fairly."""

    def __init__(
        self,
        settings: RunnerSettings | None = None,
        *,
        size: int | None = None,
        metrics: RunnerMetrics | None = None,
    ) -> None:
        self.settings = settings or get_settings()
        self.size = size or self.settings.pool_size
        self.metrics = metrics
        self.gpus: GpuLoad | None = None
        self.lanes: list[Lane] = []
        self.queue = FairQueue()
        self.active: collections.Counter[str] = collections.Counter()  # running, per owner
        self.uids: uids.UidBlock | None = None
        self.privileged = os.geteuid() == 0
        self._tasks: set[asyncio.Task[Any]] = set()
        self._zygotes: set[Zygote] = set()  # every zygote not yet closed, serving or retiring
        self._waiting = 0
        self._running = 0
        self._closing = False
        self.last_error: str | None = None
        self.threads = self.settings.threads_per_run or max(1, (os.cpu_count() or 1) // self.size)

    # -- lifecycle --

    async def start(self, *, wait: bool = True) -> WarmPool:
        """Start the zygotes; with `wait`, return once every sandbox is warm (or raise why not)."""
        require_bubblewrap(self.settings)
        seccomp.job_filter()  # fail now, not at the first run, if libseccomp is missing
        seccomp.zygote_filter()
        if self.privileged:
            self.uids = uids.lease(
                self.settings.uid_base, self.settings.uid_blocks, self.settings.state_dir
            )
        devices = discover(Path(self.settings.gpu_dev_root))
        self.gpus = GpuLoad(devices, self.settings.gpu_jobs_per_device) if devices else None
        if devices:  # slot k gets GPU k mod n: each GPU's zygote keeps its slots warm
            targets = [len(range(i, self.size, len(devices))) for i in range(len(devices))]
            self.lanes = [Lane(d, t) for d, t in zip(devices, targets, strict=True) if t]
        else:
            self.lanes = [Lane(None, self.size)]
        for lane in self.lanes:
            self._start_zygote(lane)
        if wait:
            await self.wait_warm()
        return self

    async def wait_warm(self, timeout: float | None = None) -> None:
        deadline = time.monotonic() + (timeout or self.settings.warmup_timeout_s * 2)
        while self.warm < self.size:
            if time.monotonic() > deadline:
                raise SandboxStartError(self.last_error or "sandboxes did not get warm in time")
            if self.last_error and self.warm == 0 and not self._starting():
                raise SandboxStartError(self.last_error)
            await asyncio.sleep(0.02)

    def _starting(self) -> bool:
        return any(lane.replacing or lane.spawning for lane in self.lanes)

    async def close(self) -> None:
        self._closing = True
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for zygote in list(self._zygotes):
            await zygote.close()
        self._zygotes.clear()
        for lane in self.lanes:
            lane.ready.clear()
        if self.uids is not None:
            self.uids.close()

    async def __aenter__(self) -> WarmPool:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def _task(self, coroutine: Coroutine[Any, Any, Any]) -> None:
        if self._closing:
            coroutine.close()
            return
        task = asyncio.create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- zygotes --

    def _start_zygote(self, lane: Lane) -> None:
        if not lane.replacing:
            lane.replacing = True
            self._task(self._bring_up(lane))

    async def _bring_up(self, lane: Lane) -> None:
        """Start a zygote for `lane` (retrying with a growing pause), then make it the one that
        serves; the one it replaces finishes what it holds and is closed."""
        delay = 0.5
        identity = self._identity()
        try:
            while not self._closing:
                zygote = Zygote(
                    self.settings, identity=identity, privileged=self.privileged, gpu=lane.gpu
                )
                self._zygotes.add(zygote)
                try:
                    await zygote.start()
                    break
                except (SandboxStartError, OSError) as exc:
                    self._zygotes.discard(zygote)
                    self.last_error = f"the sandbox zygote failed to start: {exc}"
                    log.error("%s (retrying in %.1fs)", self.last_error, delay)
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, 30)
            else:
                return
        finally:
            lane.replacing = False
        self.last_error = None
        old, lane.zygote, lane.failures = lane.zygote, zygote, 0
        if old is not None:
            # Its warm sandboxes go (fresh ones come from the new zygote), so it exits, and
            # frees its memory, as soon as its running jobs end.
            old.retiring = True
            for sandbox in [s for s in lane.ready if s.zygote is old]:
                lane.ready.remove(sandbox)
                self._discard(sandbox)
            self._close_if_idle(old)
        self._task(self._watch(lane, zygote))
        self._refill(lane)

    async def _watch(self, lane: Lane, zygote: Zygote) -> None:
        await zygote.dead.wait()
        if self._closing or zygote.retiring:
            return
        self.last_error = f"a sandbox zygote stopped ({zygote.failure}); starting another"
        log.error("%s", self.last_error)
        # Its warm sandboxes died with it; its running jobs end as `internal_error` (their
        # init is gone without a word) and are discarded by their runs.
        for sandbox in [s for s in lane.ready if s.zygote is zygote]:
            lane.ready.remove(sandbox)
            self._discard(sandbox)
        zygote.retiring = True
        if lane.zygote is zygote:
            lane.zygote = None
        self._close_if_idle(zygote)
        self._start_zygote(lane)

    def _close_if_idle(self, zygote: Zygote) -> None:
        if self._closing:
            return  # close() closes every zygote
        if zygote.retiring and not zygote.sandboxes and zygote in self._zygotes:
            self._zygotes.discard(zygote)
            self._task(zygote.close())

    def _identity(self) -> Identity:
        if self.uids is None:
            return Identity(os.getuid(), (os.getuid(),))
        first = self.uids.first
        return Identity(first, tuple(range(first + 1, first + self.uids.size)))

    # -- warm sandboxes --

    def _refill(self, lane: Lane) -> None:
        """Fork sandboxes until the lane has its share warm (or is forking them)."""
        zygote = lane.zygote
        if zygote is None or not zygote.alive or self._closing:
            return
        if zygote.worn_out():
            self._start_zygote(lane)  # the worn one keeps serving until its successor is warm
        while len(lane.ready) + lane.spawning < lane.warm_target:
            uid = self.uids.take() if self.uids is not None else None
            if self.uids is not None and uid is None:
                log.error("no sandbox uid left in this runner's block")
                return
            lane.spawning += 1
            self._task(self._spawn(lane, zygote, uid))

    async def _spawn(self, lane: Lane, zygote: Zygote, uid: int | None) -> None:
        try:
            # Nobody waiting: the sandbox will sit warm a while, so it pays its first touches
            # now. Runs waiting: it goes straight to work.
            touch = self.settings.touch_when_idle and not len(self.queue)
            sandbox = await zygote.spawn(uid=uid, threads=self.threads, touch=touch)
        except (SandboxStartError, OSError) as exc:
            self._give_uid(uid)
            lane.spawning -= 1
            lane.failures += 1
            self.last_error = f"a sandbox failed to start: {exc}"
            log.error("%s", self.last_error)
            if lane.failures >= SPAWN_FAILURES and lane.zygote is zygote:
                zygote.failure = f"{lane.failures} sandboxes in a row failed to start"
                zygote.retiring = True
                lane.zygote = None
                self._close_if_idle(zygote)
                self._start_zygote(lane)
            else:
                await asyncio.sleep(0.2 * lane.failures)
                self._refill(lane)
            return
        except BaseException:
            self._give_uid(uid)
            lane.spawning -= 1
            raise
        lane.spawning -= 1
        lane.failures = 0
        self.last_error = None
        if self._closing or not zygote.alive or zygote.retiring:
            self._discard(sandbox)  # (a replaced zygote's sandbox: fresh ones come from the new)
            return
        lane.ready.append(sandbox)
        self._dispatch()

    def _discard(self, sandbox: Sandbox) -> None:
        """Destroy a sandbox off the run's path; its uid is free once everything in it is gone."""

        async def discard() -> None:
            try:
                await sandbox.zygote.discard(sandbox)
            finally:
                self._give_uid(sandbox.uid)
                self._close_if_idle(sandbox.zygote)
                for lane in self.lanes:
                    self._refill(lane)

        if self._closing:
            return  # close() destroys everything
        self._task(discard())

    def _give_uid(self, uid: int | None) -> None:
        if uid is not None and self.uids is not None:
            self.uids.give(uid)

    # -- the queue --

    def _may_start(self, owner: str) -> bool:
        return self.active[owner] < self.settings.owner_max_active

    def _free_sandbox(self) -> tuple[Lane, Sandbox] | None:
        """The oldest warm sandbox whose GPU has room (on a CPU host: the oldest)."""
        for lane in self.lanes:
            if lane.ready and (
                self.gpus is None or lane.gpu is None or self.gpus.has_room(lane.gpu)
            ):
                return lane, lane.ready[0]
        return None

    def _dispatch(self) -> None:
        """Hand warm sandboxes to waiting runs, fairly, then tell the rest their place."""
        while self._running < self.size:
            free = self._free_sandbox()
            if free is None:
                break
            waiter = self.queue.pop(self._may_start)
            if waiter is None:
                break
            lane, sandbox = free
            lane.ready.remove(sandbox)
            if self.gpus is not None and lane.gpu is not None:
                self.gpus.claim(lane.gpu)
            self._running += 1
            self.active[waiter.owner] += 1
            waiter.assign(sandbox, lane)
            if len(self.queue):
                self._refill(lane)  # runs are waiting: a fresh sandbox is wanted now
            else:
                # Fork the replacement a moment later, so it does not compete for the CPU
                # with the run just starting (a short run has ended by then; see _discard).
                asyncio.get_running_loop().call_later(REFILL_DELAY_S, self._refill, lane)
        # In line: the pool is full, or warm sandboxes are there but not for it (its GPU is
        # busy, its owner runs enough). One that waits only for a fork (milliseconds) is not.
        in_line = self._running >= self.size or self.warm > 0
        for place, waiter in enumerate(self.queue.order(self._may_start), start=1):
            waiter.move_to(place if in_line or not self._may_start(waiter.owner) else None)

    def _finish(self, waiter: Waiter) -> None:
        """A run's claim on its sandbox and its share of the pool end."""
        self._running -= 1
        self.active[waiter.owner] -= 1
        if self.active[waiter.owner] <= 0:
            del self.active[waiter.owner]
        lane: Lane = waiter.lane
        if self.gpus is not None and lane.gpu is not None:
            self.gpus.release(lane.gpu)
        self._dispatch()

    # -- state --

    @property
    def warm(self) -> int:
        return sum(len(lane.ready) for lane in self.lanes)

    @property
    def stats(self) -> dict[str, int]:
        return {"warm": self.warm, "busy": self._running, "queued": self._waiting}

    @property
    def zygotes(self) -> list[Zygote]:
        return [lane.zygote for lane in self.lanes if lane.zygote is not None]

    @property
    def device(self) -> str:
        """The `started.device` of a run here: "cpu", or "cuda:0 (<GPU name>)" (each run sees
        its one GPU as cuda:0; GPUs of different models are listed with " | ")."""
        return self.gpus.described if self.gpus else "cpu"

    def resolve_limits(self, requested: SandboxLimits | None) -> SandboxLimits:
        return (requested or self.settings.default_limits).capped(self.settings.max_limits)

    # -- runs --

    def check_size(self, request: RunRequest) -> None:
        limit = self.settings.max_code_kb * 1024
        for name, text in (("code", request.code), ("checks", request.checks or "")):
            if len(text.encode()) > limit:
                raise CodeTooLarge(
                    f"The {name} is {len(text.encode()) // 1024} KiB; the limit is "
                    f"{self.settings.max_code_kb} KiB. Shorten it and run again."
                )

    def reserve(self) -> Ticket:
        """Take a place in the queue now, or raise PoolBusy if it is full."""
        # Free slots serve at once; queue_size more may wait.
        if self._waiting >= self.settings.queue_size + self.size - self._running:
            busy_for = max(1, int(self.settings.default_limits.wall_s // 4))
            raise PoolBusy(retry_after=busy_for)
        self._waiting += 1
        return Ticket(self)

    async def run(
        self, request: RunRequest, *, ticket: Ticket | None = None
    ) -> AsyncGenerator[Event, None]:
        """Run one job; yields its events (`queued` while it waits), always ending with exactly
        one Done."""
        clock = RunClock(time.monotonic())
        self.check_size(request)
        ticket = ticket or self.reserve()
        limits = self.resolve_limits(request.limits)
        waiter = Waiter.for_owner(request.owner)
        started = False
        try:
            async for event in self._wait_in_line(waiter, clock):
                yield event
            if waiter.sandbox is None:
                return
            ticket.release()
            started = True
            async for event in self._execute(waiter, request, limits, clock):
                yield event
        finally:
            ticket.release()
            if waiter.sandbox is None:
                self.queue.remove(waiter)
                self._dispatch()
            elif not started:
                # Handed a sandbox as it was cancelled: still pristine, so it goes back warm.
                waiter.lane.ready.insert(0, waiter.sandbox)
                self._finish(waiter)

    async def _wait_in_line(self, waiter: Waiter, clock: RunClock) -> AsyncGenerator[Event, None]:
        """Queued events while the run waits; ends once it has a sandbox (or with a Done)."""
        queued_at = time.monotonic()
        deadline = queued_at + self.settings.queue_timeout_s
        self.queue.add(waiter)
        self._dispatch()
        shown: int | None = None
        while waiter.sandbox is None:
            if waiter.position is not None and waiter.position != shown:
                shown = waiter.position
                yield Queued(**clock.stamp(), position=shown)
                continue
            waiter.changed.clear()
            try:
                # Never across a yield: a timeout must fire here, not in the caller's code.
                async with asyncio.timeout(max(0.0, deadline - time.monotonic())):
                    await waiter.changed.wait()
            except TimeoutError:
                reason = self.last_error or "no sandbox became free in time"
                yield internal_error(
                    clock, f"The runner could not start your code: {reason}. Try again in a minute."
                )
                return
        if self.metrics:
            self.metrics.queue_wait.observe(time.monotonic() - queued_at)

    async def _execute(
        self, waiter: Waiter, request: RunRequest, limits: SandboxLimits, clock: RunClock
    ) -> AsyncGenerator[Event, None]:
        sandbox: Sandbox = waiter.sandbox
        status = "internal_error"  # until its `done` says otherwise
        try:
            # Only its own GPU's node is in the sandbox, so CUDA numbers it 0 there.
            gpu = sandbox.gpu
            async for event in sandbox.execute(
                request,
                limits,
                clock=clock,
                device=gpu.described if gpu else "cpu",
                gpu_index=0 if gpu else None,
            ):
                if isinstance(event, Done):
                    status = event.status
                yield event
        except Exception:
            log.exception("run failed inside the runner")
            yield internal_error(
                clock,
                "The runner failed while running your code. Your code is safe; run it again.",
            )
        except (asyncio.CancelledError, GeneratorExit):
            if status == "internal_error":  # no `done` yet: the caller stopped the run
                status = "cancelled"
            raise
        finally:
            if self.metrics:
                self.metrics.runs.labels(status=status).inc()
                self.metrics.run_duration.observe(time.monotonic() - clock.start)
            self._finish(waiter)
            self._discard(sandbox)
