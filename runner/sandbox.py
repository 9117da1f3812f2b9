"""One bubblewrap sandbox per job (see shared design, "Sandbox rules").

A `Sandbox` is started warm: bubblewrap, then the harness, which imports torch and waits for
one job on its stdin. `Sandbox.execute` hands it the job and turns what comes back into
protocol events, enforcing the wall, output and memory limits from outside. Afterwards the
sandbox is destroyed with everything it started, daemons included, and never reused.

Isolation, layer by layer:
- namespaces: no network (only a loopback), a fresh /proc of its own pid namespace, own IPC and
  hostname; no user namespaces inside (``--disable-userns`` or seccomp);
- filesystem: an empty root with /usr, the Python install, the virtualenv and the harness bound
  read-only; a size-limited tmpfs at /tmp and /dev/shm is the only writable place; no /etc
  beyond a fake passwd; nothing from /home, /root, /var or the service's own folders;
- credentials: run as root, the runner drops each slot to its own unprivileged uid (uid_base +
  slot) with no capabilities and no_new_privs; run unprivileged, bubblewrap's user namespace
  keeps the service's uid and drops every capability;
- seccomp: the kernel surfaces namespaces do not cover (mount, bpf, keyctl, ptrace, io_uring …);
- limits: a cgroup for memory and processes where one is writable (rlimits otherwise), rlimits
  for CPU time and file size, the wall clock and output bytes counted here. On any limit the
  pid namespace's init is killed, which kills every process in it, setsid daemons included.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import hmac
import json
import logging
import os
import secrets
import shutil
import signal
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from runner.config import RunnerSettings
from runner.gpu import GpuDevice
from runner.protocol import (
    Done,
    ErrorInfo,
    Event,
    EventAdapter,
    LimitsInfo,
    Output,
    RunRequest,
    SandboxLimits,
    Started,
    TestCounts,
)

log = logging.getLogger("runner.sandbox")

HARNESS_DIR = Path(__file__).with_name("harness")
SANDBOX_HARNESS = "/opt/dojo/harness"
READ_CHUNK = 64 * 1024
MESSAGE_LIMIT = 32 * 1024 * 1024  # one harness message (a figure) at most
# What one run may send on the message pipe (the web app stores every event): past a cap, the
# rest of that kind is dropped and the learner reads one notice on stderr. The harness throttles
# chart points to ~20 a second per curve after the first 200, so honest code stays far below.
MESSAGE_CAPS = {"metric": 10_000, "test": 1_000, "figure": 20, "summary": 1}
MESSAGE_BYTES = 32 * 1024 * 1024  # all structured messages of one run together
TMPFS_POLL_S = 0.1  # how often the supervisor looks at how full the sandbox's tmpfs is


class SandboxUnavailable(RuntimeError):
    """The sandbox cannot run here; the message says what to install or change."""


class SandboxStartError(RuntimeError):
    """A sandbox failed to get ready (its stderr is in the message)."""


# --- preflight ---------------------------------------------------------------------------------


def require_bubblewrap(settings: RunnerSettings) -> str:
    """The bwrap path, or SandboxUnavailable saying how to get it. There is no unsandboxed mode."""
    path = shutil.which(settings.bwrap)
    if path is None:
        raise SandboxUnavailable(
            f"bubblewrap ({settings.bwrap!r}) is not installed, and the runner never runs code "
            "without its sandbox. Install it: `sudo apt-get install bubblewrap` (Debian/Ubuntu), "
            "`sudo dnf install bubblewrap` (Fedora), then start the runner again."
        )
    return path


# --- seccomp -----------------------------------------------------------------------------------

CLONE_NEWUSER = 0x10000000
TIOCSTI = 0x5412
# Kernel surfaces that namespaces do not cover. Denied with EPERM; the learner's code has no
# business with any of them.
DENIED_SYSCALLS = (
    "mount",
    "umount2",
    "pivot_root",
    "chroot",
    "unshare",
    "setns",
    "fsopen",
    "fsmount",
    "fsconfig",
    "fspick",
    "move_mount",
    "open_tree",
    "mount_setattr",
    "bpf",
    "perf_event_open",
    "userfaultfd",
    "keyctl",
    "add_key",
    "request_key",
    "ptrace",
    "process_vm_readv",
    "process_vm_writev",
    "kcmp",
    "pidfd_getfd",
    "io_uring_setup",
    "io_uring_enter",
    "io_uring_register",
    "kexec_load",
    "kexec_file_load",
    "init_module",
    "finit_module",
    "delete_module",
    "reboot",
    "swapon",
    "swapoff",
    "syslog",
    "acct",
    "quotactl",
    "quotactl_fd",
    "open_by_handle_at",
    "name_to_handle_at",
    "lookup_dcookie",
    "fanotify_init",
    "iopl",
    "ioperm",
    "settimeofday",
    "clock_settime",
    "clock_adjtime",
    "adjtimex",
    "vhangup",
    "uselib",
    "personality",
    "move_pages",
    "migrate_pages",
    "nfsservctl",
)


@lru_cache(maxsize=1)
def seccomp_program() -> bytes:
    """The BPF program bubblewrap loads before running the harness."""
    import tempfile

    import pyseccomp as seccomp  # ctypes over the system's libseccomp

    rules = seccomp.SyscallFilter(seccomp.ALLOW)
    for name in DENIED_SYSCALLS:
        with contextlib.suppress(Exception):  # not every syscall exists on every architecture
            rules.add_rule(seccomp.ERRNO(errno.EPERM), name)
    # No new user namespaces (the way out of most other restrictions) ...
    rules.add_rule(
        seccomp.ERRNO(errno.EPERM),
        "clone",
        seccomp.Arg(0, seccomp.MASKED_EQ, CLONE_NEWUSER, CLONE_NEWUSER),
    )
    # ... and clone3 passes its flags in memory a filter cannot read: ENOSYS makes libc fall back
    # to clone, which the rule above can check.
    rules.add_rule(seccomp.ERRNO(errno.ENOSYS), "clone3")
    # No pushing keystrokes into a terminal (belt and braces with --new-session).
    rules.add_rule(
        seccomp.ERRNO(errno.EPERM), "ioctl", seccomp.Arg(1, seccomp.MASKED_EQ, 0xFFFFFFFF, TIOCSTI)
    )
    with tempfile.TemporaryFile() as handle:
        rules.export_bpf(handle)
        handle.seek(0)
        return handle.read()


def _memfd(name: str, data: bytes) -> int:
    fd = os.memfd_create(name, 0)
    os.write(fd, data)
    os.lseek(fd, 0, os.SEEK_SET)
    return fd


# --- cgroups -----------------------------------------------------------------------------------


class Cgroup:
    """A cgroup (v1 memory+pids, or v2) for one sandbox, where this host lets us make one."""

    def __init__(self, dirs: dict[str, Path], version: int) -> None:
        self.dirs, self.version = dirs, version

    @classmethod
    def create(cls, name: str) -> Cgroup | None:
        try:
            return (
                cls._create_v2(name)
                if Path("/sys/fs/cgroup/cgroup.controllers").exists()
                else cls._create_v1(name)
            )
        except OSError as exc:
            log.debug("no cgroup for %s: %s", name, exc)
            return None

    @staticmethod
    def _own_path(controller: str) -> str:
        for line in Path("/proc/self/cgroup").read_text().splitlines():
            _, controllers, path = line.split(":", 2)
            if controller in controllers.split(",") or (controller == "" and controllers == ""):
                return path
        raise OSError(f"not in a {controller or 'v2'} cgroup")

    @classmethod
    def _create_v1(cls, name: str) -> Cgroup:
        dirs = {}
        for controller in ("memory", "pids", "cpu"):
            base = Path("/sys/fs/cgroup", controller) / cls._own_path(controller).lstrip("/")
            path = base / "torchdojo" / name
            path.mkdir(parents=True, exist_ok=True)
            dirs[controller] = path
        return cls(dirs, 1)

    @classmethod
    def _create_v2(cls, name: str) -> Cgroup:
        base = Path("/sys/fs/cgroup") / cls._own_path("").lstrip("/")
        parent = base / "torchdojo"
        parent.mkdir(exist_ok=True)
        (parent / "cgroup.subtree_control").write_text("+memory +pids +cpu")
        path = parent / name
        path.mkdir(exist_ok=True)
        return cls({"memory": path, "pids": path, "cpu": path}, 2)

    @property
    def procs_files(self) -> list[str]:
        return sorted({str(path / "cgroup.procs") for path in self.dirs.values()})

    def set_limits(self, memory_bytes: int, processes: int, cpus: float) -> None:
        """Memory (no swap), processes, and CPU time: a hostile run gets `cpus` cores at most,
        so it cannot starve the runs beside it."""
        period = 100_000
        quota = max(10_000, int(cpus * period))
        if self.version == 1:
            (self.dirs["cpu"] / "cpu.cfs_period_us").write_text(str(period))
            (self.dirs["cpu"] / "cpu.cfs_quota_us").write_text(str(quota))
            memory = self.dirs["memory"]
            (memory / "memory.limit_in_bytes").write_text(str(memory_bytes))
            swap = memory / "memory.memsw.limit_in_bytes"
            if swap.exists():  # no swapping past the limit
                with contextlib.suppress(OSError):
                    swap.write_text(str(memory_bytes))
            (self.dirs["pids"] / "pids.max").write_text(str(processes))
        else:
            path = self.dirs["memory"]
            (path / "memory.max").write_text(str(memory_bytes))
            with contextlib.suppress(OSError):
                (path / "memory.swap.max").write_text("0")
            (path / "pids.max").write_text(str(processes))
            (path / "cpu.max").write_text(f"{quota} {period}")

    def oom_killed(self) -> bool:
        try:
            if self.version == 1:
                text = (self.dirs["memory"] / "memory.oom_control").read_text()
            else:
                text = (self.dirs["memory"] / "memory.events").read_text()
        except OSError:
            return False
        for line in text.splitlines():
            key, _, value = line.partition(" ")
            if key == "oom_kill" and value.strip() not in ("", "0"):
                return True
        return False

    def kill_all(self) -> None:
        for path in set(self.dirs.values()):
            for _ in range(50):
                try:
                    pids = [int(p) for p in (path / "cgroup.procs").read_text().split()]
                except OSError:
                    break
                if not pids:
                    break
                for pid in pids:
                    with contextlib.suppress(ProcessLookupError, PermissionError):
                        os.kill(pid, signal.SIGKILL)
                time.sleep(0.005)

    def remove(self) -> None:
        for path in set(self.dirs.values()):
            for _ in range(100):
                try:
                    path.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:  # still emptying after the kill
                    time.sleep(0.01)


# --- the sandbox -------------------------------------------------------------------------------


@dataclass
class RunClock:
    """Numbers events and stamps them with seconds since the run started."""

    start: float
    seq: int = 0

    def stamp(self) -> dict[str, Any]:
        fields = {"seq": self.seq, "t": round(max(0.0, time.monotonic() - self.start), 6)}
        self.seq += 1
        return fields


def _readonly_trees(python: str) -> list[str]:
    """Folders the sandboxed Python needs, read-only: its install and its virtualenv."""
    import sysconfig

    exe = Path(python)
    prefixes = {str(Path(sys.prefix).resolve()), str(Path(sys.base_prefix).resolve())}
    if exe.resolve() != Path(sys.executable).resolve():  # another Python than ours: bind its tree
        prefixes.add(str(exe.resolve().parent.parent))
    prefixes.add(str(Path(sysconfig.get_paths()["purelib"]).resolve()))
    trees = sorted(p for p in prefixes if not p.startswith("/usr/"))
    # Drop nested paths: binding the outer tree covers them.
    return [t for t in trees if not any(t != o and t.startswith(o + "/") for o in trees)]


class Sandbox:
    """One warm sandbox, used for exactly one job."""

    def __init__(
        self,
        slot: int,
        settings: RunnerSettings,
        *,
        generation: int = 0,
        gpu: GpuDevice | None = None,
        threads: int = 1,
    ) -> None:
        self.slot, self.settings, self.gpu, self.threads = slot, settings, gpu, threads
        self.name = f"slot{slot}-{os.getpid()}-{generation}"
        self.process: asyncio.subprocess.Process | None = None
        self.cgroup: Cgroup | None = None
        self.init_pid: int | None = None
        self.device = "cpu"
        self.torch_version = "?"
        self._messages: asyncio.StreamReader | None = None
        self._used = False
        self.oom_killed = False
        self._privileged = os.geteuid() == 0

    # -- start --

    def _command(self, fds: dict[str, int]) -> list[str]:
        s = self.settings
        limits = s.max_limits
        args = [require_bubblewrap(s)]
        if self._privileged:
            # bwrap as root sets up the mounts; setpriv below drops to this slot's own uid and
            # clears every capability (it needs CAP_SETUID for that, so no --cap-drop here).
            args += [
                "--unshare-net",
                "--unshare-pid",
                "--unshare-ipc",
                "--unshare-uts",
                "--unshare-cgroup-try",
            ]
        else:
            args += ["--unshare-all", "--unshare-user", "--disable-userns", "--cap-drop", "ALL"]
        args += ["--die-with-parent", "--new-session", "--hostname", "dojo"]
        for name in ("bin", "lib", "lib64", "lib32", "sbin"):
            path = Path("/", name)
            if path.is_symlink():
                args += ["--symlink", os.readlink(path), f"/{name}"]
            elif path.is_dir():
                args += ["--ro-bind", str(path), f"/{name}"]
        args += ["--ro-bind", "/usr", "/usr"]
        if Path("/etc/ld.so.cache").exists():
            args += ["--ro-bind", "/etc/ld.so.cache", "/etc/ld.so.cache"]
        args += [
            "--ro-bind-data",
            str(fds["passwd"]),
            "/etc/passwd",
            "--ro-bind-data",
            str(fds["group"]),
            "/etc/group",
            "--ro-bind-data",
            str(fds["hosts"]),
            "/etc/hosts",
        ]
        args += [
            "--perms",
            "0755",
            "--dir",
            "/opt",
            "--perms",
            "0755",
            "--dir",
            "/opt/dojo",
            "--ro-bind",
            str(HARNESS_DIR),
            SANDBOX_HARNESS,
        ]
        args += ["--proc", "/proc", "--dev", "/dev"]
        if self.gpu is not None:
            args += self.gpu.bind_args()  # this slot's GPU node and the control nodes, no other
        tmpfs = str(s.tmpfs_mb * 1024 * 1024)
        args += [
            "--perms",
            "1777",
            "--size",
            tmpfs,
            "--tmpfs",
            "/tmp",
            "--perms",
            "1777",
            "--size",
            tmpfs,
            "--tmpfs",
            "/dev/shm",
        ]
        # After the tmpfs mounts: a virtualenv under /tmp (a checkout in /tmp, say) would
        # otherwise be hidden under the sandbox's own empty /tmp.
        for tree in _readonly_trees(s.python):
            for parent in reversed(Path(tree).parents[:-1]):
                args += ["--perms", "0755", "--dir", str(parent)]
            args += ["--ro-bind", tree, tree]
        args += ["--remount-ro", "/", "--chdir", "/tmp", "--clearenv"]
        env = {
            "PATH": "/usr/local/bin:/usr/bin:/bin",
            "HOME": "/tmp",
            "LANG": "C.UTF-8",
            "USER": "learner",
            "MPLBACKEND": "Agg",
            "MPLCONFIGDIR": "/tmp/.matplotlib",
            "PYTHONDONTWRITEBYTECODE": "1",
            "PYTHONUNBUFFERED": "1",
            "PYTHONNOUSERSITE": "1",
            # Checks run with pytest alone: no third-party plugin of the venv loads in here.
            "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1",
            "DOJO_EVENT_FD": str(fds["events"]),
            "OMP_NUM_THREADS": str(self.threads),
            "MKL_NUM_THREADS": str(self.threads),
            **(self.gpu.environment if self.gpu is not None else {}),
        }
        for key, value in env.items():
            args += ["--setenv", key, value]
        args += ["--seccomp", str(fds["seccomp"]), "--info-fd", str(fds["info"]), "--"]
        if self._privileged:
            uid = str(s.uid_base + self.slot)
            args += [
                "/usr/bin/setpriv",
                f"--reuid={uid}",
                f"--regid={uid}",
                "--clear-groups",
                "--no-new-privs",
                "--inh-caps=-all",
                "--bounding-set=-all",
            ]
        args += [s.python, "-u", "-B", "-s", f"{SANDBOX_HARNESS}/main.py"]

        # rlimits, set on the way in: CPU time and file size always; processes and address
        # space only where no cgroup does it better (RLIMIT_AS breaks CUDA).
        cpu = int(limits.wall_s * max(1, os.cpu_count() or 1) + 120)
        rlimits = [
            "prlimit",
            f"--cpu={cpu}",
            f"--fsize={limits.file_mb * 1024 * 1024}",
            "--core=0",
            "--nofile=1024",
        ]
        if self.cgroup is None:
            nproc = (
                limits.processes if self._privileged else limits.processes * (s.pool_size + 1) + 128
            )
            rlimits.append(f"--nproc={nproc}")
            if self.gpu is None:
                rlimits.append(f"--as={s.default_limits.memory_mb * 1024 * 1024 * 4}")
        command = [*rlimits, "--", *args]
        if self.cgroup is not None:
            procs = self.cgroup.procs_files
            # Join the cgroups first (as root), then exec the rest: nothing runs outside them.
            join = (
                'n=$1; shift; while [ "$n" -gt 0 ]; do echo $$ > "$1" || exit 125; shift; '
                'n=$((n-1)); done; exec "$@"'
            )
            command = ["/bin/sh", "-c", join, "sh", str(len(procs)), *procs, *command]
        return command

    def _identity_files(self) -> dict[str, bytes]:
        uid = self.settings.uid_base + self.slot if self._privileged else os.getuid()
        return {
            "passwd": (
                f"root:x:0:0::/:/sbin/nologin\nlearner:x:{uid}:{uid}::/tmp:/bin/sh\n"
            ).encode(),
            "group": f"root:x:0:\nlearner:x:{uid}:\n".encode(),
            "hosts": b"127.0.0.1 localhost dojo\n::1 localhost\n",
        }

    async def start(self) -> None:
        """Launch the sandbox and wait until the harness has torch imported."""
        if self.settings.cgroups:
            self.cgroup = Cgroup.create(self.name)
            if self.cgroup is not None:
                limits = self.settings.max_limits
                self.cgroup.set_limits(
                    limits.memory_mb * 1024 * 1024, limits.processes, self.threads
                )
        events_r, events_w = os.pipe()
        info_r, info_w = os.pipe()
        fds = {"events": events_w, "info": info_w, "seccomp": _memfd("seccomp", seccomp_program())}
        for name, data in self._identity_files().items():
            fds[name] = _memfd(name, data)
        command = self._command(fds)
        try:
            self.process = await asyncio.create_subprocess_exec(
                *command,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                pass_fds=tuple(fds.values()),
                env={"PATH": "/usr/bin:/bin"},  # nothing of the service's environment
                start_new_session=True,
                limit=READ_CHUNK,
            )
        finally:
            for fd in fds.values():
                os.close(fd)
        self._messages = await _pipe_reader(events_r)
        info = await _pipe_reader(info_r)
        try:
            await asyncio.wait_for(self._await_ready(info), self.settings.warmup_timeout_s)
        except BaseException as exc:
            stderr = await self._drain_stderr()
            await self.destroy()
            if isinstance(exc, asyncio.TimeoutError):
                raise SandboxStartError(
                    f"sandbox not ready in {self.settings.warmup_timeout_s}s: {stderr}"
                ) from exc
            if isinstance(exc, SandboxStartError):
                raise SandboxStartError(f"{exc}: {stderr}".strip(": ")) from exc
            raise

    async def _await_ready(self, info: asyncio.StreamReader) -> None:
        assert self._messages is not None
        data = await info.read()  # bubblewrap writes one JSON object and closes the pipe
        with contextlib.suppress(ValueError, KeyError):
            self.init_pid = int(json.loads(data)["child-pid"])
        line = b"\n"
        while line == b"\n":  # the harness starts each message on a fresh line
            line = await self._messages.readline()
        if not line:
            raise SandboxStartError("the sandbox exited while starting")
        message = json.loads(line)
        if message.get("type") != "ready":
            raise SandboxStartError(f"unexpected first message {message.get('type')!r}")
        self.torch_version = message.get("torch", "?")
        self.device = message.get("device", "cpu")

    async def _drain_stderr(self) -> str:
        if self.process is None or self.process.stderr is None:
            return ""
        with contextlib.suppress(Exception):
            data = await asyncio.wait_for(self.process.stderr.read(8192), 2)
            return data.decode(errors="replace").strip()
        return ""

    # -- one job --

    async def execute(
        self,
        request: RunRequest,
        limits: SandboxLimits,
        *,
        device: str | None = None,
        gpu_index: int | None = None,
        clock: RunClock | None = None,
    ) -> AsyncIterator[Event]:
        """Run the job; yields protocol events, always ending with exactly one Done."""
        assert self.process is not None and self._messages is not None, "start() first"
        if self._used:
            raise RuntimeError("a sandbox runs one job only")
        self._used = True
        clock = clock or RunClock(time.monotonic())
        run = _RunState(limits)
        yield Started(
            **clock.stamp(),
            device=device or self.device,
            torch=self.torch_version,
            limits=LimitsInfo(
                wall_s=limits.wall_s, memory_mb=limits.memory_mb, output_kb=limits.output_kb
            ),
        )
        if self.cgroup is not None:
            self.cgroup.set_limits(limits.memory_mb * 1024 * 1024, limits.processes, self.threads)
        job = {
            "code": request.code,
            "mode": request.mode,
            "checks": request.checks,
            "summary": request.summary.model_dump() if request.summary else None,
            "limits": {
                **limits.model_dump(),
                "address_space": self.cgroup is None and gpu_index is None,
            },
            "gpu": gpu_index,
            "token": run.token,
        }
        queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
        spoke = False  # the loop ended on the harness's result, not on a limit or an error
        readers = [
            asyncio.create_task(self._pump_output("stdout", self.process.stdout, queue)),
            asyncio.create_task(self._pump_output("stderr", self.process.stderr, queue)),
            asyncio.create_task(self._pump_messages(self._messages, queue)),
        ]
        # A job that may fill the whole mount needs no watching: the mount's size holds it.
        watchers = (
            [asyncio.create_task(self._watch_tmpfs(limits.tmpfs_mb * 1024 * 1024, queue))]
            if limits.tmpfs_mb < self.settings.tmpfs_mb
            else []
        )
        try:
            stdin = self.process.stdin
            assert stdin is not None
            try:
                stdin.write(json.dumps(job).encode())
                await stdin.drain()
                stdin.close()
            except (BrokenPipeError, ConnectionResetError):
                run.internal = "the sandbox closed before it got the job"
            deadline = time.monotonic() + limits.wall_s  # queue wait does not count
            open_readers = len(readers)
            while open_readers and run.internal is None:
                timeout = deadline - time.monotonic()
                if timeout <= 0:
                    run.ended_by = "timeout"
                    break
                try:
                    # Not wait_for: on Python 3.11 it can swallow a cancel (the learner's Stop)
                    # that arrives as an event does, and the run would go on to its end.
                    async with asyncio.timeout(timeout):
                        kind, payload = await queue.get()
                except TimeoutError:
                    run.ended_by = "timeout"
                    break
                if kind == "eof":
                    open_readers -= 1
                    continue
                for event in run.accept(kind, payload, clock):
                    yield event
                if run.ended_by:
                    break
                if run.result is not None:
                    # The harness's last word. What it printed before is already in the pipes
                    # (it flushes first): let the loop read that, then end the run now instead
                    # of waiting ~60 ms for torch and bubblewrap to exit.
                    for _ in range(3):
                        await asyncio.sleep(0)
                    while not queue.empty():
                        kind, payload = queue.get_nowait()
                        if kind != "eof":
                            for event in run.accept(kind, payload, clock):
                                yield event
                    spoke = run.ended_by is None and run.internal is None
                    break
        except asyncio.CancelledError:
            run.ended_by = "cancelled"
            raise
        finally:
            for task in (*readers, *watchers):
                task.cancel()
            if not spoke:
                # Without a result the code ended the process itself (os._exit, a signal): give
                # it a moment to finish exiting so its own exit status is the one reported.
                natural_end = run.result is None and run.ended_by is None and run.internal is None
                exit_code = await self.kill(grace_s=0.5 if natural_end else 0.0)
        if spoke:
            # The harness's result is final (its exit code included): the learner hears `done`
            # now, and the sandbox is torn down after (tens of ms to unmap torch), off the
            # run's time. Nothing of it can run on: the kill below, or the pool's destroy().
            try:
                yield run.done(clock, None, oom=False)
            finally:
                await self.kill()
            return
        yield run.done(clock, exit_code, oom=self.oom_killed)

    async def _pump_output(
        self,
        stream: str,
        reader: asyncio.StreamReader | None,
        queue: asyncio.Queue[tuple[str, Any]],
    ) -> None:
        assert reader is not None
        import codecs

        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        try:
            while chunk := await reader.read(READ_CHUNK):
                text = decoder.decode(chunk)
                if text:
                    await queue.put(("output", (stream, text, len(chunk))))
            tail = decoder.decode(b"", final=True)
            if tail:
                await queue.put(("output", (stream, tail, 0)))
        finally:
            await queue.put(("eof", stream))

    async def _pump_messages(
        self, reader: asyncio.StreamReader, queue: asyncio.Queue[tuple[str, Any]]
    ) -> None:
        """One ("message", line) per line of the pipe. The learner's code shares the harness's
        process and can write here too: a line too long to be a message is skipped (one ("bad",
        why)), and reading goes on, so the harness's own messages still get through."""
        buffer = bytearray()
        skipping = False
        try:
            while chunk := await reader.read(READ_CHUNK):
                start = 0
                while (end := chunk.find(b"\n", start)) != -1:
                    if not skipping:
                        buffer += chunk[start:end]
                        if buffer.strip():
                            await queue.put(("message", bytes(buffer)))
                    skipping = False
                    buffer.clear()
                    start = end + 1
                if not skipping:
                    buffer += chunk[start:]
                    if len(buffer) > MESSAGE_LIMIT:
                        buffer.clear()
                        skipping = True
                        await queue.put(("bad", "a message longer than the limit"))
        finally:
            await queue.put(("eof", "messages"))

    async def _watch_tmpfs(self, limit: int, queue: asyncio.Queue[tuple[str, Any]]) -> None:
        """Past `limit` bytes in the sandbox's tmpfs mounts (/tmp and /dev/shm together), put
        ("tmpfs", bytes used). The mounts are sized when the sandbox starts warm, before its
        job's limit is known; this holds each job to its own. statvfs through the init's
        /proc/PID/root reads the mount's counters and opens nothing the sandbox could plant."""
        if self.init_pid is None:
            return
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
                level = logging.DEBUG if gone else logging.WARNING
                log.log(level, "cannot watch the sandbox's tmpfs: %s", exc)
                return
            if used > limit:
                await queue.put(("tmpfs", used))
                return
            await asyncio.sleep(TMPFS_POLL_S)

    # -- teardown --

    async def kill(self, grace_s: float = 0.0) -> int | None:
        """Kill the sandbox and everything in it; returns its exit status if it had one.

        With `grace_s`, a sandbox that is already on its way out gets that long to exit by itself,
        so its own exit status is the one reported.
        """
        process = self.process
        if process is None:
            return None
        if grace_s and process.returncode is None:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(asyncio.shield(process.wait()), grace_s)
        exit_code = process.returncode
        if self.cgroup is not None:
            self.oom_killed = self.cgroup.oom_killed()
        if self.init_pid is not None:
            # The pid namespace's init: when it dies, the kernel kills every process in the
            # namespace, including any that called setsid() to get away.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(self.init_pid, signal.SIGKILL)
        if process.returncode is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signal.SIGKILL)
            with contextlib.suppress(ProcessLookupError):
                process.kill()
        with contextlib.suppress(Exception):
            exit_code = await asyncio.wait_for(process.wait(), 10)
        if process.stdin is not None:
            with contextlib.suppress(Exception):
                process.stdin.close()
        return exit_code

    async def destroy(self) -> None:
        """Kill the sandbox and release its cgroup. Safe to call more than once."""
        await self.kill()
        if self.cgroup is not None:
            cgroup, self.cgroup = self.cgroup, None
            await asyncio.to_thread(self._release_cgroup, cgroup)

    @staticmethod
    def _release_cgroup(cgroup: Cgroup) -> None:
        cgroup.kill_all()
        cgroup.remove()


