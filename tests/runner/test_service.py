"""The runner service over real HTTP (uvicorn in a subprocess), and the CLI."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from runner.protocol import Done, parse_event

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def service() -> Iterator[str]:
    port = _free_port()
    env = {
        **os.environ,
        "RUNNER_POOL_SIZE": "1",
        "RUNNER_QUEUE_SIZE": "0",
        "RUNNER_MAX_CODE_KB": "4",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "runner", "serve", "--port", str(port)],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/healthz").json()["pool"]["warm"] == 1:
                break
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    else:
        process.kill()
        pytest.fail(f"runner service did not get warm: {process.stderr.read().decode()[-2000:]}")
    yield url
    process.terminate()
    process.wait(20)


def _wait_warm(url: str) -> None:
    deadline = time.monotonic() + 120
    while httpx.get(f"{url}/healthz").json()["pool"]["warm"] < 1:
        assert time.monotonic() < deadline, "the pool did not refill"
        time.sleep(0.1)


def _run(url: str, body: dict) -> list:
    with httpx.stream("POST", f"{url}/v1/runs", json=body, timeout=60) as response:
        assert response.status_code == 200, response.read()
        assert response.headers["content-type"].startswith("application/x-ndjson")
        return [parse_event(line) for line in response.iter_lines() if line]


def test_run_streams_ndjson_events(service: str) -> None:
    _wait_warm(service)
    events = _run(service, {"code": "print('hi')\nprint('there')", "mode": "run"})
    assert events[0].type == "started" and isinstance(events[-1], Done)
    assert "".join(e.text for e in events if e.type == "output") == "hi\nthere\n"
    assert events[-1].status == "completed"


def test_health_reports_pool_and_device(service: str) -> None:
    body = httpx.get(f"{service}/healthz").json()
    assert body["status"] == "ok" and set(body["pool"]) == {"warm", "busy", "queued"}
    assert body["device"] == "cpu" or body["device"].startswith("cuda")


def test_invalid_body_is_422_with_readable_detail(service: str) -> None:
    response = httpx.post(f"{service}/v1/runs", json={"code": "print(1)", "mode": "sprint"})
    assert response.status_code == 422
    assert "mode" in json.dumps(response.json()["detail"])


def test_oversized_code_is_413(service: str) -> None:
    response = httpx.post(f"{service}/v1/runs", json={"code": "x = 1\n" * 2000})
    assert response.status_code == 413
    assert "limit is 4 KiB" in response.json()["detail"]


def test_full_queue_is_503_with_retry_after_and_disconnect_cancels(service: str) -> None:
    _wait_warm(service)
    slow = {
        "code": "import time\nprint('busy', flush=True)\ntime.sleep(30)",
        "limits": {"wall_s": 40},
    }
    with httpx.stream("POST", f"{service}/v1/runs", json=slow, timeout=60) as response:
        lines = response.iter_lines()
        assert parse_event(next(lines)).type == "started"
        # The only sandbox is busy and the queue holds none: the next run is refused at once.
        refused = httpx.post(f"{service}/v1/runs", json={"code": "print(1)"})
        assert refused.status_code == 503
        assert int(refused.headers["Retry-After"]) >= 1
        assert "busy" in refused.json()["detail"]
    # Closing the connection cancelled the sleeping run: the pool frees up long before 30 s.
    started = time.monotonic()
    _wait_warm(service)
    assert time.monotonic() - started < 25
    metrics = httpx.get(f"{service}/metrics").text
    assert 'torchdojo_runner_runs_total{status="cancelled"} 1.0' in metrics
    assert "torchdojo_runner_queue_wait_seconds_bucket" in metrics
    assert 'torchdojo_runner_pool_sandboxes{state="warm"}' in metrics


def test_cli_runs_a_file_and_exits_zero_whatever_the_code_did(tmp_path: Path) -> None:
    program = tmp_path / "broken.py"
    program.write_text("print('before')\nraise ValueError('bad value')\n")
    result = subprocess.run(
        [sys.executable, "-m", "runner", "run", str(program)],
        capture_output=True,
        text=True,
        timeout=180,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr
    events = [parse_event(line) for line in result.stdout.splitlines()]
    done = events[-1]
    assert isinstance(done, Done) and done.status == "error"
    assert done.error is not None and done.error.line == 2 and done.error.type == "ValueError"


def test_without_bubblewrap_the_runner_refuses_to_start(tmp_path: Path) -> None:
    program = tmp_path / "hello.py"
    program.write_text("print('hi')\n")
    env = {**os.environ, "RUNNER_BWRAP": "bwrap-not-installed"}
    result = subprocess.run(
        [sys.executable, "-m", "runner", "run", str(program)],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        cwd=ROOT,
    )
    assert result.returncode == 2
    assert result.stdout == ""  # nothing ran, sandboxed or not
    assert "bubblewrap" in result.stderr and "apt-get install bubblewrap" in result.stderr
