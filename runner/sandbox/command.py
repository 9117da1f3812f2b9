"""The zygote's bubblewrap command, as a pure function a test can read without running it.

The layers, in the order bubblewrap applies them (nsjail's and isolate's lesson: the order is
the security argument, so it reads top to bottom here):

1. rlimits on the way in (no core dumps, bounded files and descriptors);
2. as root: bubblewrap runs without CAP_DAC_OVERRIDE, so it leaves the sandbox's /proc whole
   (it covers /proc/sys only where it could write it), which lets each job mount a fresh /proc
   of its own pid namespace inside its own user namespace (the kernel allows that only where a
   complete proc mount is already visible);
3. namespaces: no network (only a loopback), its own pid, IPC, UTS and cgroup namespaces; run
   unprivileged, a user namespace too with every capability dropped. Never --disable-userns:
   each job builds its own sandbox inside it, starting with a user namespace;
4. the filesystem: an empty root, read-only: /usr, the Python install and its virtualenv, the
   harness, a fake passwd; a fresh /proc; a /dev with the safe nodes (and this zygote's GPU, if
   it has one) and no pseudo-terminals; a small tmpfs at /tmp and /dev/shm that every job
   replaces with its own. Nothing from /home, /root, /var or the service's folders;
5. an empty environment but a few safe variables, one thread for every math library (a forked
   process must not inherit thread pools), and the zygote's seccomp filter;
6. as root: the zygote's own unprivileged uid, no capabilities, no_new_privs.
"""

from __future__ import annotations

import os
import shutil
import sys
import sysconfig
from dataclasses import dataclass
from pathlib import Path

from runner.config import RunnerSettings
from runner.gpu import GpuDevice

HARNESS_DIR = Path(__file__).resolve().parents[1] / "harness"
SANDBOX_ROOT = "/opt/dojo"  # the harness package is /opt/dojo/harness in there
ZYGOTE_TMPFS_MB = 64  # the zygote's own scratch (font cache, warm-up); jobs never see it


class SandboxUnavailable(RuntimeError):
    """The sandbox cannot run here; the message says what to install or change."""


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


@dataclass(frozen=True)
class ZygoteFds:
    """Descriptors the zygote's bubblewrap inherits: its control socket, bubblewrap's info
    pipe, both seccomp programs and the identity files (memfds)."""

    control: int
    info: int
    seccomp: int
    job_filter: int
    passwd: int
    group: int
    hosts: int


@dataclass(frozen=True)
class Identity:
    """Who runs in the sandbox: the zygote's uid and the jobs' uids (all the same, the
    runner's own, when it is unprivileged)."""

    zygote_uid: int
    job_uids: tuple[int, ...]

    def files(self) -> dict[str, bytes]:
        users = [f"learner:x:{uid}:{uid}::/tmp:/bin/sh" for uid in dict.fromkeys(self.job_uids)]
        groups = [f"learner:x:{uid}:" for uid in dict.fromkeys(self.job_uids)]
        if self.zygote_uid not in self.job_uids:
            users.insert(0, f"dojo:x:{self.zygote_uid}:{self.zygote_uid}::/:/sbin/nologin")
            groups.insert(0, f"dojo:x:{self.zygote_uid}:")
        return {
            "passwd": ("root:x:0:0::/:/sbin/nologin\n" + "\n".join(users) + "\n").encode(),
            "group": ("root:x:0:\n" + "\n".join(groups) + "\n").encode(),
            "hosts": b"127.0.0.1 localhost dojo\n::1 localhost\n",
        }


def readonly_trees(python: str) -> list[str]:
    """Folders the sandboxed Python needs, read-only: its install and its virtualenv."""
    exe = Path(python)
    prefixes = {str(Path(sys.prefix).resolve()), str(Path(sys.base_prefix).resolve())}
    if exe.resolve() != Path(sys.executable).resolve():  # another Python than ours: bind its tree
        prefixes.add(str(exe.resolve().parent.parent))
    prefixes.add(str(Path(sysconfig.get_paths()["purelib"]).resolve()))
    trees = sorted(p for p in prefixes if not p.startswith("/usr/"))
    # Drop nested paths: binding the outer tree covers them.
    return [t for t in trees if not any(t != o and t.startswith(o + "/") for o in trees)]


def zygote_command(
    settings: RunnerSettings,
    *,
    bwrap: str,
    fds: ZygoteFds,
    identity: Identity,
    privileged: bool,
    gpu: GpuDevice | None = None,
) -> list[str]:
    """The whole command line that starts one zygote in its sandbox."""
    return [
        *_rlimits(settings, privileged),
        *(["setpriv", "--bounding-set=-dac_override,-dac_read_search"] if privileged else []),
        bwrap,
        *_namespaces(privileged),
        *_filesystem(settings, fds, gpu),
        *_environment(fds, gpu),
        "--seccomp",
        str(fds.seccomp),
        "--info-fd",
        str(fds.info),
        "--",
        *(_drop_to(identity.zygote_uid) if privileged else []),
        settings.python,
        "-u",
        "-B",
        "-s",
        "-P",  # nothing from the working folder (/tmp, the learner's) on sys.path
        "-m",
        "harness",
    ]


