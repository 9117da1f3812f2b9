"""NVIDIA GPUs: which exist, which one each sandbox slot gets, and how many runs use each.

A sandbox sees exactly one GPU: its own ``/dev/nvidiaN`` node and the driver's shared control
nodes are bound into it, no other GPU's node. CUDA skips GPUs whose node it cannot open, so
inside the sandbox that GPU is ``cuda:0`` whatever the learner sets ``CUDA_VISIBLE_DEVICES``
to; the isolation does not rest on an environment variable the learner's process can change.

The node is bound when the sandbox starts, before any job is known, so the GPU belongs to the
pool slot: slot k gets GPU k mod n. `GpuLoad` then lets at most ``per_device`` runs (default 1)
use one GPU at a time; a run whose slot's GPU is full waits for another slot.
"""

from __future__ import annotations

import contextlib
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

DEV_ROOT = Path("/dev")
PROC_GPUS = Path("/proc/driver/nvidia/gpus")  # one folder per GPU, named by its PCI address
# Shared by every GPU: the driver's control node, unified memory (CUDA needs it), its tools
# node and mode setting. Bound where present; none of them gives access to another GPU.
CONTROL_NODES = ("nvidiactl", "nvidia-uvm", "nvidia-uvm-tools", "nvidia-modeset")


@dataclass(frozen=True)
class GpuDevice:
    """One GPU: its device node's minor number, its name and the control nodes beside it."""

    minor: int
    name: str
    dev_root: Path = DEV_ROOT
    controls: tuple[str, ...] = ()  # the CONTROL_NODES present beside it

    @property
    def node(self) -> Path:
        return self.dev_root / f"nvidia{self.minor}"

    @property
    def described(self) -> str:
        """What `started.device` says: each run sees its one GPU as cuda:0."""
        return f"cuda:0 ({self.name})"

    def bind_args(self) -> list[str]:
        """bubblewrap arguments binding this GPU's node and the control nodes, nothing else.

        Inside the sandbox they appear under /dev whatever folder they were found in."""
        args: list[str] = []
        for path in (self.node, *(self.dev_root / name for name in self.controls)):
            args += ["--dev-bind", str(path), f"/dev/{path.name}"]
        return args

    @property
    def environment(self) -> dict[str, str]:
        """Variables for the sandbox: number GPUs in PCI order, like nvidia-smi and /dev."""
        return {"CUDA_DEVICE_ORDER": "PCI_BUS_ID"}


def discover(dev_root: Path = DEV_ROOT, proc_gpus: Path = PROC_GPUS) -> list[GpuDevice]:
    """The GPUs whose ``nvidiaN`` node exists under `dev_root`, in minor-number order.

    Names come from the driver's /proc files (``Model:`` and ``Device Minor:``), else from
    ``nvidia-smi`` (in its order, when it lists as many GPUs as /dev has), else ``GPU N``."""
    minors = sorted(
        int(match.group(1))
        for path in (dev_root.glob("nvidia*") if dev_root.is_dir() else [])
        if (match := re.fullmatch(r"nvidia(\d+)", path.name))
    )
    if not minors:
        return []
    names = _names_from_proc(proc_gpus)
    if not names and dev_root == DEV_ROOT:  # nvidia-smi speaks of the host's own /dev
        listed = _names_from_nvidia_smi()
        if len(listed) == len(minors):
            names = dict(zip(minors, listed, strict=True))
    controls = tuple(name for name in CONTROL_NODES if (dev_root / name).exists())
    return [
        GpuDevice(minor, names.get(minor, f"GPU {minor}"), dev_root, controls) for minor in minors
    ]


def _names_from_proc(proc_gpus: Path) -> dict[int, str]:
    names: dict[int, str] = {}
    for info in sorted(proc_gpus.glob("*/information")) if proc_gpus.is_dir() else []:
        with contextlib.suppress(OSError):
            fields = dict(
                (key.strip(), value.strip())
                for key, sep, value in (
                    line.partition(":") for line in info.read_text().splitlines()
                )
                if sep
            )
            with contextlib.suppress(KeyError, ValueError):
                names[int(fields["Device Minor"])] = fields["Model"]
    return names


def _names_from_nvidia_smi() -> list[str]:
    if not shutil.which("nvidia-smi"):
        return []
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=20,
            check=True,
        ).stdout
        return [line.strip() for line in out.splitlines() if line.strip()]
    return []


@dataclass
class GpuLoad:
    """How many runs use each GPU now; at most `per_device` on one GPU at a time."""

    devices: list[GpuDevice]
    per_device: int = 1
    busy: dict[int, int] = field(default_factory=dict)

    def for_slot(self, slot: int) -> GpuDevice:
        """The GPU bound into pool slot `slot`'s sandboxes: slot k gets GPU k mod n."""
        return self.devices[slot % len(self.devices)]

    def has_room(self, device: GpuDevice) -> bool:
        return self.busy.get(device.minor, 0) < self.per_device

    def claim(self, device: GpuDevice) -> None:
        if not self.has_room(device):
            raise RuntimeError(f"{device.node} already runs {self.per_device} job(s)")
        self.busy[device.minor] = self.busy.get(device.minor, 0) + 1

    def release(self, device: GpuDevice) -> None:
        self.busy[device.minor] -= 1

    @property
    def described(self) -> str:
        """What /healthz says: the `started.device` a run gets, each distinct one once."""
        return " | ".join(dict.fromkeys(device.described for device in self.devices))
