"""The runner service over real HTTP on a GPU host: what /healthz and `started` say.

No GPU exists where these tests run, so ``RUNNER_GPU_DEV_ROOT`` points the service at a stand-in
for /dev (empty files named ``nvidia0``, ``nvidiactl``, ``nvidia-uvm``); that is the only stand-in.
The service (``python -m runner serve``), its sandboxes and HTTP are real. CUDA itself is
checked by ``bench/gpu_check.sh`` on a GPU machine.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from runner.protocol import Done, Started, parse_event

ROOT = Path(__file__).resolve().parents[2]
DEVICE = re.compile(r"cuda:0 \(.+\)")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def gpu_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    dev = tmp_path_factory.mktemp("dev")
    for name in ("nvidia0", "nvidiactl", "nvidia-uvm"):
        (dev / name).write_text("")
    port = _free_port()
    env = {**os.environ, "RUNNER_POOL_SIZE": "1", "RUNNER_GPU_DEV_ROOT": str(dev)}
    process = subprocess.Popen(
        [sys.executable, "-m", "runner", "serve", "--port", str(port)],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/healthz").json()["pool"]["warm"] == 1:
                break
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    else:
        process.kill()
        assert process.stderr is not None
        pytest.fail(f"runner service did not get warm: {process.stderr.read().decode()[-2000:]}")
    yield url
    process.terminate()
    process.wait(20)


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
