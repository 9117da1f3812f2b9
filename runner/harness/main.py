"""The harness: what runs inside each sandbox.

Started warm by the pool: it imports torch and friends, tells the supervisor it is ready,
then waits for exactly one job on stdin. It runs the learner's code as a script, streams
what the code prints (fd 1 and 2, straight to the supervisor's pipes), and sends structured
messages (metrics, the model summary, figures, test results, the final result) on a separate
pipe, so nothing the learner prints can pass for a harness message. Then it exits: sandboxes
are single-use.

Only the standard library and the packages every lesson may use are imported here; the
runner package itself is not in the sandbox.
"""

from __future__ import annotations

import base64
import io
import json
import linecache
import os
import resource
import sys
import threading
import time
import traceback
import types
from typing import Any

EVENT_FD = int(os.environ.pop("DOJO_EVENT_FD", "3"))
HARNESS_DIR = os.path.dirname(os.path.abspath(__file__))
LEARNER_FILE = "main.py"
CHECKS_FILE = "checks.py"
WORK_DIR = "/tmp"
MAX_FIGURES = 20

# --- the message pipe ------------------------------------------------------------------------

os.set_inheritable(EVENT_FD, False)  # a subprocess the learner starts does not get it
_send_lock = threading.Lock()


def send(message: dict[str, Any]) -> None:
    # The leading newline ends any partial line the learner's code may have left in the pipe,
    # so the supervisor reads this message whole (it skips empty lines).
    data = ("\n" + json.dumps(message, separators=(",", ":"), allow_nan=False) + "\n").encode()
    with _send_lock:
        view = memoryview(data)
        while view:
            written = os.write(EVENT_FD, view)
            view = view[written:]


# --- warm-up: everything a lesson is likely to import, before the job arrives ------------------
# What these imports print (font cache notes, warnings) is not the learner's output: it goes to
# /dev/null, unless an import fails, which the supervisor then reports as a broken sandbox.

_saved_fds = (os.dup(1), os.dup(2))
_devnull = os.open(os.devnull, os.O_WRONLY)
os.dup2(_devnull, 1)
os.dup2(_devnull, 2)
try:
    import matplotlib

    matplotlib.use("Agg")
    import dojo
    import matplotlib.pyplot as plt
    import numpy  # noqa: F401
    import pytest
    import sklearn.datasets  # noqa: F401
    import torch
    import torch.nn
    import torchinfo

    # The first training step pays for lazy imports (torch._dynamo via the optimizers) and the
    # autograd engine's start; and pytest's first session for its own. Pay both now.
    _layer = torch.nn.Linear(4, 2)
    for _optimizer in (
        torch.optim.SGD(_layer.parameters(), lr=0.1),
        torch.optim.Adam(_layer.parameters()),
    ):
        torch.nn.functional.cross_entropy(
            _layer(torch.randn(3, 4)), torch.tensor([0, 1, 0])
        ).backward()
        _optimizer.step()
        _optimizer.zero_grad()
    os.makedirs("/tmp/.warm", exist_ok=True)
    with open("/tmp/.warm/test_warm.py", "w") as _handle:
        _handle.write("def test_warm():\n    assert True\n")
    pytest.main(["/tmp/.warm/test_warm.py", "-p", "no:cacheprovider", "-c", os.devnull, "-s"])
    import shutil

    shutil.rmtree("/tmp/.warm", ignore_errors=True)
    sys.modules.pop("test_warm", None)
    del _layer, _optimizer
finally:
    sys.stdout.flush()
    sys.stderr.flush()
    os.dup2(_saved_fds[0], 1)
    os.dup2(_saved_fds[1], 2)
    for _fd in (*_saved_fds, _devnull):
        os.close(_fd)

# --- loss capture ----------------------------------------------------------------------------


