"""The runner's settings: one class, read from RUNNER_* environment variables."""

from __future__ import annotations

import os
import sys
from functools import lru_cache

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from runner.logs import LogFormat
from runner.protocol import SandboxLimits


class RunnerSettings(BaseSettings):
    """Every option of the runner service and its sandbox pool."""

    model_config = SettingsConfigDict(
        env_prefix="RUNNER_", env_nested_delimiter="__", extra="ignore"
    )

    pool_size: int = Field(
        default_factory=lambda: os.cpu_count() or 1,
        ge=1,
        le=256,
        description="warm sandboxes kept ready (default: the CPU count)",
    )
    queue_size: int = Field(
        64, ge=0, le=10000, description="runs that may wait for a sandbox; past it: 503"
    )
    max_code_kb: int = Field(
        256, ge=1, le=16384, description="largest learner code or checks file, KiB"
    )
    default_limits: SandboxLimits = Field(
        default_factory=SandboxLimits, description="limits of a run that names none"
    )
    max_limits: SandboxLimits = Field(
        default_factory=lambda: SandboxLimits(
            wall_s=300, memory_mb=8192, processes=256, output_kb=8192, file_mb=256, tmpfs_mb=1024
        ),
        description="the most any lesson may ask for",
    )
    owner_max_active: int = Field(
        2,
        ge=1,
        le=256,
        description="runs one owner (a learner) may have running at once; the rest of theirs "
        "wait while other owners' runs start, round-robin",
    )
    queue_timeout_s: float = Field(
        900, gt=0, description="how long a queued run may wait for a sandbox before it fails"
    )
    tmpfs_mb: int = Field(
        256, ge=8, le=65536, description="size of each sandbox's writable /tmp, MiB"
    )
    warmup_timeout_s: float = Field(
        120, gt=0, description="how long a new zygote (or one sandbox) may take to get ready"
    )
    touch_when_idle: bool = Field(
        True,
        description="a sandbox forked while no run waits runs the zygote's neutral warm-up once "
        "more before it is ready, so its job does not pay for first touches of memory (costs "
        "its CPU then, and a few MiB each)",
    )
    zygote_max_jobs: int = Field(
        2000, ge=1, description="sandboxes a zygote forks before a fresh one replaces it"
    )
    zygote_max_age_s: float = Field(
        3600, gt=0, description="seconds a zygote serves before a fresh one replaces it"
    )
    uid_base: int = Field(
        0x60000000,
        ge=1000,
        lt=2**31 - 2**24,
        description="when run as root: the first host uid of the sandboxes; each runner on the "
        "host leases its own block of 1024 uids from here (the zygote's, then one per sandbox)",
    )
    uid_blocks: int = Field(
        256, ge=1, le=65536, description="how many uid blocks runners on one host may lease"
    )
    state_dir: str = Field(
        "/run/torchdojo",
        description="when run as root: where runners on this host keep their uid-block locks",
    )
    cgroups: bool = Field(
        True, description="use cgroups for memory and process limits where writable"
    )
    bwrap: str = Field("bwrap", description="the bubblewrap executable")
    python: str = Field(
        # normpath: a Python started as ../../.venv/bin/python must not carry folders that the
        # sandbox does not have into its path.
        default_factory=lambda: os.path.normpath(os.path.abspath(sys.executable)),
        description="the Python that runs inside the sandbox",
    )
    threads_per_run: int | None = Field(
        None,
        ge=1,
        le=256,
        description="CPU threads each run may use (default: CPU count / pool size, at least 1; "
        "more threads than cores makes OpenMP spin and slows every run down)",
    )
    gpu_jobs_per_device: int = Field(1, ge=1, le=64, description="concurrent runs per GPU")
    gpu_dev_root: str = Field(
        "/dev",
        description="folder holding the NVIDIA device nodes (nvidia0, nvidiactl, nvidia-uvm...); "
        "each sandbox gets one GPU's node and the control nodes",
    )
    log_level: str = Field("info", description="log level: debug, info, warning, error")
    log_format: LogFormat = Field(
        "text", description="log lines: text for people, json (one object a line) for log stores"
    )


def lesson_maximum(settings: RunnerSettings) -> SandboxLimits:
    """The most a lesson may ask for: the admin's maximums, and no more scratch space than the
    sandboxes' tmpfs mounts hold. A request above it is refused, never quietly lowered."""
    return settings.max_limits.model_copy(
        update={"tmpfs_mb": min(settings.max_limits.tmpfs_mb, settings.tmpfs_mb)}
    )


@lru_cache
def get_settings() -> RunnerSettings:
    return RunnerSettings()