def _rlimits(settings: RunnerSettings, privileged: bool) -> list[str]:
    """Limits for the zygote and everything it forks; each job lowers its own further."""
    limits = settings.max_limits
    args = [
        "prlimit",
        "--core=0",
        "--nofile=4096",
        f"--fsize={max(limits.file_mb, ZYGOTE_TMPFS_MB) * 1024 * 1024}",
    ]
    if not privileged:
        # One uid for the zygote and every job: room for every job's own limit and the zygote's
        # children. (Each job's count is also kept in its own user namespace.)
        args.append(f"--nproc={limits.processes * (2 * settings.pool_size + 1) + 256}")
    return [*args, "--"]


def _namespaces(privileged: bool) -> list[str]:
    if privileged:
        # bwrap as root builds the mounts; the zygote then drops to its own uid (below).
        args = ["--unshare-net", "--unshare-pid", "--unshare-ipc", "--unshare-uts"]
        args.append("--unshare-cgroup-try")
    else:
        args = ["--unshare-all", "--unshare-user", "--cap-drop", "ALL"]
    return [*args, "--die-with-parent", "--new-session", "--hostname", "dojo"]


def _filesystem(settings: RunnerSettings, fds: ZygoteFds, gpu: GpuDevice | None) -> list[str]:
    args: list[str] = []
    for name in ("bin", "lib", "lib64", "lib32", "sbin"):
        path = Path("/", name)
        if path.is_symlink():
            args += ["--symlink", os.readlink(path), f"/{name}"]
        elif path.is_dir():
            args += ["--ro-bind", str(path), f"/{name}"]
    args += ["--ro-bind", "/usr", "/usr"]
    if Path("/etc/ld.so.cache").exists():
        args += ["--ro-bind", "/etc/ld.so.cache", "/etc/ld.so.cache"]
    for name in ("passwd", "group", "hosts"):
        args += ["--ro-bind-data", str(getattr(fds, name)), f"/etc/{name}"]
    args += ["--perms", "0755", "--dir", "/opt", "--perms", "0755", "--dir", SANDBOX_ROOT]
    args += ["--ro-bind", str(HARNESS_DIR), f"{SANDBOX_ROOT}/harness"]
    args += ["--proc", "/proc", "--dev", "/dev"]
    # No pseudo-terminals: one devpts would be shared by every job of this zygote.
    args += ["--perms", "0755", "--tmpfs", "/dev/pts"]
    if gpu is not None:
        args += gpu.bind_args()  # this zygote's GPU node and the control nodes, no other GPU
    small = str(ZYGOTE_TMPFS_MB * 1024 * 1024)
    args += ["--perms", "1777", "--size", small, "--tmpfs", "/tmp"]
    args += ["--perms", "1777", "--size", small, "--tmpfs", "/dev/shm"]
    # After the tmpfs mounts: a virtualenv under /tmp (a checkout in /tmp, say) would
    # otherwise be hidden under the sandbox's own empty /tmp.
    for tree in readonly_trees(settings.python):
        for parent in reversed(Path(tree).parents[:-1]):
            args += ["--perms", "0755", "--dir", str(parent)]
        args += ["--ro-bind", tree, tree]
    # Read-only everywhere but /tmp and /dev/shm, which each job mounts afresh: a job's mount
    # namespace is a copy of this one, so anything writable here would be shared.
    args += ["--remount-ro", "/dev/pts", "--remount-ro", "/dev", "--remount-ro", "/"]
    return [*args, "--chdir", "/tmp"]


def _environment(fds: ZygoteFds, gpu: GpuDevice | None) -> list[str]:
    env = {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": "/tmp",
        "LANG": "C.UTF-8",
        "USER": "learner",
        "PYTHONPATH": SANDBOX_ROOT,
        "MPLBACKEND": "Agg",
        "MPLCONFIGDIR": "/tmp/.matplotlib",
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONUNBUFFERED": "1",
        "PYTHONNOUSERSITE": "1",
        # Checks run with pytest alone: no third-party plugin of the venv loads in here.
        "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1",
        # One thread each: fork keeps only the forking thread, so a thread pool started here
        # would be broken in every job. Each job sets its own count before its code runs.
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
        "OPENBLAS_NUM_THREADS": "1",
        # Read (and removed from the environment) by the zygote as it starts.
        "DOJO_CONTROL_FD": str(fds.control),
        "DOJO_JOB_FILTER_FD": str(fds.job_filter),
        **(gpu.environment if gpu is not None else {}),
    }
    args = ["--clearenv"]
    for key, value in env.items():
        args += ["--setenv", key, value]
    return args


def _drop_to(uid: int) -> list[str]:
    return [
        "setpriv",
        f"--reuid={uid}",
        f"--regid={uid}",
        "--clear-groups",
        "--no-new-privs",
        "--inh-caps=-all",
        "--bounding-set=-all",
    ]
