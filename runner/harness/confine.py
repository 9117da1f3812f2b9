"""The steps a zygote's child takes to become a fresh, single-use sandbox, before it sees a job.

Each step is one function; `zygote.py` calls them in this order, which is the security
argument (read it as nsjail's containProc or isolate's box_inside):

  the child (still in the zygote's namespaces)
    1. new_namespaces     its own user, mount, pid, network, IPC, UTS and cgroup namespaces
    2. map_own_ids        (unprivileged runner) maps its one uid; as root the runner maps it
  its child, init: pid 1 of the new pid namespace, so when it dies everything in it dies
    3. mount_fresh        / private; a fresh /proc, /tmp and /dev/shm of its own
    4. loopback_up        the namespace's loopback, and nothing else, for the job's network
  init's child, the job: pid 2
    5. become             the job's own uid (as root: one no other sandbox has now)
    6. drop_privileges    every capability, in every set; no_new_privs
    7. load_filter        the job's seccomp filter, compiled by the runner
  and only then does it read the job.

Everything here is the standard library and ctypes over libc: no compiler, nothing the learner
can influence (the zygote never sees a job).
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import os
import signal
import socket
import struct

_libc = ctypes.CDLL(None, use_errno=True)

CLONE_NEWNS = 0x00020000
CLONE_NEWCGROUP = 0x02000000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000
NAMESPACES = (
    CLONE_NEWUSER
    | CLONE_NEWNS
    | CLONE_NEWPID
    | CLONE_NEWNET
    | CLONE_NEWIPC
    | CLONE_NEWUTS
    | CLONE_NEWCGROUP
)

MS_NOSUID, MS_NODEV, MS_NOEXEC = 0x2, 0x4, 0x8
MS_BIND, MS_REC, MS_PRIVATE = 0x1000, 0x4000, 1 << 18

PR_SET_DUMPABLE = 4
PR_SET_SECCOMP = 22
PR_CAPBSET_DROP = 24
PR_SET_NO_NEW_PRIVS = 38
PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL = 47, 4
SECCOMP_MODE_FILTER = 2
LINUX_CAPABILITY_VERSION_3 = 0x20080522
SIOCGIFFLAGS, SIOCSIFFLAGS = 0x8913, 0x8914
IFF_UP, IFF_RUNNING = 0x1, 0x40


class ConfinementError(OSError):
    """A step failed; the message names it (the runner reports it as a broken sandbox)."""


def _check(result: int, step: str) -> None:
    if result != 0:
        number = ctypes.get_errno()
        raise ConfinementError(number, f"{step}: {os.strerror(number)}")


def prctl(option: int, arg: int = 0, step: str = "prctl") -> None:
    _check(_libc.prctl(option, ctypes.c_ulong(arg), 0, 0, 0), step)


# --- 1, 2: namespaces and ids -------------------------------------------------------------------


NO_USERNS = (
    "this host does not let an unprivileged process make a user namespace (one of "
    "kernel.unprivileged_userns_clone=0, user.max_user_namespaces=0, or Ubuntu's "
    "kernel.apparmor_restrict_unprivileged_userns=1); docs/deploy.md says how to allow it"
)


def new_namespaces() -> None:
    if _libc.unshare(NAMESPACES) != 0:
        number = ctypes.get_errno()
        hint = f": {NO_USERNS}" if number in (1, 28) else ""  # EPERM, ENOSPC (the max)
        raise ConfinementError(number, f"unshare (new namespaces): {os.strerror(number)}{hint}")


def map_own_ids(uid: int, gid: int) -> None:
    """Map this process's own uid and gid, the one mapping a process may write for itself."""
    with open("/proc/self/setgroups", "w") as handle:
        handle.write("deny")
    with open("/proc/self/uid_map", "w") as handle:
        handle.write(f"{uid} {uid} 1")
    with open("/proc/self/gid_map", "w") as handle:
        handle.write(f"{gid} {gid} 1")


# --- 3, 4: mounts and the network ---------------------------------------------------------------


def _mount(source: str | None, target: str, kind: str | None, flags: int, data: str = "") -> None:
    result = _libc.mount(
        source.encode() if source else None,
        target.encode(),
        kind.encode() if kind else None,
        ctypes.c_ulong(flags),
        data.encode() if data else None,
    )
    _check(result, f"mount {kind or 'propagation'} on {target}")


