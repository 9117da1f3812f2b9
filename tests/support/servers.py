"""The real app over real HTTP, for tests and benchmarks: uvicorn in a subprocess on a free
port (start_server) and a browser-like client (Learner)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.support.postgres import free_port

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Server:
    url: str
    database_url: str
    process: subprocess.Popen[bytes]


def start_server(
    database_url: str, tmp: Path, command: list[str] | None = None, **env: str
) -> Server:
    """The app in its own process on a free port; `command` (given the port) instead of uvicorn."""
    port = free_port()
    environment = {
        **os.environ,
        "TORCHDOJO_ENVIRONMENT": "test",
        "TORCHDOJO_DATABASE_URL": database_url,
        "TORCHDOJO_SECRET_KEY": "test-secret-" + "x" * 40,
        "TORCHDOJO_RUNNER_POOL_SIZE": "2",
        "TORCHDOJO_RUNS_PER_MINUTE": "100",
        # Every test signs up from 127.0.0.1: the sign-up throttle has its own test.
        "TORCHDOJO_SIGNUPS_PER_ADDRESS": "100000",
        **env,
    }
    log = open(tmp / f"server-{port}.log", "wb")  # noqa: SIM115 -- lives as long as the server
    process = subprocess.Popen(
        [*command, "--port", str(port)]
        if command
        else [
            sys.executable,
            "-m",
            "uvicorn",
            "app.main:create_app",
            "--factory",
            "--port",
            str(port),
        ],
        cwd=ROOT,
        env=environment,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"server exited: {(tmp / f'server-{port}.log').read_text()[-3000:]}")
        try:
            health = httpx.get(f"{url}/healthz", timeout=5).json()
            if health["runner"].get("pool", {}).get("warm", 1) >= 1:
                return Server(url, database_url, process)
        except (httpx.HTTPError, ValueError, KeyError):
            pass
        time.sleep(0.3)
    process.kill()
    pytest.fail("server did not become healthy")


class Learner:
    """A browser-like client: cookies, and the CSRF token sent with every change."""

    counter = 0

    def __init__(self, base_url: str) -> None:
        Learner.counter += 1
        self.email = f"learner{Learner.counter}-{os.getpid()}-{time.monotonic_ns()}@example.com"
        self.client = httpx.Client(base_url=base_url, timeout=60, follow_redirects=False)
        self.csrf = self.client.get("/api/session").json()["csrf_token"]

    def sign_up(self, password: str = "correct horse battery") -> Learner:
        response = self.client.post(
            "/signup", data={"email": self.email, "password": password, "csrf_token": self.csrf}
        )
        assert response.status_code == 303, response.text
        self.csrf = self.client.get("/api/session").json()["csrf_token"]
        return self

    def post(
        self, path: str, headers: dict[str, str] | None = None, **kwargs: object
    ) -> httpx.Response:
        headers = {"X-CSRF-Token": self.csrf, **(headers or {})}
        return self.client.post(path, headers=headers, **kwargs)  # type: ignore[arg-type]

    def put(
        self, path: str, headers: dict[str, str] | None = None, **kwargs: object
    ) -> httpx.Response:
        headers = {"X-CSRF-Token": self.csrf, **(headers or {})}
        return self.client.put(path, headers=headers, **kwargs)  # type: ignore[arg-type]

    def events(self, run_id: str, last_event_id: int | None = None) -> list[dict]:
        import json

        headers = {"Last-Event-ID": str(last_event_id)} if last_event_id is not None else {}
        events = []
        with self.client.stream(
            "GET", f"/api/runs/{run_id}/events", headers=headers, timeout=120
        ) as response:
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/event-stream")
            for line in response.iter_lines():
                if line.startswith("data: "):
                    events.append(json.loads(line[6:]))
        return events
