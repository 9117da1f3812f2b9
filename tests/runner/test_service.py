"""The runner service over real HTTP (uvicorn in a subprocess), and the CLI."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from runner.protocol import Done, parse_event
from tests.support.runner import runner_service

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def service() -> Iterator[str]:
    with runner_service(
        {"RUNNER_POOL_SIZE": "1", "RUNNER_QUEUE_SIZE": "0", "RUNNER_MAX_CODE_KB": "4"},
        timeout_s=120,
    ) as running:
        yield running.url


def _wait_warm(url: str) -> None:
    deadline = time.monotonic() + 120
    while httpx.get(f"{url}/healthz").json()["pool"]["warm"] < 1:
        assert time.monotonic() < deadline, "the pool did not refill"
        time.sleep(0.1)


def _run(url: str, body: dict) -> list:
    with httpx.stream("POST", f"{url}/v1/runs", json=body, timeout=60) as response:
        assert response.status_code == 200, response.read()
        assert response.headers["content-type"].startswith("application/x-ndjson")
        events = [parse_event(line) for line in response.iter_lines() if line]
    # Exactly one done, and it is the last line of the stream; seq without gaps.
    assert [e.type for e in events].count("done") == 1 and isinstance(events[-1], Done)
    assert [e.seq for e in events] == list(range(len(events)))
    return events


def test_run_streams_ndjson_events(service: str) -> None:
    _wait_warm(service)
    events = _run(service, {"code": "print('hi')\nprint('there')", "mode": "run"})
    assert events[0].type == "started" and isinstance(events[-1], Done)
    assert "".join(e.text for e in events if e.type == "output") == "hi\nthere\n"
    assert events[-1].status == "completed"


def test_output_reaches_the_client_while_the_code_runs(service: str) -> None:
    """Streamed, not buffered: a line printed before a 1.5 s sleep arrives over HTTP well before
    the run's done."""
    _wait_warm(service)
    body = {"code": "import time\nprint('early', flush=True)\ntime.sleep(1.5)\nprint('late')"}
    arrivals = []
    with httpx.stream("POST", f"{service}/v1/runs", json=body, timeout=60) as response:
        for line in response.iter_lines():
            if line:
                arrivals.append((parse_event(line), time.monotonic()))
    events = [event for event, _ in arrivals]
    assert [e.type for e in events].count("done") == 1 and events[-1].status == "completed"
    early = next(at for e, at in arrivals if e.type == "output" and "early" in e.text)
    assert arrivals[-1][1] - early >= 1.0, [(e.type, round(at - early, 3)) for e, at in arrivals]


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


def test_body_over_the_cap_is_413_before_parsing(service: str) -> None:
    # RUNNER_MAX_CODE_KB=4: the body cap is 2 x 6 x 4 KiB + 64 KiB = 112 KiB.
    big = b'{"code": "' + b"x" * (200 * 1024) + b'"}'
    response = httpx.post(
        f"{service}/v1/runs", content=big, headers={"content-type": "application/json"}
    )
    assert response.status_code == 413 and "112 KiB limit" in response.json()["detail"]
    # The same without a Content-Length (chunked): the stream is cut off at the cap.
    chunks = (big[i : i + 8192] for i in range(0, len(big), 8192))
    response = httpx.post(
        f"{service}/v1/runs", content=chunks, headers={"content-type": "application/json"}
    )
    assert response.status_code == 413 and "112 KiB limit" in response.json()["detail"]
    response = httpx.post(
        f"{service}/v1/runs", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert response.status_code == 422


def test_limits_above_the_runners_maximum_are_422(service: str) -> None:
    # The default sandbox tmpfs is 256 MiB and at most 256 processes are allowed.
    response = httpx.post(
        f"{service}/v1/runs",
        json={"code": "print(1)", "limits": {"tmpfs_mb": 512, "processes": 1000}},
    )
    assert response.status_code == 422
    detail = response.json()["detail"]
    assert "limits.tmpfs_mb is 512; this runner allows at most 256" in detail
    assert "limits.processes is 1000; this runner allows at most 256" in detail


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
    # Closing the connection cancelled the sleeping run at once, long before its 30 s (timed
    # on the metric: the refill after it is a fresh warm-up, slow on a loaded machine).
    cancelled = 'torchdojo_runner_runs_total{status="cancelled"} 1.0'
    started = time.monotonic()
    while cancelled not in httpx.get(f"{service}/metrics").text:
        # Generous (a loaded machine), and still far from the run's own 30 s.
        assert time.monotonic() - started < 20, "closing the connection did not cancel the run"
        time.sleep(0.05)
    _wait_warm(service)
    metrics = httpx.get(f"{service}/metrics").text
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


def _readme_examples() -> tuple[str, str, str]:
    """The README's sandbox example: the program it cats, the command, and the output shown."""
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Running code in the sandbox", 1)[1]
    block = section.split("```sh\n", 1)[1].split("```", 1)[0]
    match = re.match(
        r"\$ cat hello\.py\n(?P<program>.*?)\n\$ (?P<command>[^\n]*-m runner run[^\n]*)\n"
        r"(?P<output>.*)",
        block,
        re.DOTALL,
    )
    assert match, f"the README's example changed shape:\n{block}"
    return match["program"], match["command"], match["output"]


def test_the_readme_example_runs_as_written(tmp_path: Path) -> None:
    program, command, shown = _readme_examples()
    (tmp_path / "hello.py").write_text(program)
    (tmp_path / ".venv").symlink_to(ROOT / ".venv")  # the command names .venv/bin/python
    # The sandbox binds the virtualenv at its real path (/tmp inside is the sandbox's own).
    env = {**os.environ, "RUNNER_PYTHON": str(ROOT / ".venv" / "bin" / "python")}
    result = subprocess.run(
        shlex.split(command), capture_output=True, text=True, timeout=180, cwd=tmp_path, env=env
    )
    assert result.returncode == 0, result.stderr
    events = [parse_event(line) for line in result.stdout.splitlines()]
    expected = [parse_event(line) for line in shown.splitlines() if line.strip()]
    # The same events (output may come in more chunks) and the same text.
    types = [e.type for e in events]
    merged = [t for i, t in enumerate(types) if i == 0 or types[i - 1] != t]
    assert merged == [e.type for e in expected]
    assert "".join(e.text for e in events if e.type == "output") == "".join(
        e.text for e in expected if e.type == "output"
    ).replace(expected[0].torch, events[0].torch)
    assert events[-1].status == expected[-1].status == "completed"


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


def test_a_run_whose_client_leaves_right_after_done_counts_as_completed(service: str) -> None:
    """The web app closes the stream as soon as it has the `done`: that run still counts as
    what its `done` said, not as cancelled."""
    _wait_warm(service)
    before = _completed(service)
    with httpx.stream("POST", f"{service}/v1/runs", json={"code": "print(1)"}, timeout=60) as r:
        for line in r.iter_lines():
            if line and parse_event(line).type == "done":
                break  # and close the connection at once
    deadline = time.monotonic() + 30
    while _completed(service) < before + 1:
        assert time.monotonic() < deadline, httpx.get(f"{service}/metrics").text[-2000:]
        time.sleep(0.05)


def _completed(url: str) -> float:
    text = httpx.get(f"{url}/metrics").text
    for line in text.splitlines():
        if line.startswith('torchdojo_runner_runs_total{status="completed"}'):
            return float(line.split()[-1])
    return 0.0
