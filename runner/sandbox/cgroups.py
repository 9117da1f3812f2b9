"""Cgroups v1 and v2 behind one interface: one cgroup per job, where the host lets us make one.

A job's memory, processes and CPU share are held here when the runner can write cgroups (as
root); otherwise rlimits set inside the sandbox do what they can (see the harness's job).
The runner moves the zygote's child into its job's cgroup before that child enters its new
namespaces, so everything the job ever starts is inside.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import time
from pathlib import Path

log = logging.getLogger("runner.sandbox")
ROOT = Path("/sys/fs/cgroup")


class Cgroup:
    """A cgroup for one job: v1 (memory, pids, cpu controllers) or v2 (one folder)."""

    def __init__(self, dirs: dict[str, Path], version: int) -> None:
        self.dirs, self.version = dirs, version

    @classmethod
    def create(cls, name: str) -> Cgroup | None:
        """A new cgroup under this process's own, or None where the host allows none."""
        try:
            return (
                cls._create_v2(name)
                if (ROOT / "cgroup.controllers").exists()
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
            base = ROOT / controller / cls._own_path(controller).lstrip("/")
            path = base / "torchdojo" / name
            path.mkdir(parents=True, exist_ok=True)
            dirs[controller] = path
        return cls(dirs, 1)

    @classmethod
    def _create_v2(cls, name: str) -> Cgroup:
        base = ROOT / cls._own_path("").lstrip("/")
        parent = base / "torchdojo"
        parent.mkdir(exist_ok=True)
        (parent / "cgroup.subtree_control").write_text("+memory +pids +cpu")
        path = parent / name
        path.mkdir(exist_ok=True)
        return cls({"memory": path, "pids": path, "cpu": path}, 2)

    def add(self, pid: int) -> None:
        """Move a process (and so everything it starts from now on) into this cgroup."""
        for path in set(self.dirs.values()):
            (path / "cgroup.procs").write_text(str(pid))

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

    def release(self) -> None:
        """Kill whatever is left in it and remove it (blocking: call it in a thread)."""
        self.kill_all()
        self.remove()
