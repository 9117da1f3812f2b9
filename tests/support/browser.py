"""For the browser tests: Debian's chromium and how it is started, where screenshots go, and
a watch on a page's console, CSP violations and failed requests."""

from __future__ import annotations

import shutil
from typing import Any

from tests.support.servers import ROOT

SHOTS = ROOT / "artifacts" / "screenshots"


CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


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
