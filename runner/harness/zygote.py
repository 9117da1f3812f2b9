"""The zygote: one long-lived process, in its own bubblewrap sandbox, that loads everything
once and never runs learner code. For each job it forks a child that makes itself a fresh,
single-use sandbox (`confine`, in the order set out there) before the job is even written.

The runner talks to the zygote over its control socket (SOCK_SEQPACKET, one JSON object a
message): the zygote says `ready` once warm; each `spawn` brings the new sandbox's pipes and
its own control socket as descriptors. The job itself never passes through the zygote: the
runner writes it into the sandbox's stdin, so no job's code or token is ever in the zygote's
memory, or in any later job's.

A sandbox, as processes: the zygote's child C enters the new namespaces and forks I, pid 1 of
the new pid namespace (init: it reaps, and its death kills everything in the namespace, setsid
daemons included); I forks W, pid 2, which drops to the job's uid, loses every capability,
loads the job's seccomp filter and only then reads the job. C exits at once. I tells the
runner W's exit status and exits with it.
"""

from __future__ import annotations

import contextlib
import gc
import json
import os
import socket
import sys
from typing import Any

from . import confine, warmup

SPAWN_FDS = 5  # the job's stdin, stdout, stderr and message pipe, and its control socket
OOM_SCORE = 1000  # a job is always the OOM killer's first choice, never the zygote


def main() -> None:
    control_fd = int(os.environ.pop("DOJO_CONTROL_FD"))
    job_filter = _read_all(int(os.environ.pop("DOJO_JOB_FILTER_FD")))
    # Whatever else the launch left open (bubblewrap, prlimit) is nobody's: close it now, so
    # that what is open after the warm-up is what the libraries opened, and can be checked.
    for name in os.listdir("/proc/self/fd"):
        if int(name) not in (0, 1, 2, control_fd):
            with contextlib.suppress(OSError):
                os.close(int(name))
    control = socket.socket(fileno=control_fd)
    confine.set_dumpable(False)
    warmup.warm_up()
    from . import dojo, job  # noqa: F401  (imported here, once, for every job)

    sys.modules["dojo"] = dojo  # `from dojo import check` in learner code and checks
    import torch

    if files := warmup.open_files():
        # A job closes every descriptor it inherits: a library still using one would read
        # whatever file gets its number next. The runner shows this and starts no job here.
        _send(control, {"op": "fatal", "message": f"the zygote keeps files open: {files}"})
        os._exit(1)
    gc.collect()
    gc.freeze()  # the forked jobs' garbage collector never touches (and copies) these pages
    import signal

    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # the kernel reaps C, which exits at once
    _send(control, {"op": "ready", "torch": torch.__version__, "threads": _threads()})
    serve(control, job_filter)


def serve(control: socket.socket, job_filter: bytes) -> None:
    while True:
        try:
            data, fds, _, _ = socket.recv_fds(control, 65536, SPAWN_FDS)
        except InterruptedError:
            continue
        if not data:
            os._exit(0)  # the runner is gone
        spec = json.loads(data)
        if len(fds) != SPAWN_FDS:
            for fd in fds:
                os.close(fd)
            _send(control, {"op": "error", "id": spec.get("id"), "message": "missing descriptors"})
            continue
        if (threads := _threads()) != 1:
            # fork keeps only the calling thread: a thread pool here would be broken in every
            # job. Never expected; the runner replaces this zygote.
            _send(control, {"op": "fatal", "message": f"the zygote has {threads} threads"})
            os._exit(1)
        sys.stdout.flush()
        sys.stderr.flush()
        try:
            pid = os.fork()
        except OSError as exc:
            _send(control, {"op": "error", "id": spec.get("id"), "message": f"fork: {exc}"})
            pid = -1
        if pid == 0:
            _sandbox(spec, fds, job_filter)  # never returns
        for fd in fds:
            os.close(fd)