class _HarnessResult(BaseModel):
    """The harness's last message: how the learner's code ended and what the checks counted."""

    model_config = ConfigDict(extra="ignore")

    token: str
    status: Literal["completed", "error"]
    exit_code: int | None = None
    tests: TestCounts | None = None
    error: ErrorInfo | None = None


# What the message pipe may carry once the job runs: `started` and `done` are the supervisor's
# alone, `output` comes from fd 1 and 2 only, `ready` was the harness's first word.
PIPE_EVENTS = frozenset(MESSAGE_CAPS)


class _RunState:
    """What one run has seen so far, and the Done it ends with.

    The supervisor owns the framing: it stamps every event (seq without gaps, t), passes on only
    the kinds of message the harness sends during a job, takes the first `result` that carries
    the run's token as final and reads nothing from the pipe after it, and writes the one `done`
    itself. Anything else on the
    pipe (the learner's code can write to it: it runs in the harness's process) is counted and
    dropped; the run goes on. Dropping, not failing the run: a malformed line is only ever the
    learner's doing (the harness writes whole JSON lines), it cannot reach anyone else's run,
    and it is never the runner's fault, so it must not read as internal_error.
    """

    def __init__(self, limits: SandboxLimits) -> None:
        self.limits = limits
        self.output_budget = limits.output_kb * 1024
        self.result: _HarnessResult | None = None
        self.ended_by: str | None = None  # timeout, output_limit, tmpfs, cancelled
        self.internal: str | None = None
        self.dropped = 0  # pipe lines that were not a harness message
        self.sent: dict[str, int] = dict.fromkeys(MESSAGE_CAPS, 0)
        self.message_bytes = 0
        self.capped: set[str] = set()
        self.tmpfs_used = 0
        self.token = secrets.token_hex(16)  # the harness's result carries it

    def accept(self, kind: str, payload: Any, clock: RunClock) -> list[Event]:
        if kind == "output":
            stream, text, size = payload
            if size > self.output_budget:
                keep = text.encode()[: self.output_budget].decode(errors="ignore")
                self.output_budget = 0
                self.ended_by = "output_limit"
                return [Output(**clock.stamp(), stream=stream, text=keep)] if keep else []
            self.output_budget -= size
            return [Output(**clock.stamp(), stream=stream, text=text)]
        if kind == "tmpfs":
            self.tmpfs_used = payload
            self.ended_by = "tmpfs"
            return []
        if self.result is not None:
            return []  # the result was the harness's last word: nothing after it counts
        if kind == "bad":
            self._drop(payload)
            return []
        message: Any = None
        with contextlib.suppress(ValueError):
            message = json.loads(payload)
        kind = str(message.get("type")) if isinstance(message, dict) else "not JSON"
        if kind == "result":
            try:
                result = _HarnessResult.model_validate(message)
            except ValidationError:
                self._drop("an invalid result")
                return []
            if not hmac.compare_digest(result.token, self.token):
                self._drop("a result without the run's token")
                return []
            self.result = result
            return []
        if kind not in PIPE_EVENTS:
            self._drop(f"a message of type {kind[:40]!r}")
            return []
        message.pop("seq", None)
        message.pop("t", None)
        try:
            event = EventAdapter.validate_python({**message, "seq": 0, "t": 0.0})
        except ValidationError:
            self._drop(f"an invalid {kind} message")
            return []
        size = len(payload)
        if self.sent[kind] >= MESSAGE_CAPS[kind] or self.message_bytes + size > MESSAGE_BYTES:
            if kind in self.capped:
                return []
            self.capped.add(kind)
            notice = (
                f"[torchdojo] this run sent more than {MESSAGE_CAPS[kind]} {kind} messages (or "
                f"{MESSAGE_BYTES // (1024 * 1024)} MiB of them): the rest are not shown\n"
            )
            return [Output(**clock.stamp(), stream="stderr", text=notice)]
        self.sent[kind] += 1
        self.message_bytes += size
        # Stamped only now: a dropped message takes no seq number.
        return [event.model_copy(update=clock.stamp())]

    def _drop(self, what: str) -> None:
        self.dropped += 1
        if self.dropped == 1:
            log.warning("dropping what the run wrote to the harness pipe: %s", what)

    def done(self, clock: RunClock, exit_code: int | None, *, oom: bool) -> Done:
        duration_ms = round((time.monotonic() - clock.start) * 1000, 3)
        stamp = clock.stamp()
        result = self.result
        tests = result.tests if result else None
        error = result.error if result else None
        if self.dropped:
            log.info("dropped %d lines on the harness pipe", self.dropped)
        if self.internal:
            return Done(
                **stamp,
                status="internal_error",
                duration_ms=duration_ms,
                error=ErrorInfo(type="RunnerError", message=self.internal),
            )
        if self.ended_by == "timeout":
            message = (
                f"Your code ran longer than the {self.limits.wall_s:g} s limit and was stopped."
            )
            return Done(
                **stamp,
                status="timeout",
                duration_ms=duration_ms,
                tests=tests,
                error=ErrorInfo(type="Timeout", message=message),
            )
        if self.ended_by == "output_limit":
            message = f"Your code printed more than {self.limits.output_kb} KiB and was stopped."
            return Done(
                **stamp,
                status="output_limit",
                duration_ms=duration_ms,
                tests=tests,
                error=ErrorInfo(type="OutputLimit", message=message),
            )
        if self.ended_by == "tmpfs":
            message = (
                f"Your code's files took more than the {self.limits.tmpfs_mb} MiB files limit "
                f"({self.tmpfs_used // (1024 * 1024)} MiB in /tmp and /dev/shm, which live in "
                "memory) and it was stopped."
            )
            return Done(
                **stamp,
                status="memory_limit",
                duration_ms=duration_ms,
                tests=tests,
                error=ErrorInfo(type="FilesLimit", message=message),
            )
        if self.ended_by == "cancelled":
            return Done(**stamp, status="cancelled", duration_ms=duration_ms, tests=tests)
        memory_words = ("MemoryError", "OutOfMemoryError")
        if oom or (
            error is not None
            and (error.type in memory_words or "can't allocate memory" in error.message)
        ):
            message = (
                f"Your code used more than the {self.limits.memory_mb} MiB memory limit "
                "and was stopped."
            )
            return Done(
                **stamp,
                status="memory_limit",
                duration_ms=duration_ms,
                tests=tests,
                error=ErrorInfo(
                    type="MemoryLimit", message=message, line=error.line if error else None
                ),
            )
        if result is not None:
            return Done(
                **stamp,
                status=result.status,
                exit_code=result.exit_code if result.exit_code is not None else exit_code,
                duration_ms=duration_ms,
                tests=tests,
                error=error,
            )
        # The harness died without a result: the learner's code ended the process itself.
        if exit_code is not None and exit_code > 128:
            number = exit_code - 128
            if number == signal.SIGXCPU:
                return Done(
                    **stamp,
                    status="timeout",
                    duration_ms=duration_ms,
                    error=ErrorInfo(type="Timeout", message="Your code used up its CPU time."),
                )
            name = (
                signal.Signals(number).name
                if number in signal.Signals._value2member_map_
                else str(number)
            )
            return Done(
                **stamp,
                status="error",
                exit_code=exit_code,
                duration_ms=duration_ms,
                error=ErrorInfo(
                    type="Killed", message=f"Your program was killed by signal {name}."
                ),
            )
        if exit_code == 0:
            return Done(**stamp, status="completed", exit_code=0, duration_ms=duration_ms)
        return Done(
            **stamp,
            status="error",
            exit_code=exit_code,
            duration_ms=duration_ms,
            error=ErrorInfo(type="Exit", message=f"Your program exited with code {exit_code}."),
        )


async def _pipe_reader(fd: int) -> asyncio.StreamReader:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=MESSAGE_LIMIT)
    protocol = asyncio.StreamReaderProtocol(reader)
    await loop.connect_read_pipe(lambda: protocol, os.fdopen(fd, "rb", buffering=0))
    return reader
