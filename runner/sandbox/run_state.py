"""One run's state on the supervisor's side: its clock, what it has seen, and its `done`.

The supervisor owns the framing: it stamps every event (seq without gaps, t), passes on only
the kinds of message the harness sends during a job, takes the first `result` that carries the
run's token as final and reads nothing from the pipe after it, and writes the one `done`
itself. Anything else on the pipe (learner code can write to it: it runs in the harness's
process) is counted and dropped; the run goes on. Dropping, not failing the run: a malformed
line is only ever the learner's doing (the harness writes whole JSON lines), it cannot reach
anyone else's run, and it is never the runner's fault, so it must not read as internal_error.
"""

from __future__ import annotations

import contextlib
import hmac
import json
import logging
import secrets
import signal
import time
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from runner.protocol import (
    Done,
    DoneStatus,
    ErrorInfo,
    Event,
    EventAdapter,
    Output,
    SandboxLimits,
    TestCounts,
)

log = logging.getLogger("runner.sandbox")

MESSAGE_LIMIT = 32 * 1024 * 1024  # one harness message (a figure) at most
# What one run may send on the message pipe (the web app stores every event): past a cap, the
# rest of that kind is dropped and the learner reads one notice on stderr. The harness throttles
# chart points to ~20 a second per curve after the first 200, so honest code stays far below.
MESSAGE_CAPS = {"metric": 10_000, "test": 1_000, "figure": 20, "summary": 1}
MESSAGE_BYTES = 32 * 1024 * 1024  # all structured messages of one run together
# What the message pipe may carry once the job runs: `started` and `done` are the supervisor's
# alone, `output` comes from fd 1 and 2 only.
PIPE_EVENTS = frozenset(MESSAGE_CAPS)
MEMORY_ERRORS = ("MemoryError", "OutOfMemoryError")
_NO_COUNTS = ("RunnerError", "MemoryLimit")

EndedBy = Literal["timeout", "output_limit", "tmpfs", "cancelled"]


@dataclass
class RunClock:
    """Numbers events and stamps them with seconds since the run was asked for."""

    start: float
    seq: int = 0

    def stamp(self) -> dict[str, Any]:
        fields = {"seq": self.seq, "t": round(max(0.0, time.monotonic() - self.start), 6)}
        self.seq += 1
        return fields

    def elapsed_ms(self) -> float:
        return round((time.monotonic() - self.start) * 1000, 3)


def internal_error(clock: RunClock, message: str) -> Done:
    """The run's `done` when the runner failed it; `message` is a sentence for the learner."""
    stamp = clock.stamp()
    error = ErrorInfo(type="RunnerError", message=message)
    return Done.ending(stamp["seq"], stamp["t"], "internal_error", error)


class HarnessResult(BaseModel):
    """The harness's last message: how the learner's code ended and what the checks counted."""

    model_config = ConfigDict(extra="ignore")

    token: str
    status: Literal["completed", "error"]
    exit_code: int | None = None
    tests: TestCounts | None = None
    error: ErrorInfo | None = None