class Curve:
    """One chart curve. Past the first FULL_DETAIL_STEPS points, points are throttled: each one
    is the mean of the values since the previous point, so a million-step loop sends a few
    hundred points, not a million, and the values stay on the device until a point is due (no
    GPU sync per step).

    Automatically captured losses count their own steps and record the points they send in
    ``dojo.history``; ``report()`` gives its own steps and has recorded every value there
    itself (``history=False``)."""

    def __init__(self, name: str, split: str | None, interval_s: float, *, history: bool) -> None:
        self.name, self.split, self.interval_s = name, split, interval_s
        self.history = history
        self.calls = 0
        self.step = 0
        self.total: Any = 0.0
        self.count = 0
        self.last_sent = 0.0

    def add(self, value: Any, step: int | None = None) -> None:
        self.calls += 1
        self.step = self.calls if step is None else step
        self.total = self.total + value
        self.count += 1
        now = time.monotonic()
        # Every step of a short training shows on the chart; past FULL_DETAIL_STEPS, one point
        # per interval (the mean since the last), so a long loop cannot flood the stream.
        if self.calls <= FULL_DETAIL_STEPS or now - self.last_sent >= self.interval_s:
            self.flush(now)

    def flush(self, now: float | None = None) -> None:
        if not self.count:
            return
        total = self.total.item() if hasattr(self.total, "item") else float(self.total)
        value = total / self.count
        self.total, self.count = 0.0, 0
        self.last_sent = time.monotonic() if now is None else now
        if self.history:
            dojo._history.setdefault((self.name, self.split), []).append((self.step, value))
        send_metric(self.name, self.step, value, self.split)


# Losses captured automatically, per (name, split); report()'s curves, per (name, split).
_curves: dict[tuple[str, str | None], Curve] = {}
_reported: dict[tuple[str, str | None], Curve] = {}
METRIC_INTERVAL_S = 0.05
FULL_DETAIL_STEPS = 200
_not_finite: set[tuple[str, str | None]] = set()


def send_metric(name: str, step: int, value: float, split: str | None) -> None:
    if value != value or value in (float("inf"), float("-inf")):
        # JSON has no NaN: say so in the console (once per curve) instead of dropping the point
        # silently.
        if (name, split) not in _not_finite:
            _not_finite.add((name, split))
            os.write(2, f"[torchdojo] {name} is {value} at step {step}\n".encode())
        return
    message: dict[str, Any] = {"type": "metric", "name": name, "step": int(step), "value": value}
    if split:
        message["split"] = split
    send(message)


def flush_curves() -> None:
    for curve in (*_curves.values(), *_reported.values()):
        curve.flush()


def _on_loss(module: torch.nn.Module, inputs: Any, output: Any) -> None:
    if not isinstance(output, torch.Tensor) or output.numel() != 1:
        return  # reduction="none": not a single number to plot
    split = "train" if torch.is_grad_enabled() else "val"
    curve = _curves.get(("loss", split))
    if curve is None:
        curve = _curves[("loss", split)] = Curve("loss", split, METRIC_INTERVAL_S, history=True)
    curve.add(output.detach().float().reshape(()))


_original_loss_init = torch.nn.modules.loss._Loss.__init__


def _capturing_loss_init(self: Any, *args: Any, **kwargs: Any) -> None:
    _original_loss_init(self, *args, **kwargs)
    self.register_forward_hook(_on_loss)


def _report_sink(name: str, step: int | None, value: float, split: str | None) -> None:
    """report(): throttled like the captured losses (dojo.report has kept the value itself)."""
    curve = _reported.get((name, split))
    if curve is None:
        curve = _reported[(name, split)] = Curve(name, split, METRIC_INTERVAL_S, history=False)
    curve.add(value, step)


# --- figures -----------------------------------------------------------------------------------

_figures_sent = 0


def send_open_figures() -> None:
    global _figures_sent
    for number in plt.get_fignums():
        figure = plt.figure(number)
        if _figures_sent >= MAX_FIGURES:
            os.write(2, f"[torchdojo] only the first {MAX_FIGURES} figures are shown\n".encode())
        else:
            buffer = io.BytesIO()
            figure.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
            send(
                {
                    "type": "figure",
                    "format": "png",
                    "data": base64.b64encode(buffer.getvalue()).decode(),
                }
            )
            _figures_sent += 1
        plt.close(figure)


def _show(*args: Any, **kwargs: Any) -> None:
    send_open_figures()


# --- the model summary -------------------------------------------------------------------------