def mount_fresh(tmpfs_bytes: int, keep: list[str]) -> None:
    """Nothing this namespace mounts reaches the zygote's; a /proc that shows this pid namespace
    alone; a size-limited tmpfs at /tmp and /dev/shm, the only writable places. `keep`: the
    zygote's read-only trees below them (a virtualenv under /tmp), bound again on top, still
    read-only (the kernel keeps them so: their read-only flag is locked)."""
    _mount(None, "/", None, MS_REC | MS_PRIVATE)
    _mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
    held = [os.open(tree, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC) for tree in keep]
    for target in ("/tmp", "/dev/shm"):
        _mount("tmpfs", target, "tmpfs", MS_NOSUID | MS_NODEV, f"size={tmpfs_bytes},mode=1777")
    for tree, fd in zip(keep, held, strict=True):
        os.makedirs(tree, mode=0o755, exist_ok=True)
        _mount(f"/proc/self/fd/{fd}", tree, None, MS_BIND | MS_REC)
        os.close(fd)


def loopback_up() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        request = struct.pack("16sH22x", b"lo", 0)
        flags = struct.unpack("16sH22x", fcntl.ioctl(sock, SIOCGIFFLAGS, request))[1]
        fcntl.ioctl(sock, SIOCSIFFLAGS, struct.pack("16sH22x", b"lo", flags | IFF_UP | IFF_RUNNING))


# --- 5, 6, 7: the job's identity, privileges and filter -----------------------------------------


def become(uid: int) -> None:
    """The job's own uid and gid, no supplementary groups (root runner: the runner mapped it)."""
    os.setgroups([])
    os.setresgid(uid, uid, uid)
    os.setresuid(uid, uid, uid)


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [
        ("effective", ctypes.c_uint32),
        ("permitted", ctypes.c_uint32),
        ("inheritable", ctypes.c_uint32),
    ]


def drop_privileges() -> None:
    """No capability in any set (bounding, ambient, effective, permitted, inheritable), and none
    to be had again: no_new_privs."""
    with open("/proc/sys/kernel/cap_last_cap") as handle:
        last = int(handle.read())
    for cap in range(last + 1):
        prctl(PR_CAPBSET_DROP, cap, f"drop capability {cap} from the bounding set")
    _check(_libc.prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0), "clear ambient caps")
    header = _CapHeader(LINUX_CAPABILITY_VERSION_3, 0)
    data = (_CapData * 2)()
    _check(_libc.capset(ctypes.byref(header), data), "capset (drop every capability)")
    prctl(PR_SET_NO_NEW_PRIVS, 1, "no_new_privs")


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


def load_filter(program: bytes) -> None:
    """Load a seccomp BPF program (struct sock_filter[], as libseccomp exports it)."""
    if not program or len(program) % 8:
        raise ConfinementError(0, "the job's seccomp filter is empty or malformed")
    buffer = ctypes.create_string_buffer(program, len(program))
    fprog = _SockFprog(len(program) // 8, ctypes.addressof(buffer))
    result = _libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.byref(fprog), 0, 0)
    _check(result, "load the job's seccomp filter")


# --- descriptors and signals --------------------------------------------------------------------


def keep_only(fds: list[int]) -> list[int]:
    """Move `fds` to fresh numbers, make 0, 1 and 2 /dev/null and close every other descriptor
    (the zygote's control socket, its log pipes): returns the new numbers, in order."""
    moved = [fcntl.fcntl(fd, fcntl.F_DUPFD, 10) for fd in fds]
    devnull = os.open(os.devnull, os.O_RDWR)
    for target in (0, 1, 2):
        os.dup2(devnull, target)
    keep = {0, 1, 2, *moved}
    for name in os.listdir("/proc/self/fd"):
        fd = int(name)
        if fd not in keep:
            with contextlib.suppress(OSError):  # the descriptor listdir itself used
                os.close(fd)
    return moved


def default_signals() -> None:
    """Every signal back to its default: the zygote ignores SIGCHLD (the kernel reaps its
    children) and Python catches SIGINT; a pid 1 with a handler could be signalled by the job."""
    for number in (signal.SIGCHLD, signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(number, signal.SIG_DFL)


def set_dumpable(on: bool) -> None:
    """Off in the zygote: no process of the same uid may read its memory or ptrace it. On again
    in a job, whose /proc/self files the learner's own code reads."""
    prctl(PR_SET_DUMPABLE, 1 if on else 0, "dumpable")


def write_oom_score(score: int) -> None:
    """Raise (never lower: that needs a privilege) how readily the kernel's OOM killer picks us."""
    with open("/proc/self/oom_score_adj", "w") as handle:
        handle.write(str(score))
