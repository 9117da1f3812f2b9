"""An admin sets up a site: `torchdojo create-user --role admin` (the installed command, in a
subprocess), then signs in to the app running in production mode, whose session cookie is
Secure, HttpOnly and SameSite=Lax. The app uses a remote runner that does not exist: nothing
here runs code, and a missing runner must not stop anyone from signing in."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.postgres import free_port
from tests.support.servers import ROOT, Server, start_server

TORCHDOJO = ROOT / ".venv" / "bin" / "torchdojo"
PASSWORD = "the admin's long password"


def torchdojo(database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(TORCHDOJO), *args],
        env={**os.environ, "TORCHDOJO_DATABASE_URL": database_url},
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )


@pytest.fixture
def production(tmp_path: Path) -> Iterator[Server]:
    database_url = f"sqlite:///{tmp_path / 'site.sqlite3'}"
    assert torchdojo(database_url, "migrate").returncode == 0
    made = torchdojo(
        database_url, "create-user", "Admin@Example.com", "--role", "admin", "--password", PASSWORD
    )
    assert made.returncode == 0, made.stderr
    assert "admin@example.com" in made.stdout and "admin" in made.stdout
    again = torchdojo(database_url, "create-user", "admin@example.com", "--password", PASSWORD)
    assert again.returncode != 0 and "already exists" in (again.stdout + again.stderr)
    server = start_server(
        database_url,
        tmp_path,
        TORCHDOJO_ENVIRONMENT="production",
        TORCHDOJO_SECRET_KEY=os.urandom(32).hex(),
        TORCHDOJO_RUNNER_URL=f"http://127.0.0.1:{free_port()}",
    )
    yield server
    server.process.terminate()
    server.process.wait(30)


def session_cookie(response: httpx.Response) -> str:
    """`name=value` of the session cookie a response sets. A browser sends a Secure cookie over
    HTTPS only (the proxy in front terminates TLS): over the tests' plain HTTP, we send it."""
    return response.headers["set-cookie"].split(";")[0]


def sign_in(server: Server, password: str) -> httpx.Response:
    client = httpx.Client(base_url=server.url, timeout=30)
    hello = client.get("/api/session")
    return client.post(
        "/login",
        data={
            "email": "admin@example.com",
            "password": password,
            "csrf_token": hello.json()["csrf_token"],
        },
        headers={"Cookie": session_cookie(hello)},
    )


def test_an_admin_made_on_the_command_line_signs_in_with_a_secure_cookie(
    production: Server,
) -> None:
    response = sign_in(production, PASSWORD)
    assert response.status_code == 303, response.text
    flags = {part.strip().lower() for part in response.headers["set-cookie"].split(";")}
    assert {"httponly", "secure", "samesite=lax"} <= flags, response.headers["set-cookie"]
    signed_in = {"Cookie": session_cookie(response)}
    dashboard = httpx.get(f"{production.url}/instructor", headers=signed_in)
    assert dashboard.status_code == 200 and "admin@example.com" in dashboard.text
    me = httpx.get(f"{production.url}/api/session", headers=signed_in).json()
    assert me["user"] == {"email": "admin@example.com", "role": "admin"}
    refused = sign_in(production, "not it")
    assert refused.status_code == 400 and "Wrong email or password" in refused.text
