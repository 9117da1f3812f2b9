"""A real warm pool (real bubblewrap) shared by the runner tests, on a background event loop."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator

import pytest

from runner.config import RunnerSettings
from runner.pool import WarmPool
from tests.support.runner import PoolDriver


@pytest.fixture(scope="session")
def pool() -> Iterator[PoolDriver]:
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    warm = WarmPool(RunnerSettings(pool_size=2, queue_size=16), size=2)
    driver = PoolDriver(warm, loop)
    driver.call(warm.start())
    yield driver
    driver.call(warm.close())
    loop.call_soon_threadsafe(loop.stop)
    thread.join(10)
