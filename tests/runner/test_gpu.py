"""GPU discovery, per-slot assignment and isolation, without a GPU.

This is the one place in the suite where a stand-in replaces the real thing: no NVIDIA GPU
exists on the machines that run these tests, so a temporary folder with empty files named
``nvidia0``, ``nvidia1``, ``nvidiactl`` and ``nvidia-uvm`` plays ``/dev`` (and one with
``information`` files plays ``/proc/driver/nvidia/gpus``). Everything else is real: the
bubblewrap sandboxes bind those files as they would bind the device nodes, and the learner's
code looks at its own ``/dev`` and environment from inside. What cannot be checked here is
CUDA itself; ``bench/gpu_check.sh`` does that on a GPU machine.
"""

from __future__ import annotations

import asyncio
import re
import time
from pathlib import Path
from typing import Any

import pytest

from runner.config import RunnerSettings
from runner.gpu import GpuDevice, GpuLoad, discover
from runner.pool import WarmPool
from runner.protocol import Done, Event, Output, RunRequest, Started
from runner.sandbox.command import Identity, ZygoteFds, zygote_command

H100 = "NVIDIA H100 80GB HBM3"


def fake_dev(root: Path, gpus: int = 2) -> Path:
    """A stand-in for /dev: `gpus` GPU nodes, two control nodes, and things that are no GPU."""
    root.mkdir(parents=True, exist_ok=True)
    for name in [f"nvidia{i}" for i in range(gpus)] + ["nvidiactl", "nvidia-uvm", "null"]:
        (root / name).write_text("")
    (root / "nvidia-caps").mkdir()  # MIG capabilities: not a GPU
    return root


def fake_proc(root: Path, models: dict[int, str]) -> Path:
    """A stand-in for /proc/driver/nvidia/gpus, one folder per GPU as the driver writes it."""
    for minor, model in models.items():
        folder = root / f"0000:{0x18 + minor:02x}:00.0"
        folder.mkdir(parents=True)
        (folder / "information").write_text(
            f"Model: \t\t {model}\nIRQ:   \t\t 17\nGPU UUID: \t GPU-{minor}abc\n"
            f"Bus Location: \t 0000:{0x18 + minor:02x}:00.0\nDevice Minor: \t {minor}\n"
        )
    return root


def test_discovery_finds_gpu_nodes_names_and_present_control_nodes(tmp_path: Path) -> None:
    dev = fake_dev(tmp_path / "dev", gpus=2)
    proc = fake_proc(tmp_path / "proc", {0: H100, 1: "NVIDIA A100-SXM4-40GB"})
    devices = discover(dev, proc)
    assert [(d.minor, d.name) for d in devices] == [(0, H100), (1, "NVIDIA A100-SXM4-40GB")]
    assert devices[1].node == dev / "nvidia1"
    # nvidia-uvm-tools and nvidia-modeset are absent here, so they are not bound.
    assert devices[0].controls == ("nvidiactl", "nvidia-uvm")
    assert devices[0].described == f"cuda:0 ({H100})"


def test_no_gpu_nodes_means_no_gpus(tmp_path: Path) -> None:
    dev = tmp_path / "dev"
    dev.mkdir()
    (dev / "nvidiactl").write_text("")  # a driver without GPUs still has its control node
    assert discover(dev, tmp_path / "absent") == []
    assert discover(tmp_path / "no-such-dev", tmp_path / "absent") == []


def test_names_fall_back_to_the_minor_number(tmp_path: Path) -> None:
    dev = fake_dev(tmp_path / "dev", gpus=1)
    (dev / "nvidia3").write_text("")
    # Without the driver's /proc files, a GPU is named after its node.
    assert [d.name for d in discover(dev, tmp_path / "absent")] == ["GPU 0", "GPU 3"]


def test_slots_take_turns_over_gpus_and_each_gpu_takes_one_run() -> None:
    devices = [GpuDevice(0, H100), GpuDevice(1, H100)]
    load = GpuLoad(devices, per_device=1)
    assert [load.for_slot(slot).minor for slot in range(5)] == [0, 1, 0, 1, 0]
    load.claim(devices[0])
    assert not load.has_room(devices[0]) and load.has_room(devices[1])
    with pytest.raises(RuntimeError, match="already runs 1 job"):
        load.claim(devices[0])
    load.release(devices[0])
    assert load.has_room(devices[0])
    # /healthz names what a run's `started.device` will say, once per distinct GPU model.
    assert load.described == f"cuda:0 ({H100})"
    mixed = GpuLoad([GpuDevice(0, H100), GpuDevice(1, "NVIDIA L4")])
    assert mixed.described == f"cuda:0 ({H100}) | cuda:0 (NVIDIA L4)"


def _command(gpu: GpuDevice | None) -> list[str]:
    fds = ZygoteFds(*range(3, 10))
    return zygote_command(
        RunnerSettings(pool_size=2),
        bwrap="bwrap",
        fds=fds,
        identity=Identity(1000, (1001, 1002)),
        privileged=True,
        gpu=gpu,
    )