def send_summary(namespace: dict[str, Any], spec: dict[str, Any]) -> None:
    factory_name = spec["factory"]
    target = namespace.get(factory_name)
    try:
        if target is None:
            raise LookupError(f"your code defines no `{factory_name}`")
        model = target if isinstance(target, torch.nn.Module) else target()
        if not isinstance(model, torch.nn.Module):
            raise TypeError(f"`{factory_name}()` returned {type(model).__name__}, not an nn.Module")
        parameter = next(model.parameters(), None)
        device = parameter.device if parameter is not None else torch.device("cpu")
        result = torchinfo.summary(
            model, input_size=tuple(spec["input_size"]), verbose=0, device=device
        )
    except Exception as exc:  # the learner's model: any failure is theirs to read, not ours
        # torchinfo wraps the model's own error ("Failed to run torchinfo. See above stack
        # traces…", with no traces shown): the learner needs the error underneath.
        cause: BaseException = exc
        while cause.__cause__ is not None:
            cause = cause.__cause__
        os.write(2, f"[torchdojo] no model summary: {type(cause).__name__}: {cause}\n".encode())
        return
    rows = []
    for layer in result.summary_list:
        params = int(layer.leftover_params())
        rows.append(
            {
                "depth": int(layer.depth),
                "name": str(layer.var_name),
                "type": str(layer.class_name),
                "output_shape": layer.output_size or None,
                "params": params,
                "trainable": int(layer.leftover_trainable_params()) == params,
            }
        )
    send(
        {
            "type": "summary",
            "model": type(model).__name__,
            "input_size": list(spec["input_size"]),
            "rows": rows,
            "total_params": int(result.total_params),
            "trainable_params": int(result.trainable_params),
        }
    )


# --- running the learner's code ----------------------------------------------------------------


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


# --- checks ------------------------------------------------------------------------------------


def _first_paragraph(text: str) -> str:
    return text.strip().split("\n\n")[0].strip()[:2000]


class ChecksPlugin:
    """Runs a lesson's checks.py with pytest and sends one message per check, in file order."""

    def __init__(self, submission: types.ModuleType, learner_failed: dict[str, Any] | None) -> None:
        self._submission = submission
        self._learner_failed = learner_failed
        self.counts = {"passed": 0, "failed": 0, "errors": 0}

    @pytest.fixture
    def submission(self) -> types.ModuleType:
        return self._submission

    def pytest_runtest_setup(self, item: Any) -> None:
        if self._learner_failed is not None:
            line = self._learner_failed.get("line")
            where = f" on line {line}" if line else ""
            pytest.skip(f"not run: your code stopped with an error{where}; fix it first")

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_makereport(self, item: Any, call: Any) -> Any:
        outcome = yield
        report = outcome.get_result()
        report.dojo_excinfo = call.excinfo  # read in logreport below

    def pytest_runtest_logreport(self, report: Any) -> None:
        if report.when == "call" or (report.when == "setup" and not report.passed):
            function = getattr(self._items.get(report.nodeid), "function", None)
            title = getattr(function, "dojo_title", None) or report.nodeid.split("::")[-1]
            hint = getattr(function, "dojo_hint", "")
            status, message = self._outcome(report)
            if status == "passed":
                self.counts["passed"] += 1
                hint = ""
            elif status == "failed":
                self.counts["failed"] += 1
            elif status == "error":
                self.counts["errors"] += 1
            send(
                {
                    "type": "test",
                    "name": title,
                    "status": status,
                    "message": message,
                    "hint": hint,
                    "duration_ms": round(report.duration * 1000, 3),
                }
            )

    @staticmethod
    def _outcome(report: Any) -> tuple[str, str]:
        if report.passed:
            return "passed", ""
        if report.skipped:
            longrepr = report.longrepr
            reason = longrepr[2] if isinstance(longrepr, tuple) else str(longrepr)
            return "skipped", reason.removeprefix("Skipped: ")
        excinfo = getattr(report, "dojo_excinfo", None)
        if excinfo is None:
            return "error", _first_paragraph(str(report.longrepr))
        exc = excinfo.value
        if isinstance(exc, AssertionError):
            text = str(exc)
            # pytest appends its own explanation ("assert False\n + where …") to the check's
            # message; the learner reads the check author's words, or the bare assertion.
            own, _, explanation = text.partition("\nassert ")
            message = own if own.strip() else "assert " + explanation if explanation else text
            return "failed", _first_paragraph(message) or "the check's condition was false"
        where = ""
        for entry in reversed(excinfo.traceback):
            if os.path.basename(str(entry.path)) == LEARNER_FILE:
                where = f" (your code, line {entry.lineno + 1})"
                break
        return "error", f"{type(exc).__name__}: {_first_paragraph(str(exc))}{where}"

    def pytest_collection_modifyitems(self, items: list[Any]) -> None:
        self._items = {item.nodeid: item for item in items}

    def pytest_collectreport(self, report: Any) -> None:
        if report.failed:
            self.counts["errors"] += 1
            send(
                {
                    "type": "test",
                    "name": "loading the checks",
                    "status": "error",
                    "message": _first_paragraph(str(report.longrepr))[-2000:],
                    "hint": "The checks could not be loaded. If your code defines every name the "
                    "exercise asks for, tell your instructor.",
                    "duration_ms": 0.0,
                }
            )


