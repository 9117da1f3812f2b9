"""What the browser tests share: the app served with its built bundle, one per test module."""

from __future__ import annotations

from collections.abc import Iterator

import playwright.sync_api as playwright_api
import pytest

from tests.support.browser import CHROMIUM, CHROMIUM_ARGS
from tests.support.servers import ROOT, Server, start_server


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
