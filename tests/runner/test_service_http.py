"""The runner service over real HTTP on a GPU host: what /healthz and `started` say.

No GPU exists where these tests run, so ``RUNNER_GPU_DEV_ROOT`` points the service at a stand-in
for /dev (empty files named ``nvidia0``, ``nvidiactl``, ``nvidia-uvm``); that is the only stand-in.
The service (``python -m runner serve``), its sandboxes and HTTP are real. CUDA itself is
checked by ``bench/gpu_check.sh`` on a GPU machine.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from runner.protocol import Done, Started, parse_event
from tests.support.runner import runner_service

ROOT = Path(__file__).resolve().parents[2]
DEVICE = re.compile(r"cuda:0 \(.+\)")


@pytest.fixture(scope="module")
def gpu_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    dev = tmp_path_factory.mktemp("dev")
    for name in ("nvidia0", "nvidiactl", "nvidia-uvm"):
        (dev / name).write_text("")
    with runner_service({"RUNNER_POOL_SIZE": "1", "RUNNER_GPU_DEV_ROOT": str(dev)}) as running:
        yield running.url


def test_healthz_device_is_what_a_run_starts_on(gpu_service: str) -> None:
    health = httpx.get(f"{gpu_service}/healthz").json()
    assert health["status"] == "ok"
    assert DEVICE.fullmatch(health["device"]), health["device"]
    code = "import os\nprint(sorted(n for n in os.listdir('/dev') if n.startswith('nvidia')))"
    with httpx.stream("POST", f"{gpu_service}/v1/runs", json={"code": code}, timeout=60) as reply:
        assert reply.status_code == 200
        events = [parse_event(line) for line in reply.iter_lines() if line]
    started, done = events[0], events[-1]
    assert isinstance(started, Started) and isinstance(done, Done), events
    assert done.status == "completed", done
    # The same words in both places, as the web app shows them.
    assert started.device == health["device"]
    output = "".join(e.text for e in events if e.type == "output")
    assert output == "['nvidia-uvm', 'nvidia0', 'nvidiactl']\n"