def run_checks(
    source: str, submission: types.ModuleType, learner_failed: dict[str, Any] | None
) -> dict[str, int]:
    folder = os.path.join(WORK_DIR, ".checks")
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, CHECKS_FILE)
    with open(path, "w") as handle:
        handle.write(source)
    plugin = ChecksPlugin(submission, learner_failed)
    plugin._items = {}
    # unraisableexception runs gc.collect() over and over at session end: 0.7 s of nothing.
    args = [
        path,
        "-p",
        "no:cacheprovider",
        "-p",
        "no:terminal",
        "-p",
        "no:unraisableexception",
        "--rootdir",
        folder,
        "-c",
        os.devnull,
        "-s",
        "-W",
        "ignore::DeprecationWarning",
    ]
    sys.stdout.flush()
    pytest.main(args, plugins=[plugin])
    return plugin.counts


# --- one job -----------------------------------------------------------------------------------


def apply_limits(limits: dict[str, Any]) -> None:
    """Lower the limits the pool started us with to this job's (lowering needs no privilege)."""
    file_bytes = int(limits["file_mb"]) * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_FSIZE, (file_bytes, file_bytes))
    if limits.get("processes"):
        # This job's processes and threads. Since Linux 5.14 the count is kept per user
        # namespace, so unprivileged (one uid for every slot, a user namespace per sandbox)
        # this bounds this sandbox alone; as root each slot has its own uid anyway.
        nproc = int(limits["processes"])
        resource.setrlimit(resource.RLIMIT_NPROC, (nproc, nproc))
    if limits.get("address_space"):
        total = int(limits["memory_mb"]) * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (total, total))


def hide_message_pipe() -> None:
    """Move the message pipe away from fd 3 to a random high number.

    Printing can never reach this pipe (stdout and stderr are other pipes). Learner code runs in
    this same process, so a learner who goes looking can still find it; what they can forge
    that way is their own check result, never another learner's run, the service or the host.
    """
    global EVENT_FD
    import fcntl
    import random

    new_fd = fcntl.fcntl(EVENT_FD, fcntl.F_DUPFD_CLOEXEC, random.randint(300, 900))
    os.close(EVENT_FD)
    EVENT_FD = new_fd


def run_job(job: dict[str, Any]) -> int:
    # The supervisor takes as the result only a message carrying this token. The learner's code
    # runs in this process and could dig it out of memory (their own run is theirs to fool);
    # it can no longer be forged by writing to every descriptor in /proc/self/fd.
    token = job.pop("token", None)
    apply_limits(job["limits"])
    hide_message_pipe()
    if job.get("gpu") is not None:
        os.environ["CUDA_VISIBLE_DEVICES"] = str(job["gpu"])
    torch.manual_seed(0)
    torch.nn.modules.loss._Loss.__init__ = _capturing_loss_init
    dojo._metric_sink = _report_sink
    plt.show = _show

    module, error, exit_code = run_learner_code(job["code"])
    flush_curves()
    if plt.get_fignums():
        send_open_figures()
    if job.get("summary") and error is None:
        send_summary(module.__dict__, job["summary"])

    tests = None
    if job.get("mode") == "check" and job.get("checks") is not None:
        tests = run_checks(job["checks"], module, error)
        flush_curves()
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
    send(result)
    return exit_code


def main() -> None:
    device = "cpu"
    send({"type": "ready", "torch": torch.__version__, "device": device, "pid": os.getpid()})
    raw = sys.stdin.buffer.read()  # the pool writes one job and closes the pipe
    if not raw:
        os._exit(0)  # the pool is shutting down
    job = json.loads(raw)
    del raw  # it holds the result token
    os.chdir(WORK_DIR)
    exit_code = run_job(job)
    # Skip interpreter teardown: learner threads or atexit hooks must not hold the run open.
    os._exit(exit_code & 0xFF)


if __name__ == "__main__":
    main()
