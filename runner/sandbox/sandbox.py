"""One sandbox, as the supervisor sees it: made warm by a zygote, used for exactly one job.

`enter` is the hand-shake while the zygote's child builds the sandbox (confine.py has the
steps): the child says hello from its new namespaces, and the runner reads its host pid from
the kernel, puts it in the job's cgroup and, as root, maps its uids; its init then says where
it is (the pid the runner kills to end everything in the sandbox); the job process says it is
ready once it has no privileges left and its seccomp filter is loaded. `execute` writes the
job, turns what comes back into protocol events, and enforces the wall, output and files
limits from outside. Afterwards the sandbox is killed with everything in it and never reused.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import json
import logging
import os
import signal
import time
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from runner.config import RunnerSettings
from runner.gpu import GpuDevice
from runner.protocol import Event, LimitsInfo, RunRequest, SandboxLimits, Started
from runner.sandbox.cgroups import Cgroup
from runner.sandbox.pipes import (
    ControlSocket,
    Queue,
    pipe_reader,
    pump_messages,
    pump_output,
    write_all,
)
from runner.sandbox.run_state import MESSAGE_CAPS, RunClock, RunState

if TYPE_CHECKING:
    from runner.sandbox.zygote import Zygote

log = logging.getLogger("runner.sandbox")
TMPFS_POLL_S = 0.1  # how often the supervisor looks at how full the sandbox's tmpfs is
DRAIN_S = 1.0  # after the job's exit, how long its last output may take to arrive
LOST = (
    "The sandbox running your code stopped unexpectedly (the runner is replacing it). Your code "
    "is safe; run it again."
)


class SandboxStartError(RuntimeError):
    """A sandbox or zygote failed to get ready (the message says which step, and why)."""


class Sandbox:
    """One warm sandbox: its pipes, its control socket and its init's pid."""

    def __init__(
        self,
        zygote: Zygote,
        *,
        uid: int | None,
        cgroup: Cgroup | None,
        threads: int,
        ctl: ControlSocket,
        job_fd: int,
    ) -> None:
        self.zygote, self.uid, self.cgroup, self.threads = zygote, uid, cgroup, threads
        self.settings: RunnerSettings = zygote.settings
        self.gpu: GpuDevice | None = zygote.gpu
        self.ctl, self.job_fd = ctl, job_fd
        self.readers: dict[str, asyncio.StreamReader] = {}
        self._transports: list[asyncio.BaseTransport] = []
        self.child_pid: int | None = None  # the zygote's child, until it has forked init
        self.init_pid: int | None = None
        self._pidfd: int | None = None
        self.used = False
        self.oom_killed = False
        self.exit_code: int | None = None

    # -- becoming warm --

    async def attach(self, out_fd: int, err_fd: int, messages_fd: int) -> None:
        for name, fd in (("stdout", out_fd), ("stderr", err_fd), ("messages", messages_fd)):
            reader, transport = await pipe_reader(fd)
            self.readers[name] = reader
            self._transports.append(transport)

    async def enter(self, mapping: str | None) -> None:
        """Follow the child through its steps until the job process is ready (or raise)."""
        _, pid = await self._expect("hello")
        self.child_pid = pid
        if pid is None:
            raise SandboxStartError("the sandbox's child sent no credentials")
        if self.cgroup is not None:
            self.cgroup.add(pid)
        if mapping is not None:  # as root: the job's uid, the zygote's, nothing else
            for name in ("uid_map", "gid_map"):
                with open(f"/proc/{pid}/{name}", "w") as handle:
                    handle.write(mapping)
        await self.ctl.send({"step": "go", "mapped": mapping is not None})
        _, self.init_pid = await self._expect("init")
        if self.init_pid is None:
            raise SandboxStartError("the sandbox's init sent no credentials")
        self._pidfd = os.pidfd_open(self.init_pid)
        await self._expect("ready")

    async def _expect(self, step: str) -> tuple[dict[str, Any], int | None]:
        message, pid = await self.ctl.recv()
        if message is None:
            raise SandboxStartError(f"the sandbox ended before its {step!r} step")
        if message.get("step") == "error":
            raise SandboxStartError(str(message.get("message", "unknown error"))[:2000])
        if message.get("step") != step:
            raise SandboxStartError(f"expected {step!r} from the sandbox, got {message!r}"[:500])
        return message, pid

    # -- one job --

    async def execute(
        self,
        request: RunRequest,
        limits: SandboxLimits,
        *,
        clock: RunClock,
        device: str,
        gpu_index: int | None = None,
    ) -> AsyncIterator[Event]:
        """Run the job; yields protocol events, always ending with exactly one Done."""
        if self.used:
            raise RuntimeError("a sandbox runs one job only")
        self.used = True
        run = RunState(limits)
        yield Started(
            **clock.stamp(),
            device=device,
            torch=self.zygote.torch_version,
            limits=LimitsInfo(
                wall_s=limits.wall_s, memory_mb=limits.memory_mb, output_kb=limits.output_kb
            ),
        )
        if self.cgroup is not None:
            self.cgroup.set_limits(limits.memory_mb * 1024 * 1024, limits.processes, self.threads)
        queue: Queue = asyncio.Queue()
        tasks = self._watch(queue, limits)
        spoke = False  # ended on the harness's result, not on a limit, a loss or an error
        try:
            job = self._job(request, limits, run.token, gpu_index)
            deadline = time.monotonic() + limits.wall_s  # the queue wait does not count
            try:
                async with asyncio.timeout(limits.wall_s):
                    await write_all(self.job_fd, json.dumps(job).encode())
            except (BrokenPipeError, ConnectionResetError):
                run.internal = "The sandbox closed before it got your code. Run it again."
            except TimeoutError:
                run.ended_by = "timeout"
            self.job_fd = -1
            async for event in self._events(run, queue, clock, deadline):
                yield event
            spoke = run.result is not None and run.ended_by is None and run.internal is None
        except asyncio.CancelledError:
            run.ended_by = "cancelled"
            raise
        finally:
            for task in tasks:
                task.cancel()
            if not spoke:
                await self.kill()
        if spoke:
            # The harness's result is final: the learner hears `done` now, and the sandbox is
            # torn down after, off the run's time.
            try:
                yield run.done(clock, None, oom=False)
            finally:
                await self.kill()
            return
        yield run.done(clock, self.exit_code, oom=self.oom_killed)

    def _job(
        self, request: RunRequest, limits: SandboxLimits, token: str, gpu_index: int | None
    ) -> dict[str, Any]:
        return {
            "code": request.code,
            "mode": request.mode,
            "checks": request.checks,
            "summary": request.summary.model_dump() if request.summary else None,
            "limits": {
                **limits.model_dump(),
                "cpu_s": int(limits.wall_s * max(1, os.cpu_count() or 1) + 120),
                "address_space": self.cgroup is None and gpu_index is None,
            },
            "caps": MESSAGE_CAPS,
            "threads": self.threads,
            "gpu": gpu_index,
            "token": token,
        }

    def _watch(self, queue: Queue, limits: SandboxLimits) -> list[asyncio.Task[None]]:
        tasks = [
            asyncio.create_task(pump_output("stdout", self.readers["stdout"], queue)),
            asyncio.create_task(pump_output("stderr", self.readers["stderr"], queue)),
            asyncio.create_task(pump_messages(self.readers["messages"], queue)),
            asyncio.create_task(self._watch_exit(queue)),
        ]
        # Always: /tmp and /dev/shm are each the mounts' size, and the limit is for both together.
        tasks.append(asyncio.create_task(self._watch_tmpfs(limits.tmpfs_mb << 20, queue)))
        return tasks

    async def _events(
        self, run: RunState, queue: Queue, clock: RunClock, deadline: float
    ) -> AsyncIterator[Event]:
        """Events until the run ends: the harness's result, a limit, the job's exit (and then
        its last output), or the sandbox lost."""
        open_readers, exited = 3, False
        while run.internal is None and run.ended_by is None:
            if exited and open_readers == 0:
                return
            now = time.monotonic()
            wait = min(deadline - now, DRAIN_S) if exited else deadline - now
            try:
                # Not wait_for: on Python 3.11 it can swallow a cancel (the learner's Stop)
                # that arrives as an event does, and the run would go on to its end.
                async with asyncio.timeout(max(wait, 0)):
                    kind, payload = await queue.get()
            except TimeoutError:
                if not exited:
                    run.ended_by = "timeout"
                return
            if kind == "eof":
                open_readers -= 1
            elif kind == "exit":
                exited, self.exit_code = True, payload
            elif kind == "lost":
                self._lost(run)
            else:
                for event in run.accept(kind, payload, clock):
                    yield event
                if run.result is not None:
                    # The harness's last word. What it printed before is already in the pipes
                    # (it flushes first): read that, then end the run now.
                    for _ in range(3):
                        await asyncio.sleep(0)
                    while not queue.empty():
                        kind, payload = queue.get_nowait()
                        if kind in ("output", "message", "bad", "tmpfs"):
                            for event in run.accept(kind, payload, clock):
                                yield event
                    return

    def _lost(self, run: RunState) -> None:
        """The sandbox's init is gone without a word: the kernel's OOM killer, or its zygote
        died. Never the learner's doing (init ignores every signal from inside)."""
        if self.cgroup is not None and self.cgroup.oom_killed():
            self.oom_killed = True
            self.exit_code = 128 + signal.SIGKILL
            return
        log.error("a sandbox's init ended without reporting (zygote %s)", self.zygote.name)
        run.internal = LOST

    async def _watch_exit(self, queue: Queue) -> None:
        message, _ = await self.ctl.recv()
        if message is not None and message.get("step") == "exit":
            await queue.put(("exit", int(message.get("code", 1))))
        else:
            await queue.put(("lost", None))

    async def _watch_tmpfs(self, limit: int, queue: Queue) -> None:
        """Past `limit` bytes in the sandbox's tmpfs mounts (/tmp and /dev/shm together), put
        ("tmpfs", bytes used). The mounts are sized when the sandbox starts warm, before its
        job's limit is known; this holds each job to its own. statvfs through the init's
        /proc/PID/root reads the mount's counters and opens nothing the sandbox could plant."""
        root = f"/proc/{self.init_pid}/root"
        while True:
            used = 0
            try:
                for mount in ("/tmp", "/dev/shm"):
                    stat = os.statvfs(root + mount)  # tmpfs counters: no I/O, no blocking
                    used += (stat.f_blocks - stat.f_bfree) * stat.f_frsize
            except OSError as exc:
                # Gone (the run is ending), or a host that hides other users' /proc/PID/root
                # (root without CAP_SYS_PTRACE): then only the mount's own size holds.
                gone = exc.errno in (errno.ENOENT, errno.ESRCH)
                log.log(logging.DEBUG if gone else logging.WARNING, "no tmpfs watch: %s", exc)
                return
            if used > limit:
                await queue.put(("tmpfs", used))
                return
            await asyncio.sleep(TMPFS_POLL_S)

    # -- teardown --

    async def kill(self) -> None:
        """Kill the sandbox's init, and so everything in its pid namespace, and wait until all
        of it is gone (the pidfd turns readable only once the namespace is empty)."""
        if self.cgroup is not None and not self.oom_killed:
            self.oom_killed = self.cgroup.oom_killed()
        if self._pidfd is not None:
            pidfd, self._pidfd = self._pidfd, None  # once, even when two callers kill at once
            with contextlib.suppress(ProcessLookupError, OSError):
                signal.pidfd_send_signal(pidfd, signal.SIGKILL)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(10):
                    await _readable(pidfd)
            os.close(pidfd)
        elif self.child_pid is not None:
            # Still being built: the child has not forked init yet (or init said nothing).
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(self.child_pid, signal.SIGKILL)
        self.child_pid = None

    async def destroy(self) -> None:
        """Kill it, close every descriptor, release its cgroup. Safe to call more than once."""
        await self.kill()
        if self.job_fd >= 0:
            with contextlib.suppress(OSError):
                os.close(self.job_fd)
            self.job_fd = -1
        self.ctl.close()
        for transport in self._transports:
            transport.close()
        self._transports.clear()
        if self.cgroup is not None:
            cgroup, self.cgroup = self.cgroup, None
            await asyncio.to_thread(cgroup.release)


async def _readable(fd: int) -> None:
    loop = asyncio.get_running_loop()
    future: asyncio.Future[None] = loop.create_future()

    def wake() -> None:
        if not future.done():
            future.set_result(None)

    loop.add_reader(fd, wake)
    try:
        await future
    finally:
        loop.remove_reader(fd)
