"""A warm pool of single-use sandboxes.

N sandboxes (default: the CPU count) wait with torch already imported, so a run starts in
milliseconds instead of the seconds a fresh ``import torch`` takes. Each one runs one job and is
destroyed; its slot starts a fresh one in the background once the job is over (not before, so a
warm-up never competes with a learner's training for the CPU). Runs beyond the pool wait in a
bounded first-come-first-served queue; past its bound, `reserve` raises `PoolBusy`.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass
from pathlib import Path

from runner.config import RunnerSettings, get_settings
from runner.gpu import GpuLoad, discover
from runner.metrics import RunnerMetrics
from runner.protocol import Done, ErrorInfo, Event, RunRequest, SandboxLimits
from runner.sandbox import RunClock, Sandbox, SandboxStartError, require_bubblewrap, seccomp_program

log = logging.getLogger("runner.pool")


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


class ReadySandboxes:
    """Warm sandboxes waiting for a job, oldest first. A job takes the oldest one that `fits`
    (on a GPU host: whose GPU has room), so a full GPU never holds up a run another could take.
    """

    def __init__(self) -> None:
        self._sandboxes: list[Sandbox] = []
        self._changed = asyncio.Condition()

    def qsize(self) -> int:
        return len(self._sandboxes)

    async def put(self, sandbox: Sandbox) -> None:
        async with self._changed:
            self._sandboxes.append(sandbox)
            self._changed.notify_all()

    async def notify(self) -> None:
        """Something `fits` looks at has changed (a GPU was freed)."""
        async with self._changed:
            self._changed.notify_all()

    async def take(
        self, fits: Callable[[Sandbox], bool], claim: Callable[[Sandbox], None]
    ) -> Sandbox:
        """Wait for a sandbox that fits; `claim` runs under the same lock, before anyone else
        can look (so two runs never both see room on one GPU)."""
        async with self._changed:
            while True:
                for sandbox in self._sandboxes:
                    if fits(sandbox):
                        self._sandboxes.remove(sandbox)
                        claim(sandbox)
                        return sandbox
                await self._changed.wait()


class WarmPool:
    """Keeps `size` sandboxes warm and runs jobs in them, first come first served."""

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
        self._ready = ReadySandboxes()
        self._tasks: set[asyncio.Task[None]] = set()
        self._live: set[Sandbox] = set()
        self._generation = 0
        self._waiting = 0
        self._busy = 0
        self._closing = False
        self.last_error: str | None = None
        self.threads = self.settings.threads_per_run or max(1, (os.cpu_count() or 1) // self.size)

    # -- lifecycle --

    async def start(self, *, wait: bool = True) -> WarmPool:
        """Start the sandboxes; with `wait`, return once all are warm (or raise why not)."""
        require_bubblewrap(self.settings)
        seccomp_program()  # fail now, not at the first run, if libseccomp is missing
        devices = discover(Path(self.settings.gpu_dev_root))
        self.gpus = GpuLoad(devices, self.settings.gpu_jobs_per_device) if devices else None
        for slot in range(self.size):
            self._refill(slot)
        if wait:
            await self.wait_warm()
        return self

    async def wait_warm(self, timeout: float | None = None) -> None:
        deadline = time.monotonic() + (timeout or self.settings.warmup_timeout_s * 2)
        while self._ready.qsize() < self.size:
            if time.monotonic() > deadline:
                raise SandboxStartError(self.last_error or "sandboxes did not get warm in time")
            if self.last_error and self._ready.qsize() == 0 and not self._starting():
                raise SandboxStartError(self.last_error)
            await asyncio.sleep(0.05)

    def _starting(self) -> bool:
        return any(not task.done() for task in self._tasks)

    async def close(self) -> None:
        self._closing = True
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for sandbox in list(self._live):
            await sandbox.destroy()
        self._live.clear()

    async def __aenter__(self) -> WarmPool:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def _refill(self, slot: int) -> None:
        if self._closing:
            return
        task = asyncio.create_task(self._warm(slot))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _warm(self, slot: int) -> None:
        delay = 0.5
        while not self._closing:
            self._generation += 1
            sandbox = Sandbox(
                slot,
                self.settings,
                generation=self._generation,
                gpu=self.gpus.for_slot(slot) if self.gpus else None,
                threads=self.threads,
            )
            try:
                await sandbox.start()
            except Exception as exc:
                self.last_error = f"a sandbox failed to start: {exc}"
                log.error("%s (retrying in %.1fs)", self.last_error, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30)
                continue
            self.last_error = None
            self._live.add(sandbox)
            await self._ready.put(sandbox)
            return

    # -- state --

    @property
    def stats(self) -> dict[str, int]:
        return {"warm": self._ready.qsize(), "busy": self._busy, "queued": self._waiting}

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
        # Free slots (warm, or warming up again) serve at once; queue_size more may wait.
        if self._waiting >= self.settings.queue_size + self.size - self._busy:
            busy_for = max(1, int(self.settings.default_limits.wall_s // 4))
            raise PoolBusy(retry_after=busy_for)
        self._waiting += 1
        return Ticket(self)

    async def run(
        self, request: RunRequest, *, ticket: Ticket | None = None
    ) -> AsyncGenerator[Event, None]:
        """Run one job; yields its events, always ending with exactly one Done."""
        clock = RunClock(time.monotonic())
        self.check_size(request)
        ticket = ticket or self.reserve()
        limits = self.resolve_limits(request.limits)
        queued_at = time.monotonic()
        try:
            # asyncio.timeout, not wait_for: Python 3.11's wait_for runs the wait as its own task,
            # and a cancel arriving as a sandbox is handed over is swallowed (the run goes on)
            # or loses that sandbox. Awaited inline, either the take happened or it did not.
            async with asyncio.timeout(self.settings.queue_timeout_s):
                sandbox = await self._ready.take(self._gpu_has_room, self._claim_gpu)
        except TimeoutError:
            reason = self.last_error or "no sandbox became free in time"
            yield _internal_error(
                clock, f"The runner could not start your code: {reason}. Try again in a minute."
            )
            return
        finally:
            ticket.release()
        if self.metrics:
            self.metrics.queue_wait.observe(time.monotonic() - queued_at)
        self._busy += 1
        status = "internal_error"
        try:
            # Only its own GPU's node is in the sandbox, so CUDA numbers it 0 there.
            gpu = sandbox.gpu
            async for event in sandbox.execute(
                request,
                limits,
                clock=clock,
                device=gpu.described if gpu else None,
                gpu_index=0 if gpu else None,
            ):
                if isinstance(event, Done):
                    status = event.status
                yield event
        except Exception as exc:
            log.exception("run failed inside the runner")
            yield _internal_error(
                clock,
                f"The runner failed while running your code ({type(exc).__name__}). "
                "Your code is safe; run it again.",
            )
        except (asyncio.CancelledError, GeneratorExit):
            status = "cancelled"
            raise
        finally:
            self._busy -= 1
            if self.gpus and sandbox.gpu:
                self.gpus.release(sandbox.gpu)
                await self._ready.notify()
            if self.metrics:
                self.metrics.runs.labels(status=status).inc()
                self.metrics.run_duration.observe(time.monotonic() - clock.start)
            self._retire(sandbox)

    def _gpu_has_room(self, sandbox: Sandbox) -> bool:
        return self.gpus is None or sandbox.gpu is None or self.gpus.has_room(sandbox.gpu)

    def _claim_gpu(self, sandbox: Sandbox) -> None:
        if self.gpus and sandbox.gpu:
            self.gpus.claim(sandbox.gpu)

    def _retire(self, sandbox: Sandbox) -> None:
        """Destroy a used sandbox, then warm a fresh one in its slot, off the run's path."""

        async def retire() -> None:
            try:
                await sandbox.destroy()
            finally:
                self._live.discard(sandbox)
                self._refill(sandbox.slot)

        task = asyncio.create_task(retire())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


def _internal_error(clock: RunClock, message: str) -> Done:
    return Done(
        **clock.stamp(),
        status="internal_error",
        duration_ms=round((time.monotonic() - clock.start) * 1000, 3),
        error=ErrorInfo(type="RunnerError", message=message),
    )