def _sandbox(spec: dict[str, Any], fds: list[int], job_filter: bytes) -> None:
    """C, then I, then W: the steps of confine.py, in order. Never returns."""
    ctl: socket.socket | None = None
    try:
        confine.default_signals()
        *pipes, ctl_fd = confine.keep_only(fds)  # closes the zygote's control socket too
        ctl = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET, fileno=ctl_fd)
        uid, gid = os.getuid(), os.getgid()
        confine.new_namespaces()
        confine.set_dumpable(True)  # its /proc/self files become its own: it may map its uid
        _send(ctl, {"step": "hello"})  # the runner reads our host pid, cgroups us, maps our uid
        go = _receive(ctl)
        if not go.get("mapped"):
            confine.map_own_ids(uid, gid)
        if os.fork():
            os._exit(0)  # C's work is done; its child is pid 1 of the new pid namespace
        _init(spec, pipes, ctl, job_filter)
    except BaseException as exc:  # any failure: say which step, then end this child
        if ctl is not None:
            with contextlib.suppress(OSError):
                _send(ctl, {"step": "error", "message": f"{type(exc).__name__}: {exc}"})
    finally:
        os._exit(1)


def _init(spec: dict[str, Any], pipes: list[int], ctl: socket.socket, job_filter: bytes) -> None:
    """I, pid 1: mounts, loopback, then fork the job and reap until it ends. (No parent-death
    signal: its parent C exits at once. If the zygote dies, its whole pid namespace dies, and
    this one inside it.)"""
    os.umask(0o022)
    confine.mount_fresh(int(spec["tmpfs_bytes"]), list(spec.get("keep") or []))
    confine.loopback_up()
    _send(ctl, {"step": "init"})  # the runner reads our host pid: killing us ends the sandbox
    job_pid = os.fork()
    if job_pid == 0:
        _job(spec, pipes, ctl, job_filter)
    for fd in pipes:
        os.close(fd)
    confine.drop_privileges()
    confine.set_dumpable(False)  # the job (perhaps the same uid) can never touch init's memory
    while True:
        try:
            pid, status = os.wait()
        except ChildProcessError:
            os._exit(1)
        if pid == job_pid:
            code = os.waitstatus_to_exitcode(status)
            _send(ctl, {"step": "exit", "code": code if code >= 0 else 128 - code})
            os._exit(0)  # and the kernel kills whatever the job left running


def _job(spec: dict[str, Any], pipes: list[int], ctl: socket.socket, job_filter: bytes) -> None:
    """W, pid 2: the job's uid, no privileges, the job's filter; then it reads the job."""
    os.setsid()
    uid = spec.get("uid")
    if uid is not None and uid != os.getuid():
        confine.become(int(uid))
    for target, fd in enumerate(pipes):  # stdin (the job), stdout, stderr, the message pipe
        os.dup2(fd, target)
        os.close(fd)
    confine.drop_privileges()
    confine.set_dumpable(True)  # (a uid change made it undumpable: /proc/self was root's)
    confine.write_oom_score(OOM_SCORE)
    confine.load_filter(job_filter)
    if spec.get("touch"):
        warmup.touch()
    _send(ctl, {"step": "ready"})
    ctl.close()
    from . import job

    job.main()  # never returns


def _send(sock: socket.socket, message: dict[str, Any]) -> None:
    sock.sendmsg([json.dumps(message).encode()])


def _receive(sock: socket.socket) -> dict[str, Any]:
    data = sock.recv(65536)
    if not data:
        raise ConnectionError("the runner closed the sandbox's control socket")
    message = json.loads(data)
    if message.get("step") != "go":
        raise ConnectionError(f"unexpected {message.get('step')!r} from the runner")
    return dict(message)


def _threads() -> int:
    return len(os.listdir("/proc/self/task"))


def _read_all(fd: int) -> bytes:
    chunks = []
    while chunk := os.read(fd, 65536):
        chunks.append(chunk)
    os.close(fd)
    return b"".join(chunks)
