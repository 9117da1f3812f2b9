"""The runner's event protocol (docs/runner-protocol.md).

One JSON object per event: NDJSON over HTTP and the CLI, SSE ``data:`` in the browser.
The web app imports these models too, so both sides agree on every field.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

# 2: `queued` events before `started`, and the request's `owner` for fair queueing.
PROTOCOL_VERSION = 2

RunMode = Literal["run", "check"]
DoneStatus = Literal[
    "completed", "error", "timeout", "memory_limit", "output_limit", "cancelled", "internal_error"
]
TestStatus = Literal["passed", "failed", "error", "skipped"]


class SandboxLimits(BaseModel):
    """Per-run limits. A lesson may lower or raise them within the admin's maximums."""

    model_config = ConfigDict(extra="forbid")

    wall_s: float = Field(60.0, gt=0, le=3600, description="wall-clock seconds for the whole run")
    memory_mb: int = Field(2048, ge=64, le=262144, description="memory for the sandbox, MiB")
    processes: int = Field(64, ge=8, le=4096, description="processes and threads at once")
    output_kb: int = Field(1024, ge=1, le=65536, description="stdout+stderr bytes, KiB")
    file_mb: int = Field(64, ge=1, le=65536, description="largest file the code may write, MiB")
    tmpfs_mb: int = Field(256, ge=8, le=65536, description="the writable scratch space, MiB")

    def above(self, maximum: SandboxLimits) -> list[str]:
        """What these limits ask for beyond ``maximum``, one readable line per limit."""
        return [
            f"limits.{name} is {getattr(self, name):g}; this runner allows at most "
            f"{getattr(maximum, name):g}"
            for name in type(self).model_fields
            if getattr(self, name) > getattr(maximum, name)
        ]

    def capped(self, maximum: SandboxLimits) -> SandboxLimits:
        """These limits, none above ``maximum``'s."""
        return SandboxLimits(
            **{
                name: min(getattr(self, name), getattr(maximum, name))
                for name in type(self).model_fields
            }
        )


class SummarySpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    factory: str = Field(
        ...,
        pattern=r"^[A-Za-z_][A-Za-z0-9_]*$",
        description="name in the learner's code: a function returning an nn.Module, or the module",
    )
    input_size: list[int] = Field(..., min_length=1, max_length=8)


class RunRequest(BaseModel):
    """Everything one run needs: the runner reads no database and no lesson files."""

    model_config = ConfigDict(extra="forbid")

    code: str
    mode: RunMode = "run"
    checks: str | None = None
    summary: SummarySpec | None = None
    limits: SandboxLimits | None = None
    owner: str | None = Field(
        None,
        max_length=200,
        description="an opaque key for the learner: queued runs are served round-robin by "
        "owner, so one learner's burst never holds up another learner",
    )


# --- events ---------------------------------------------------------------------------------


class _Event(BaseModel):
    model_config = ConfigDict(extra="forbid")

    seq: int = Field(..., ge=0)
    t: float = Field(..., ge=0)


class Queued(_Event):
    """The run waits for a sandbox; sent when its place in line changes, before `started`."""

    type: Literal["queued"] = "queued"
    position: int = Field(..., ge=1, description="1: the next run to start")


class LimitsInfo(BaseModel):
    wall_s: float
    memory_mb: int
    output_kb: int


class Started(_Event):
    type: Literal["started"] = "started"
    device: str
    torch: str
    limits: LimitsInfo
    protocol: int = PROTOCOL_VERSION


class Output(_Event):
    type: Literal["output"] = "output"
    stream: Literal["stdout", "stderr"]
    text: str


class SummaryRow(BaseModel):
    depth: int
    name: str
    type: str
    output_shape: list[int] | list[list[int]] | None
    params: int
    trainable: bool


class Summary(_Event):
    type: Literal["summary"] = "summary"
    model: str
    input_size: list[int]
    rows: list[SummaryRow]
    total_params: int
    trainable_params: int


class Metric(_Event):
    type: Literal["metric"] = "metric"
    name: str
    step: int
    value: float
    split: Literal["train", "val"] | None = None


class Figure(_Event):
    type: Literal["figure"] = "figure"
    format: Literal["png", "svg"]
    data: str


class Test(_Event):
    __test__ = False  # not a pytest class

    type: Literal["test"] = "test"
    name: str
    status: TestStatus
    message: str = ""
    hint: str = ""
    duration_ms: float = 0.0


class TestCounts(BaseModel):
    __test__ = False

    passed: int = 0
    failed: int = 0
    errors: int = 0


class ErrorInfo(BaseModel):
    type: str
    message: str
    line: int | None = None


class Done(_Event):
    type: Literal["done"] = "done"
    status: DoneStatus
    exit_code: int | None = None
    duration_ms: float
    tests: TestCounts | None = None
    error: ErrorInfo | None = None

    @classmethod
    def ending(
        cls, seq: int, seconds: float, status: DoneStatus, error: ErrorInfo | None = None
    ) -> Done:
        """The `done` the platform writes when it ends a run itself (a stop, a failure, a
        restart), `seconds` after the run was asked for: the one way every part builds one."""
        seconds = max(seconds, 0.0)
        return cls(
            seq=seq,
            t=round(seconds, 6),
            status=status,
            duration_ms=round(seconds * 1000, 3),
            error=error,
        )


Event = Annotated[
    Queued | Started | Output | Summary | Metric | Figure | Test | Done,
    Field(discriminator="type"),
]
EventAdapter: TypeAdapter[Event] = TypeAdapter(Event)


def parse_event(line: str | bytes) -> Event:
    """One NDJSON line back into its event model."""
    return EventAdapter.validate_json(line)


def dump_event(event: Event) -> str:
    """One event as a single JSON line (no trailing newline)."""
    return event.model_dump_json(exclude_none=True)
