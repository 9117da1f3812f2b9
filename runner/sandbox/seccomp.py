"""The seccomp filters: the zygote's, and the stricter one every job loads before its code runs.

Filters stack: a job runs under both. The zygote's filter denies the kernel surfaces that
namespaces do not cover, except the two calls its children need to build their own sandbox
(`unshare` and `mount`); the job's filter denies those too, and new user namespaces through
`clone`, before the job is read. Both are compiled here, by the runner, with libseccomp; the
zygote gets them as BPF bytes and never compiles a rule itself.
"""

from __future__ import annotations

import contextlib
import errno
import tempfile
from functools import lru_cache

CLONE_NEWUSER = 0x10000000
TIOCSTI = 0x5412
# Kernel surfaces that namespaces do not cover. Denied with EPERM; learner code has no business
# with any of them.
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
# What a zygote's child needs before it loads the job's filter: new namespaces (`unshare`,
# including a user namespace) and its fresh /proc, /tmp and /dev/shm (`mount`).
ZYGOTE_CHILD_NEEDS = ("unshare", "mount")


def _compile(denied: tuple[str, ...], *, deny_new_userns: bool) -> bytes:
    import pyseccomp as seccomp  # ctypes over the system's libseccomp

    rules = seccomp.SyscallFilter(seccomp.ALLOW)
    for name in denied:
        with contextlib.suppress(Exception):  # not every syscall exists on every architecture
            rules.add_rule(seccomp.ERRNO(errno.EPERM), name)
    if deny_new_userns:
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


@lru_cache(maxsize=1)
def job_filter() -> bytes:
    """The BPF program each job loads before it reads its job: every denied call."""
    return _compile(DENIED_SYSCALLS, deny_new_userns=True)


@lru_cache(maxsize=1)
def zygote_filter() -> bytes:
    """The BPF program bubblewrap loads for the zygote: the job's, less what its children need
    to build their sandboxes (they load `job_filter` on top before anything else runs)."""
    denied = tuple(name for name in DENIED_SYSCALLS if name not in ZYGOTE_CHILD_NEEDS)
    return _compile(denied, deny_new_userns=False)
