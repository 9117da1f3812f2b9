"""The zygote, as the supervisor sees it: one long-lived process in its own bubblewrap sandbox
that has imported torch and friends, and forks a fresh single-use sandbox for each job.

The runner starts one per pool (one per GPU on a GPU host), waits for its `ready`, then asks
it for sandboxes (`spawn`): each request carries the new sandbox's pipes and its own control
socket, so the job itself never passes through the zygote. A zygote that dies ends every run
it held (their sandboxes live inside its pid namespace) with `internal_error`; the pool starts
another. What is shared between jobs and what is fresh for each, and why that is safe, is in
docs/runner-protocol.md ("The zygote").
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import os
import signal
import time

from runner.config import RunnerSettings
from runner.gpu import GpuDevice
from runner.sandbox import seccomp
from runner.sandbox.cgroups import Cgroup
from runner.sandbox.command import (
    Identity,
    ZygoteFds,
    readonly_trees,
    require_bubblewrap,
    zygote_command,
)
from runner.sandbox.pipes import ControlSocket
from runner.sandbox.sandbox import Sandbox, SandboxStartError

log = logging.getLogger("runner.sandbox")
_ids = itertools.count(1)


def _memfd(name: str, data: bytes) -> int:
    fd = os.memfd_create(name, 0)
    os.write(fd, data)
    os.lseek(fd, 0, os.SEEK_SET)
    return fd


class Zygote:
    """One zygote process and the sandboxes it has made that are still alive."""

    def __init__(
        self,
        settings: RunnerSettings,
        *,
        identity: Identity,
        privileged: bool,
        gpu: GpuDevice | None = None,
    ) -> None:
        self.settings, self.identity, self.privileged, self.gpu = (
            settings,
            identity,
            privileged,
            gpu,
        )
        self.name = f"zygote{next(_ids)}" + (f"-gpu{gpu.minor}" if gpu else "")
        self.process: asyncio.subprocess.Process | None = None
        self.control: ControlSocket | None = None
        self.init_pid: int | None = None  # bubblewrap's pid 1 of the zygote's namespace
        self.torch_version = "?"
        self.threads = 0
        self.started_at = 0.0
        self.spawned = 0
        self.sandboxes: set[Sandbox] = set()
        self.retiring = False
        self.failure: str | None = None  # why it stopped, when it did
        self.dead = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._stderr: list[str] = []
        # Read-only trees (a virtualenv in a checkout under /tmp) that each job's fresh /tmp or
        # /dev/shm would hide: the job binds them again on top.
        self._under_scratch = [
            tree
            for tree in readonly_trees(settings.python)
            if tree.startswith(("/tmp/", "/dev/shm/"))
        ]

    # -- life --

    async def start(self) -> None:
        """Start the zygote and wait until it is warm (or raise SandboxStartError, with its
        output)."""
        control, theirs = ControlSocket.pair()
        info_r, info_w = os.pipe()
        files = self.identity.files()
        fds = ZygoteFds(
            control=theirs.fileno(),
            info=info_w,
            seccomp=_memfd("zygote-seccomp", seccomp.zygote_filter()),
            job_filter=_memfd("job-seccomp", seccomp.job_filter()),
            passwd=_memfd("passwd", files["passwd"]),
            group=_memfd("group", files["group"]),
            hosts=_memfd("hosts", files["hosts"]),
        )
        command = zygote_command(
            self.settings,
            bwrap=require_bubblewrap(self.settings),
            fds=fds,
            identity=self.identity,
            privileged=self.privileged,
            gpu=self.gpu,
        )
        try:
            self.process = await asyncio.create_subprocess_exec(
                *command,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                pass_fds=tuple(vars(fds).values()),
                env={"PATH": "/usr/bin:/bin"},  # nothing of the service's environment
                start_new_session=True,
            )
        finally:
            theirs.close()  # fds.control
            for fd in (fds.info, fds.seccomp, fds.job_filter, fds.passwd, fds.group, fds.hosts):
                os.close(fd)
        self.control = control
        self._tasks.append(asyncio.create_task(self._collect_output()))
        try:
            async with asyncio.timeout(self.settings.warmup_timeout_s):
                self.init_pid = await asyncio.to_thread(_read_child_pid, info_r)
                ready, _ = await control.recv()
        except TimeoutError:
            await self.close()
            raise SandboxStartError(
                f"the zygote was not warm in {self.settings.warmup_timeout_s:g} s: {self.output()}"
            ) from None
        if ready is None or ready.get("op") != "ready":
            await self.close()
            said = f"{ready.get('message')}; " if ready else ""
            raise SandboxStartError(f"the zygote failed to start: {said}{self.output()}")
        self.torch_version = str(ready.get("torch", "?"))
        self.threads = int(ready.get("threads", 0))  # must be 1: fork keeps only one
        self.started_at = time.monotonic()
        self._tasks.append(asyncio.create_task(self._watch()))
        log.info("%s warm (torch %s)", self.name, self.torch_version)

    async def _watch(self) -> None:
        """Read the zygote's word until it ends: a failed spawn, a fatal problem, or EOF."""
        assert self.control is not None
        while True:
            message, _ = await self.control.recv()
            if message is None:
                self.failure = self.failure or f"the zygote exited: {self.output()}"
                break
            if message.get("op") == "fatal":
                self.failure = str(message.get("message"))
                break
            if message.get("op") == "error":
                log.warning("%s could not fork a sandbox: %s", self.name, message.get("message"))
        if not self.retiring:
            log.error("%s stopped: %s", self.name, self.failure)
        self.dead.set()

    async def _collect_output(self) -> None:
        """The zygote's own output (it prints nothing once warm): kept for error messages."""
        assert self.process is not None and self.process.stderr is not None
        while line := await self.process.stderr.readline():
            self._stderr = [*self._stderr[-19:], line.decode(errors="replace").rstrip()]

    def output(self) -> str:
        return " | ".join(self._stderr[-8:])[-2000:] or "no output"

    @property
    def alive(self) -> bool:
        return self.control is not None and not self.dead.is_set()

    @property
    def age_s(self) -> float:
        return time.monotonic() - self.started_at

    def worn_out(self) -> bool:
        """Due for replacement: served its jobs, or lived its time (settings)."""
        return (
            self.spawned >= self.settings.zygote_max_jobs
            or self.age_s >= self.settings.zygote_max_age_s
        )

    async def close(self) -> None:
        """Kill the zygote and with it every sandbox it made (they live in its namespace)."""
        self.retiring = True
        for sandbox in list(self.sandboxes):
            await sandbox.destroy()
        if self.init_pid is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(self.init_pid, signal.SIGKILL)
        if self.process is not None and self.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.kill()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.process.wait(), 10)
        if self.control is not None:
            self.control.close()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self.dead.set()

    # -- sandboxes --

    async def spawn(self, *, uid: int | None, threads: int, touch: bool = False) -> Sandbox:
        """A fresh warm sandbox from this zygote, with `uid` as its job's uid when run as root;
        with `touch`, it runs the neutral warm-up once more before it says it is ready."""
        if not self.alive or self.control is None:
            raise SandboxStartError(f"{self.name} is not running: {self.failure}")
        self.spawned += 1
        cgroup = self._cgroup()
        ctl, theirs = ControlSocket.pair()
        job_r, job_w = os.pipe()
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        msg_r, msg_w = os.pipe()
        spec = {
            "op": "spawn",
            "id": self.spawned,
            "uid": uid,
            "tmpfs_bytes": self._tmpfs(),
            "touch": touch,
            "keep": self._under_scratch,
        }
        sandbox = Sandbox(self, uid=uid, cgroup=cgroup, threads=threads, ctl=ctl, job_fd=job_w)
        self.sandboxes.add(sandbox)
        try:
            await self.control.send(spec, [job_r, out_w, err_w, msg_w, theirs.fileno()])
        finally:
            for fd in (job_r, out_w, err_w, msg_w):
                os.close(fd)
            theirs.close()
        try:
            await sandbox.attach(out_r, err_r, msg_r)
            async with asyncio.timeout(self.settings.warmup_timeout_s):
                await sandbox.enter(self._mapping(uid))
        except BaseException as exc:
            await self.discard(sandbox)
            if isinstance(exc, TimeoutError):
                raise SandboxStartError(f"{self.name}: a sandbox was not ready in time") from exc
            if isinstance(exc, OSError):
                raise SandboxStartError(f"{self.name}: {exc}") from exc
            raise
        return sandbox

    async def discard(self, sandbox: Sandbox) -> None:
        """Destroy one of this zygote's sandboxes (used, failed, or no longer wanted)."""
        try:
            await sandbox.destroy()
        finally:
            self.sandboxes.discard(sandbox)

    def _cgroup(self) -> Cgroup | None:
        if not self.settings.cgroups:
            return None
        cgroup = Cgroup.create(f"{self.name}-{os.getpid()}-{self.spawned}")
        if cgroup is not None:
            limits = self.settings.max_limits
            cgroup.set_limits(limits.memory_mb * 1024 * 1024, limits.processes, 1)
        return cgroup

    def _tmpfs(self) -> int:
        return self.settings.tmpfs_mb * 1024 * 1024

    def _mapping(self, uid: int | None) -> str | None:
        """As root, the uid (and gid) map the runner writes for a sandbox: the zygote's uid (its
        init) and the job's, each to itself, nothing else. Unprivileged, the child maps its
        one uid itself."""
        if not self.privileged or uid is None:
            return None
        zygote = self.identity.zygote_uid
        return f"{zygote} {zygote} 1\n{uid} {uid} 1\n"


def _read_child_pid(fd: int) -> int | None:
    """bubblewrap's info pipe: one JSON object with the sandbox's pid 1, then EOF."""
    with os.fdopen(fd, "rb") as handle:
        data = handle.read()
    with contextlib.suppress(ValueError, KeyError, TypeError):
        return int(json.loads(data)["child-pid"])
    return None