def test_a_zygote_binds_only_its_own_gpu_node_and_the_control_nodes(tmp_path: Path) -> None:
    dev = fake_dev(tmp_path / "dev", gpus=2)
    gpu = discover(dev, tmp_path / "absent")[1]
    args = _command(gpu)
    binds = [(args[i + 1], args[i + 2]) for i, arg in enumerate(args) if arg == "--dev-bind"]
    assert binds == [
        (str(dev / "nvidia1"), "/dev/nvidia1"),
        (str(dev / "nvidiactl"), "/dev/nvidiactl"),
        (str(dev / "nvidia-uvm"), "/dev/nvidia-uvm"),
    ]
    assert not any("nvidia0" in arg for arg in args)
    # Bound before /dev is made read-only, so they are there.
    assert args.index("--dev-bind") < args.index("--remount-ro")
    # bubblewrap applies --clearenv where it stands: the variable must be set after it.
    setenv = args.index("CUDA_DEVICE_ORDER") - 1
    assert args[setenv] == "--setenv" and args[setenv + 2] == "PCI_BUS_ID"
    assert setenv > args.index("--clearenv")
    # A CPU zygote binds no NVIDIA node at all.
    cpu_args = _command(None)
    assert "--dev-bind" not in cpu_args and "CUDA_DEVICE_ORDER" not in cpu_args


# What a job sees of the GPUs: its /dev and its CUDA variables, then it holds its GPU a while.
LOOK = """
import os, time
print(sorted(n for n in os.listdir("/dev") if n.startswith("nvidia")))
print(os.environ.get("CUDA_DEVICE_ORDER"), os.environ.get("CUDA_VISIBLE_DEVICES"), flush=True)
time.sleep({hold})
"""


async def timed_run(pool: WarmPool, code: str) -> list[tuple[float, Event]]:
    return [(time.monotonic(), event) async for event in pool.run(RunRequest(code=code))]


def first(events: list[tuple[float, Event]], kind: type) -> tuple[float, Any]:
    return next((t, e) for t, e in events if isinstance(e, kind))


def stdout_of(events: list[tuple[float, Event]]) -> list[str]:
    text = "".join(e.text for _, e in events if isinstance(e, Output) and e.stream == "stdout")
    return text.splitlines()


def test_two_runs_get_different_gpus_and_a_third_waits_for_one(tmp_path: Path) -> None:
    """Pool of 3 on 2 GPUs: slots 0 and 2 share GPU 0. Two runs at once land on different
    GPUs; a third waits, although a sandbox is warm, until a GPU is free."""
    dev = fake_dev(tmp_path / "dev", gpus=2)
    settings = RunnerSettings(pool_size=3, queue_size=8, gpu_dev_root=str(dev))

    async def scenario() -> dict[str, Any]:
        async with WarmPool(settings, size=3) as pool:
            assert pool.gpus is not None and len(pool.gpus.devices) == 2
            first_two = [
                asyncio.create_task(timed_run(pool, LOOK.format(hold=3))) for _ in range(2)
            ]
            while pool.stats["busy"] < 2:
                await asyncio.sleep(0.02)
            third = asyncio.create_task(timed_run(pool, LOOK.format(hold=0)))
            await asyncio.sleep(1)
            while_waiting = dict(pool.stats)
            return {
                "device": pool.device,
                "first_two": await asyncio.gather(*first_two),
                "third": await third,
                "while_waiting": while_waiting,
            }

    result = asyncio.run(scenario())
    assert re.fullmatch(r"cuda:0 \(.+\)( \| cuda:0 \(.+\))*", result["device"]), result["device"]
    seen = []
    for events in result["first_two"]:
        _, started = first(events, Started)
        _, done = first(events, Done)
        assert done.status == "completed", done
        assert re.fullmatch(r"cuda:0 \(.+\)", started.device), started.device
        nodes, env = stdout_of(events)
        seen.append(nodes)
        # Inside: its own GPU and the control nodes, no other GPU; CUDA numbers it 0.
        assert env == "PCI_BUS_ID 0"
    assert sorted(seen) == [
        "['nvidia-uvm', 'nvidia0', 'nvidiactl']",
        "['nvidia-uvm', 'nvidia1', 'nvidiactl']",
    ]
    # The third run waited with sandboxes warm (both GPUs busy), not for a sandbox, and was
    # told its place in line.
    assert result["while_waiting"]["busy"] == 2 and result["while_waiting"]["queued"] == 1
    assert result["while_waiting"]["warm"] >= 1
    assert [e.position for _, e in result["third"] if e.type == "queued"] == [1]
    third_started, _ = first(result["third"], Started)
    first_done = min(first(events, Done)[0] for events in result["first_two"])
    assert third_started >= first_done
    assert first(result["third"], Done)[1].status == "completed"
