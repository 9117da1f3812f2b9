"""One job, in a sandbox that has just been made for it: run the learner's code as a script,
stream what it prints (fd 1 and 2 go straight to the supervisor's pipes), capture curves,
figures and the model summary, run the checks, and send the result. Then the process ends:
sandboxes are single-use."""

from __future__ import annotations

import json
import linecache
import os
import resource
import sys
import traceback
import types
from typing import Any

import numpy
import torch

from . import capture, checking, messages

LEARNER_FILE = checking.LEARNER_FILE
WORK_DIR = "/tmp"


def learner_error(exc: BaseException) -> dict[str, Any]:
    """Print the traceback from the learner's first frame on, and say where it went wrong."""
    line = None
    if isinstance(exc, SyntaxError) and exc.filename == LEARNER_FILE:
        line = exc.lineno
    tb = exc.__traceback__
    while tb is not None and tb.tb_frame.f_code.co_filename != LEARNER_FILE:
        tb = tb.tb_next  # the harness's own frames mean nothing to a learner
    for frame in traceback.extract_tb(tb):
        if frame.filename == LEARNER_FILE:
            line = frame.lineno
    text = "".join(traceback.format_exception(type(exc), exc, tb))
    sys.stderr.write(text)
    sys.stderr.flush()
    message = str(exc) if not isinstance(exc, SyntaxError) else (exc.msg or "invalid syntax")
    return {"type": type(exc).__name__, "message": message[:2000], "line": line}


def run_learner_code(source: str) -> tuple[types.ModuleType, dict[str, Any] | None, int]:
    """Run the code as ``__main__``; returns (module, error or None, exit code)."""
    module = types.ModuleType("__main__")
    module.__file__ = os.path.join(WORK_DIR, LEARNER_FILE)
    module.__builtins__ = __builtins__  # type: ignore[attr-defined]
    sys.modules["__main__"] = module
    sys.modules["submission"] = module
    with open(module.__file__, "w") as handle:
        handle.write(source)
    linecache.cache[LEARNER_FILE] = (len(source), None, source.splitlines(True), LEARNER_FILE)
    try:
        code = compile(source, LEARNER_FILE, "exec")
        exec(code, module.__dict__)
    except SystemExit as exc:
        status = exc.code
        if status is None or status == 0:
            return module, None, 0
        if not isinstance(status, int):
            print(status, file=sys.stderr)
            status = 1
        return (
            module,
            {"type": "SystemExit", "message": f"exit code {status}", "line": None},
            status,
        )
    except BaseException as exc:
        return module, learner_error(exc), 1
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
    return module, None, 0


def apply_limits(limits: dict[str, Any]) -> None:
    """This job's rlimits: lowering one needs no privilege. A cgroup, where the runner made
    one, holds memory and processes better; these hold where it could not."""
    file_bytes = int(limits["file_mb"]) * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_FSIZE, (file_bytes, file_bytes))
    resource.setrlimit(resource.RLIMIT_CPU, (int(limits["cpu_s"]), int(limits["cpu_s"])))
    # Processes and threads. Since Linux 5.14 the count is kept per user namespace, and each
    # job has its own, so this bounds this job alone, as root (a uid of its own) or not.
    nproc = int(limits["processes"])
    resource.setrlimit(resource.RLIMIT_NPROC, (nproc, nproc))
    if limits.get("address_space"):
        # No cgroup and no GPU (RLIMIT_AS breaks CUDA): the job's own allocations, on top of
        # what it shares with the zygote (torch and friends, mapped but not the job's).
        with open("/proc/self/statm") as handle:
            mapped = int(handle.read().split()[0]) * resource.getpagesize()
        total = mapped + int(limits["memory_mb"]) * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (total, total))


def set_threads(threads: int) -> None:
    """The zygote ran with one thread per math library (a fork keeps no thread pool); this job
    gets its share of the cores for torch (and any subprocess it starts). numpy's own BLAS
    keeps one thread: growing its pool costs each job ~20 ms, for little in a torch course."""
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[name] = str(threads)
    torch.set_num_threads(threads)


def run_job(job: dict[str, Any]) -> int:
    # The supervisor takes as the result only a message carrying this token. The learner's code
    # runs in this process and could dig it out of memory (their own run is theirs to fool);
    # it can no longer be forged by writing to every descriptor in /proc/self/fd.
    token = job.pop("token", None)
    apply_limits(job["limits"])
    messages.hide()
    if job.get("gpu") is not None:
        os.environ["CUDA_VISIBLE_DEVICES"] = str(job["gpu"])
    set_threads(int(job.get("threads") or 1))
    torch.manual_seed(0)
    # A fork shares its parent's random state: every job would draw the same "random" numbers.
    numpy.random.seed(int.from_bytes(os.urandom(4), "little"))
    capture.install(figure_cap=int(job["caps"]["figure"]))

    module, error, exit_code = run_learner_code(job["code"])
    capture.flush_curves()
    if capture.open_figures():
        capture.send_open_figures()
    if job.get("summary") and error is None:
        capture.send_summary(module.__dict__, job["summary"])

    tests = None
    if job.get("mode") == "check" and job.get("checks") is not None:
        tests = checking.run_checks(job["checks"], module, error)
        capture.flush_curves()
    result: dict[str, Any] = {
        "type": "result",
        "token": token,
        "status": "completed" if error is None else "error",
        "exit_code": exit_code,
    }
    if error is not None:
        result["error"] = error
    if tests is not None:
        result["tests"] = tests
    sys.stdout.flush()
    sys.stderr.flush()
    messages.send(result)
    return exit_code


def main() -> None:
    """Read the one job from stdin (the supervisor writes it and closes the pipe), run it, end."""
    raw = sys.stdin.buffer.read()
    if not raw:
        os._exit(0)  # the runner let this sandbox go unused
    job = json.loads(raw)
    del raw  # it holds the result token
    os.chdir(WORK_DIR)
    exit_code = run_job(job)
    # Skip interpreter teardown: learner threads or atexit hooks must not hold the run open.
    os._exit(exit_code & 0xFF)
