"""RunnerClient: how the app gets a stream of events for a run.

- `LocalRunner`: the runner's warm pool inside this process (the default: `make run` needs
  nothing else).
- `RemoteRunner`: the runner service over HTTP (`TORCHDOJO_RUNNER_URL`, one URL or several,
  comma-separated), trying the next replica when one is busy (503) or unreachable before the run
  started.

Either way the stream always ends with exactly one `done`: if the runner dies mid-run, the
client adds an `internal_error` done that tells the learner what happened.
"""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any, Protocol

import httpx

from runner.protocol import Done, ErrorInfo, Event, RunRequest, parse_event

log = logging.getLogger("app.runners")
RUNNER_DIED = (
    "The runner stopped answering while your code ran ({reason}). Your code is saved; "
    "press Run again. If it keeps happening, tell your instructor."
)


class RunnerBusy(Exception):
    """Every runner is busy; the message says when to try again."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"All runners are busy right now. Try again in {retry_after} s.")
        self.retry_after = retry_after


class RunnerClient(Protocol):
    async def start(self) -> None: ...
    async def close(self) -> None: ...
    async def health(self) -> dict[str, Any]: ...
    async def open(self, request: RunRequest) -> AsyncIterator[Event]:
        """Reserve a place for the run (or raise RunnerBusy at once); iterate for its events."""
        ...


def internal_error(seq: int, started_at: float, reason: str) -> Done:
    return Done(
        seq=seq,
        t=round(time.monotonic() - started_at, 6),
        status="internal_error",
        duration_ms=round((time.monotonic() - started_at) * 1000, 3),
        error=ErrorInfo(type="RunnerError", message=RUNNER_DIED.format(reason=reason)),
    )


class LocalRunner:
    """The embedded runner: a WarmPool in this process."""

    def __init__(self, pool_size: int | None = None) -> None:
        from runner.config import get_settings
        from runner.pool import WarmPool

        self.pool = WarmPool(get_settings(), size=pool_size)

    async def start(self) -> None:
        await self.pool.start(wait=False)

    async def close(self) -> None:
        await self.pool.close()

    async def health(self) -> dict[str, Any]:
        return {
            "kind": "local",
            "pool": self.pool.stats,
            "device": self.pool.device,
            "error": self.pool.last_error,
        }

    async def open(self, request: RunRequest) -> AsyncIterator[Event]:
        from runner.pool import PoolBusy

        self.pool.check_size(request)
        try:
            ticket = self.pool.reserve()
        except PoolBusy as exc:
            raise RunnerBusy(exc.retry_after) from exc
        return self._events(request, ticket)

    async def _events(self, request: RunRequest, ticket: Any) -> AsyncGenerator[Event, None]:
        stream = self.pool.run(request, ticket=ticket)
        try:
            async for event in stream:
                yield event
        finally:
            ticket.release()
            await stream.aclose()


class RemoteRunner:
    """Runner services over HTTP, several replicas in turn."""

    def __init__(self, urls: list[str]) -> None:
        self.urls = [url.rstrip("/") for url in urls]
        self._next = itertools.cycle(range(len(self.urls)))
        self.client = httpx.AsyncClient(timeout=httpx.Timeout(10, read=None))

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        await self.client.aclose()

    async def health(self) -> dict[str, Any]:
        replicas = []
        for url in self.urls:
            try:
                response = await self.client.get(f"{url}/healthz", timeout=3)
                replicas.append({"url": url, **response.json()})
            except (httpx.HTTPError, ValueError) as exc:
                replicas.append({"url": url, "status": "unreachable", "detail": str(exc)})
        return {"kind": "remote", "replicas": replicas}

    async def open(self, request: RunRequest) -> AsyncIterator[Event]:
        started_at = time.monotonic()
        body = request.model_dump(exclude_none=True)
        retry_after: int | None = None  # set when a replica said it was busy
        for _ in range(len(self.urls)):
            url = self.urls[next(self._next)]
            try:
                response = await self.client.send(
                    self.client.build_request("POST", f"{url}/v1/runs", json=body), stream=True
                )
            except httpx.HTTPError as exc:
                log.warning("runner %s unreachable: %s", url, exc)
                continue  # nothing started there: try another replica
            if response.status_code == 503:
                retry_after = int(response.headers.get("Retry-After", "5"))
                await response.aclose()
                continue  # busy: the next replica may have room
            return self._events(url, response, started_at)
        if retry_after is not None:
            raise RunnerBusy(retry_after)
        return _single(internal_error(0, started_at, "no runner could be reached"))

    async def _events(
        self, url: str, response: httpx.Response, started_at: float
    ) -> AsyncGenerator[Event, None]:
        last_seq = -1
        try:
            if response.status_code != 200:
                detail = (await response.aread()).decode(errors="replace")[:500]
                yield internal_error(0, started_at, f"HTTP {response.status_code}: {detail}")
                return
            async for line in response.aiter_lines():
                if not line:
                    continue
                event = parse_event(line)
                last_seq = event.seq
                yield event
                if isinstance(event, Done):
                    return
            yield internal_error(last_seq + 1, started_at, "the stream ended early")
        except (httpx.HTTPError, ValueError) as exc:
            log.warning("runner %s failed mid-run: %s", url, exc)
            yield internal_error(last_seq + 1, started_at, type(exc).__name__)
        finally:
            await response.aclose()


async def _single(event: Event) -> AsyncGenerator[Event, None]:
    yield event


def make_runner(runner_url: str | None, pool_size: int | None) -> RunnerClient:
    if runner_url:
        return RemoteRunner([url.strip() for url in runner_url.split(",") if url.strip()])
    return LocalRunner(pool_size)
