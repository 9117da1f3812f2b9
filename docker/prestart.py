"""The prestart step of docker-compose: wait for the database, then migrate it.

    python docker/prestart.py

Runs once before the web service starts (compose: `prestart`, and web depends on it having
completed successfully). It reads the same TORCHDOJO_* settings as the app, so a bad setting or a
placeholder secret stops the deployment here, with the reason, before any traffic.
"""

from __future__ import annotations

import sys
import time

from sqlalchemy import create_engine, text
from sqlalchemy.exc import OperationalError

from app.config import get_settings
from app.db import migrate

WAIT_S = 120


def wait_for_database(url: str, wait_s: float = WAIT_S) -> None:
    engine = create_engine(url, pool_pre_ping=True)
    deadline = time.monotonic() + wait_s
    try:
        while True:
            try:
                with engine.connect() as connection:
                    connection.execute(text("SELECT 1"))
                return
            except OperationalError as exc:
                if time.monotonic() > deadline:
                    message = f"prestart: the database did not answer in {wait_s}s: {exc}"
                    raise SystemExit(message) from exc
                print("prestart: waiting for the database…", file=sys.stderr, flush=True)
                time.sleep(1)
    finally:
        engine.dispose()


def main() -> int:
    settings = get_settings()
    wait_for_database(settings.database_url)
    migrate(settings.database_url)
    print("prestart: the database schema is up to date", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
