"""The runner under test: a warm pool driven from sync tests (PoolDriver), the runner service
in a subprocess (runner_service), and checks of an event stream."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from runner.pool import WarmPool
from runner.protocol import Done, Event, RunRequest

ROOT = Path(__file__).resolve().parents[2]


class PoolDriver:
    """Runs coroutines on the pool's own loop, so synchronous tests can use a real pool."""

    def __init__(self, pool: WarmPool, loop: asyncio.AbstractEventLoop) -> None:
        self.pool, self.loop = pool, loop

    def call(self, coroutine: Any, timeout: float = 300) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    def run(self, code: str, **fields: Any) -> list[Event]:
        """All events of one run; asserts the contract every run keeps."""
        events = self.call(self.collect(RunRequest(code=code, **fields)))
        assert_well_formed(events)
        return events

    async def collect(self, request: RunRequest) -> list[Event]:
        return [event async for event in self.pool.run(request)]


def assert_well_formed(events: list[Event]) -> None:
    """`queued` only before `started`, which comes first otherwise; exactly one done and it is
    last; seq 0..n-1; t never going back."""
    assert events, "no events"
    waiting = 0
    while waiting < len(events) and events[waiting].type == "queued":
        waiting += 1
    assert not any(e.type == "queued" for e in events[waiting:]), [e.type for e in events]
    rest = events[waiting:]
    assert rest and (rest[0].type in ("started", "done")), [e.type for e in events]
    assert rest[0].type == "started" or len(rest) == 1
    dones = [e for e in events if isinstance(e, Done)]
    assert len(dones) == 1 and events[-1] is dones[0], [e.type for e in events]
    assert [e.seq for e in events] == list(range(len(events)))
    times = [e.t for e in events]
    assert times == sorted(times)


def output_of(events: list[Event], stream: str = "stdout") -> str:
    return "".join(e.text for e in events if e.type == "output" and e.stream == stream)


def done_of(events: list[Event]) -> Done:
    done = events[-1]
    assert isinstance(done, Done)
    return done


@contextlib.contextmanager
def runner_service(env: dict[str, str], timeout_s: float = 180) -> Iterator[RunnerService]:
    """`python -m runner serve` on a free port with `env` added, once a sandbox is warm."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    process = subprocess.Popen(
        [sys.executable, "-m", "runner", "serve", "--port", str(port)],
        env={**os.environ, **env},
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            if httpx.get(f"{url}/healthz").json()["pool"]["warm"] >= 1:
                break
        except (httpx.HTTPError, ValueError, KeyError):
            pass
        if time.monotonic() > deadline or process.poll() is not None:
            process.kill()
            assert process.stderr is not None
            pytest.fail(
                f"runner service did not get warm: {process.stderr.read().decode()[-2000:]}"
            )
        time.sleep(0.2)
    try:
        yield RunnerService(url, process)
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@dataclass
class RunnerService:
    url: str
    process: subprocess.Popen[bytes]