class RunState:
    """What one run has seen so far, and the Done it ends with."""

    def __init__(self, limits: SandboxLimits) -> None:
        self.limits = limits
        self.output_budget = limits.output_kb * 1024
        self.result: HarnessResult | None = None
        self.ended_by: EndedBy | None = None
        self.internal: str | None = None  # the runner's own failure, for the learner to read
        self.dropped = 0  # pipe lines that were not a harness message
        self.sent: dict[str, int] = dict.fromkeys(MESSAGE_CAPS, 0)
        self.message_bytes = 0
        self.capped: set[str] = set()
        self.tmpfs_used = 0
        self.token = secrets.token_hex(16)  # the harness's result carries it

    # -- what arrives --

    def accept(self, kind: str, payload: Any, clock: RunClock) -> list[Event]:
        """Events for one thing read from the sandbox: output, the tmpfs watch, a message."""
        if kind == "output":
            return self._output(payload, clock)
        if kind == "tmpfs":
            self.tmpfs_used = payload
            self.ended_by = "tmpfs"
            return []
        if self.result is not None:
            return []  # the result was the harness's last word: nothing after it counts
        if kind == "bad":
            self._drop(payload)
            return []
        return self._message(payload, clock)

    def _output(self, payload: tuple[str, str, int], clock: RunClock) -> list[Event]:
        stream, text, size = payload
        if size > self.output_budget:
            keep = text.encode()[: self.output_budget].decode(errors="ignore")
            self.output_budget = 0
            self.ended_by = "output_limit"
            return [Output(**clock.stamp(), stream=stream, text=keep)] if keep else []
        self.output_budget -= size
        return [Output(**clock.stamp(), stream=stream, text=text)]

    def _message(self, payload: bytes, clock: RunClock) -> list[Event]:
        message: Any = None
        with contextlib.suppress(ValueError):
            message = json.loads(payload)
        kind = str(message.get("type")) if isinstance(message, dict) else "not JSON"
        if kind == "result":
            self._take_result(message)
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

    def _take_result(self, message: dict[str, Any]) -> None:
        try:
            result = HarnessResult.model_validate(message)
        except ValidationError:
            self._drop("an invalid result")
            return
        if not hmac.compare_digest(result.token, self.token):
            self._drop("a result without the run's token")
            return
        self.result = result

    def _drop(self, what: str) -> None:
        self.dropped += 1
        if self.dropped == 1:
            log.warning("dropping what the run wrote to the harness pipe: %s", what)

    # -- how it ends --

    def done(self, clock: RunClock, exit_code: int | None, *, oom: bool) -> Done:
        """The run's one `done`, from what ended it: a limit, the runner, the harness's result,
        or (without a result) the way the process exited."""
        if self.dropped:
            log.info("dropped %d lines on the harness pipe", self.dropped)
        status, error, code = self._ending(exit_code, oom)
        # What the checks counted, unless the runner failed or memory ran out under them.
        counted = self.result is not None and (error is None or error.type not in _NO_COUNTS)
        return Done(
            **clock.stamp(),
            status=status,
            exit_code=code,
            duration_ms=clock.elapsed_ms(),
            tests=self.result.tests if counted and self.result else None,
            error=error,
        )

    def _ending(
        self, exit_code: int | None, oom: bool
    ) -> tuple[DoneStatus, ErrorInfo | None, int | None]:
        limits = self.limits
        if self.internal:
            return "internal_error", ErrorInfo(type="RunnerError", message=self.internal), None
        if self.ended_by == "timeout":
            message = f"Your code ran longer than the {limits.wall_s:g} s limit and was stopped."
            return "timeout", ErrorInfo(type="Timeout", message=message), None
        if self.ended_by == "output_limit":
            message = f"Your code printed more than {limits.output_kb} KiB and was stopped."
            return "output_limit", ErrorInfo(type="OutputLimit", message=message), None
        if self.ended_by == "tmpfs":
            message = (
                f"Your code's files took more than the {limits.tmpfs_mb} MiB files limit "
                f"({self.tmpfs_used // (1024 * 1024)} MiB in /tmp and /dev/shm, which live in "
                "memory) and it was stopped."
            )
            return "memory_limit", ErrorInfo(type="FilesLimit", message=message), None
        if self.ended_by == "cancelled":
            return "cancelled", None, None
        error = self.result.error if self.result else None
        if oom or (
            error is not None
            and (error.type in MEMORY_ERRORS or "can't allocate memory" in error.message)
        ):
            message = (
                f"Your code used more than the {limits.memory_mb} MiB memory limit and was stopped."
            )
            line = error.line if error else None
            return "memory_limit", ErrorInfo(type="MemoryLimit", message=message, line=line), None
        if self.result is not None:
            code = self.result.exit_code if self.result.exit_code is not None else exit_code
            return self.result.status, error, code
        return _process_ending(exit_code)


def _process_ending(exit_code: int | None) -> tuple[DoneStatus, ErrorInfo | None, int | None]:
    """The harness died without a result: the learner's code ended the process itself."""
    if exit_code is not None and exit_code > 128:
        number = exit_code - 128
        if number == signal.SIGXCPU:
            message = "Your code used up its CPU time."
            return "timeout", ErrorInfo(type="Timeout", message=message), None
        known = number in signal.Signals._value2member_map_
        name = signal.Signals(number).name if known else str(number)
        message = f"Your program was killed by signal {name}."
        return "error", ErrorInfo(type="Killed", message=message), exit_code
    if exit_code == 0:
        return "completed", None, 0
    message = f"Your program exited with code {exit_code}."
    return "error", ErrorInfo(type="Exit", message=message), exit_code
