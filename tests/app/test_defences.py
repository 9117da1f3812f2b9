"""The web app's defences, each against the real app over HTTP (both databases where the state
lives in one): the body cap before any reading, the sign-in throttle, one argon2 verification
whatever the account, server-side sessions that sign-out ends, security headers, the refusal
to serve the development secret beyond loopback, and forged check names kept off the
dashboard."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time

import httpx
import pytest

import app.auth
from app.auth import AuthError, authenticate
from app.db import make_engine, make_sessionmaker
from tests.app.test_dashboard import PASSWORD, make_user, row, signed_in
from tests.support.servers import ROOT, Learner, Server

LESSON = "intro-to-deep-learning/deep-learning-introduction"


def test_an_oversized_body_is_refused_before_it_is_read(server: Server) -> None:
    # Declared too large: refused at once, signed in or not, whatever the route.
    response = httpx.post(
        f"{server.url}/api/runs",
        content=b"x" * (2 * 1024 * 1024),
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 413
    assert "larger than this site accepts" in response.json()["detail"]

    # Streamed without a length (chunked): cut off once it passes the cap.
    def chunks():
        for _ in range(40):
            yield b"y" * 65536

    json_body = {"content-type": "application/json"}
    response = httpx.post(f"{server.url}/api/runs", content=chunks(), headers=json_body)
    assert response.status_code == 413
    # The site is fine afterwards.
    assert httpx.get(f"{server.url}/healthz").status_code == 200


def test_sign_in_is_throttled_per_account(server: Server) -> None:
    email = make_user(server, "learner")
    client = httpx.Client(base_url=server.url, timeout=60)
    csrf = client.get("/api/session").json()["csrf_token"]
    for _ in range(10):
        wrong = client.post("/login", data={"email": email, "password": "nope", "csrf_token": csrf})
        assert wrong.status_code == 400 and "Wrong email or password" in wrong.text
    # Now even the right password waits, and the page says for how long.
    right = client.post("/login", data={"email": email, "password": PASSWORD, "csrf_token": csrf})
    assert right.status_code == 429, right.text
    assert int(right.headers["Retry-After"]) > 0 and "Too many attempts" in right.text
    # Another account from the same address still signs in (the address limit is higher).
    other = make_user(server, "learner")
    ok = client.post("/login", data={"email": other, "password": PASSWORD, "csrf_token": csrf})
    assert ok.status_code == 303


def test_a_missing_account_costs_one_password_verification_too(
    server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Its answer takes as long as a wrong password's: both verify one argon2 hash (timed in
    bench/web_bench.py)."""
    calls = []
    real = app.auth.password_hash.verify

    def counting(password: str, hashed: str) -> bool:
        calls.append(hashed)
        return real(password, hashed)

    monkeypatch.setattr(app.auth.password_hash, "verify", counting)
    email = make_user(server, "learner")
    engine = make_engine(server.database_url)
    try:
        with make_sessionmaker(engine)() as session:
            for who in ("nobody-here@example.com", email, "not an email"):
                with pytest.raises(AuthError, match="Wrong email or password"):
                    authenticate(session=session, email=who, password="wrong password")
    finally:
        engine.dispose()
    assert len(calls) == 3 and all(h.startswith("$argon2") for h in calls)


def test_signing_out_ends_the_session_wherever_its_cookie_went(server: Server) -> None:
    learner = Learner(server.url).sign_up()
    copied = httpx.Client(base_url=server.url, cookies=dict(learner.client.cookies), timeout=30)
    assert copied.get("/api/session").json()["user"]["email"] == learner.email
    assert learner.post("/logout").status_code == 303
    assert copied.get("/api/session").json()["user"] is None
    assert copied.get(f"/api/drafts/{LESSON}").status_code == 401


def test_sign_out_everywhere_ends_every_session_of_the_account(server: Server) -> None:
    email = make_user(server, "learner")
    browsers = []
    for _ in range(2):
        client = httpx.Client(base_url=server.url, timeout=30)
        csrf = client.get("/api/session").json()["csrf_token"]
        client.post("/login", data={"email": email, "password": PASSWORD, "csrf_token": csrf})
        assert client.get("/api/session").json()["user"]["email"] == email
        browsers.append(client)
    csrf = browsers[0].get("/api/session").json()["csrf_token"]
    response = browsers[0].post("/logout/everywhere", headers={"X-CSRF-Token": csrf})
    assert response.status_code == 303 and "signed_out=everywhere" in response.headers["location"]
    for client in browsers:
        assert client.get("/api/session").json()["user"] is None
    page = browsers[1].get("/login?signed_out=everywhere")
    assert "signed out everywhere" in page.text


