"""What the browser tests share: the app served with its built bundle, one per test module."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from typing import Any

import playwright.sync_api as playwright_api
import pytest

from tests.app.conftest import ROOT, Server, start_server

SHOTS = ROOT / "artifacts" / "screenshots"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# Headless, and quiet: this machine has no network, so Chromium must not try to reach out.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def browser() -> Iterator[playwright_api.Browser]:
    """Debian's Chromium, headless, driven by Playwright: one per test module."""
    with playwright_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True
        )
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def app_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    if not (ROOT / "static" / "dist" / "app.js").exists():
        pytest.fail("the browser bundle is missing: run `make setup` (npm ci && npm run build)")
    tmp = tmp_path_factory.mktemp("browser")
    server = start_server(f"sqlite:///{tmp / 'app.sqlite3'}", tmp)
    yield server
    server.process.terminate()
    server.process.wait(30)


def watch(page: Any) -> list[str]:
    """Record on `page.errors` (and return) the page's script errors and every violation of
    the Content-Security-Policy (Chromium reports those as console errors): a page that works
    only without the policy fails its test."""
    errors: list[str] = []

    def on_console(message: Any) -> None:
        if message.type == "error" and "Content Security Policy" in message.text:
            errors.append(message.text)

    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", on_console)
    page.errors = errors
    return errors