def test_every_answer_carries_the_security_headers(server: Server) -> None:
    for path in ("/", "/login", "/api/session", "/no-such-page"):
        headers = httpx.get(f"{server.url}{path}").headers
        policy = headers["content-security-policy"]
        assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy, path
        assert "'unsafe-eval'" not in policy and "script-src 'self' 'unsafe-inline'" not in policy
        assert headers["x-frame-options"] == "DENY"
        assert headers["x-content-type-options"] == "nosniff"
        assert headers["referrer-policy"] == "same-origin"


def test_the_development_secret_is_refused_beyond_loopback(tmp_path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TORCHDOJO_")}
    env["TORCHDOJO_DATABASE_URL"] = f"sqlite:///{tmp_path / 'db.sqlite3'}"
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    done = subprocess.run(
        [sys.executable, "-m", "app.cli", "serve", "--host", "0.0.0.0", "--port", str(port)],
        cwd=tmp_path,  # no .env of the checkout
        env={**env, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2, done.stderr[-2000:]
    assert "development secret key" in done.stderr and "TORCHDOJO_SECRET_KEY" in done.stderr


FORGER = """
import json, os
line = json.dumps({"type": "test", "name": "Forged check", "status": "failed",
                   "message": "forged", "hint": "", "duration_ms": 1}).encode() + b"\\n"
for name in os.listdir("/proc/self/fd"):
    try:
        os.write(int(name), b"\\n" + line)
    except OSError:
        pass
"""


def test_forged_check_names_stay_off_the_dashboard(server: Server) -> None:
    learner = Learner(server.url).sign_up()
    response = learner.post("/api/runs", json={"lesson": LESSON, "code": FORGER, "mode": "check"})
    assert response.status_code == 201, response.text
    events = learner.events(response.json()["id"])
    assert any(e["type"] == "test" and e["name"] == "Forged check" for e in events)  # it got in
    instructor = signed_in(server, "instructor")
    deadline = time.monotonic() + 30
    failing: list[str] = []
    while time.monotonic() < deadline:
        failing = [
            c["name"]
            for c in row(instructor, "intro-to-deep-learning/01-deep-learning-introduction")[
                "failing"
            ]
        ]
        if failing:
            break
        time.sleep(0.3)
    assert failing, "the real checks' failures are counted"
    assert "Forged check" not in failing, failing


def test_sign_ups_are_throttled_per_address(tmp_path) -> None:
    from app.auth import Throttled, sign_up_attempt
    from app.config import Settings
    from app.db import migrate

    url = f"sqlite:///{tmp_path / 'db.sqlite3'}"
    migrate(url)
    settings = Settings(database_url=url, signups_per_address=2)
    engine = make_engine(url)
    try:
        with make_sessionmaker(engine)() as session:
            for n in range(2):
                sign_up_attempt(
                    session=session,
                    settings=settings,
                    address="203.0.113.9",
                    email=f"a{n}@example.com",
                    password=PASSWORD,
                )
            with pytest.raises(Throttled) as refused:
                sign_up_attempt(
                    session=session,
                    settings=settings,
                    address="203.0.113.9",
                    email="a3@example.com",
                    password=PASSWORD,
                )
            assert refused.value.retry_after > 0
            # Another address is not held up.
            sign_up_attempt(
                session=session,
                settings=settings,
                address="198.51.100.7",
                email="b@example.com",
                password=PASSWORD,
            )
    finally:
        engine.dispose()


def test_behind_an_https_proxy_the_pages_link_by_path_and_unknown_urls_get_a_page(
    server: Server,
) -> None:
    https = {"X-Forwarded-Proto": "https", "Accept": "text/html"}
    page = httpx.get(f"{server.url}/login", headers=https).text
    assert 'href="/static/css/site.css"' in page and "http://" not in page.split("<body")[0]
    missing = httpx.get(f"{server.url}/no/such/page", headers={"Accept": "text/html"})
    assert missing.status_code == 404 and missing.headers["content-type"].startswith("text/html")
    api = httpx.get(f"{server.url}/api/no-such-thing")
    assert api.status_code == 404 and api.json()["detail"]


def test_liveness_and_readiness(server: Server) -> None:
    live = httpx.get(f"{server.url}/livez").json()
    assert live["status"] == "ok" and len(live["replica"]) == 16
    assert httpx.get(f"{server.url}/readyz").json() == {"status": "ok", "database": "ok"}
