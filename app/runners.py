"""RunnerClient: how the app gets a stream of events for a run.

- `LocalRunner`: the runner's warm pool inside this process (the default: `make run` needs
  nothing else).
- `RemoteRunner`: the runner service over HTTP (`TORCHDOJO_RUNNER_URL`: one URL or several,
  comma-separated; a name with several addresses counts as several), trying the next replica
  when one is busy (503), unreachable, or dies before the run started.

Either way the stream always ends with exactly one `done`: if the runner dies mid-run, the
client adds an `internal_error` done that tells the learner what happened.
"""

from __future__ import annotations

import asyncio
import ipaddress
import itertools
import json
import logging
import socket
import time
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlsplit, urlunsplit

import httpx

from app.metrics import WebMetrics
from runner import RUN_ID_HEADER, Done, ErrorInfo, Event, RunRequest, parse_event

log = logging.getLogger("app.runners")
# What the learner reads when we failed them: what went wrong, that nothing is lost, what to do.
# The technical reason goes to the log (with the run id), not to the learner.
RUNNER_FAILED = (
    "{what}. Your code is saved: press Run to try again, and tell your instructor if it "
    "keeps happening."
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
    async def open(self, request: RunRequest, run_id: str | None = None) -> AsyncIterator[Event]:
        """Reserve a place for the run (or raise RunnerBusy at once); iterate for its events."""
        ...


# A lesson whose limits the runner refuses: running again will not help, its instructor can.
LESSON_LIMITS = (
    "This lesson asks the code runner for more than it allows ({over}), so its code cannot run "
    "here. Your code is saved: tell your instructor."
)


def lesson_refused(over: list[str]) -> Done:
    log.warning("run refused: %s", "; ".join(over))
    error = ErrorInfo(type="LessonLimits", message=LESSON_LIMITS.format(over="; ".join(over)))
    return Done.ending(0, 0.0, "internal_error", error)


def internal_error(seq: int, started_at: float, what: str, reason: str = "") -> Done:
    """The run's `done` when the platform failed it; `what` is a sentence for the learner."""
    if reason:
        log.warning("run failed: %s (%s)", what, reason)
    error = ErrorInfo(type="RunnerError", message=RUNNER_FAILED.format(what=what))
    return Done.ending(seq, time.monotonic() - started_at, "internal_error", error)


class LocalRunner:
    """The embedded runner: a WarmPool in this process."""

    def __init__(self, pool_size: int | None = None) -> None:
        from runner import WarmPool, runner_settings

        self.pool = WarmPool(runner_settings(), size=pool_size)

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

    async def open(self, request: RunRequest, run_id: str | None = None) -> AsyncIterator[Event]:
        from runner import PoolBusy, lesson_maximum

        if request.limits and (over := request.limits.above(lesson_maximum(self.pool.settings))):
            return _single(lesson_refused(over))  # as the runner service does: never lowered
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


@dataclass(frozen=True)
class Replica:
    """One runner to try: `base` is where to connect, `host` the Host header to send when `base`
    names a resolved address rather than the configured name."""

    base: str
    host: str | None = None


class RemoteRunner:
    """Runner services over HTTP: several URLs, or one name with several addresses, in turn.

    A name such as `http://runner:8001` is resolved (again every `resolve_every_s` seconds) to
    all its addresses, so `docker compose up --scale runner=3` or a headless Kubernetes service
    spreads runs over every replica. Runs go round-robin; a replica that is busy (503),
    unreachable, or whose stream breaks before the run's `started` event is skipped and the next
    one tried: nothing of the learner's code ran there, so nothing is run twice. A replica that
    failed is tried last for `cooldown_s` seconds. Once a run has started, a broken stream ends
    it with `internal_error` (running the code again elsewhere could surprise the learner).
    """

    def __init__(
        self,
        urls: list[str],
        *,
        metrics: WebMetrics | None = None,
        resolve_every_s: float = 5.0,
        cooldown_s: float = 10.0,
        resolve: Resolver | None = None,
    ) -> None:
        self.urls = [url.rstrip("/") for url in urls]
        self.resolve = resolve or system_resolve
        self.metrics = metrics
        self.resolve_every_s = resolve_every_s
        self.cooldown_s = cooldown_s
        self.client = httpx.AsyncClient(timeout=httpx.Timeout(10, read=None))
        self._turn = itertools.count()
        self._resolved: tuple[float, list[Replica]] = (-1e9, [])
        self._failed_at: dict[str, float] = {}

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        await self.client.aclose()

    # -- which replicas, in which order --

    async def replicas(self) -> list[Replica]:
        """Every replica behind the configured URLs (DNS names expanded), cached briefly."""
        resolved_at, replicas = self._resolved
        if time.monotonic() - resolved_at < self.resolve_every_s and replicas:
            return replicas
        replicas = []
        for url in self.urls:
            for replica in await _expand(url, self.resolve):
                if replica not in replicas:
                    replicas.append(replica)
        self._resolved = (time.monotonic(), replicas)
        return replicas

    async def _order(self) -> list[Replica]:
        replicas = await self.replicas()
        if not replicas:
            return []
        turn = next(self._turn) % len(replicas)
        rotated = replicas[turn:] + replicas[:turn]
        now = time.monotonic()
        recent = {name for name, when in self._failed_at.items() if now - when < self.cooldown_s}
        return [r for r in rotated if r.base not in recent] + [
            r for r in rotated if r.base in recent
        ]

    def _failed(self, replica: Replica, kind: str, detail: object) -> None:
        log.warning("runner %s %s: %s", replica.base, kind, detail)
        if kind != "busy":
            self._failed_at[replica.base] = time.monotonic()
        if self.metrics is not None:
            self.metrics.runner_error(kind)

    # -- health --

    async def health(self) -> dict[str, Any]:
        replicas: list[dict[str, Any]] = []
        for replica in await self.replicas():
            try:
                response = await self.client.get(
                    f"{replica.base}/healthz", headers=_host(replica), timeout=3
                )
                replicas.append({"url": replica.base, **response.json()})
            except (httpx.HTTPError, ValueError) as exc:
                replicas.append({"url": replica.base, "status": "unreachable", "detail": str(exc)})
        return {"kind": "remote", "replicas": replicas}

    # -- runs --

    async def open(self, request: RunRequest, run_id: str | None = None) -> AsyncIterator[Event]:
        started_at = time.monotonic()
        attempt = _Attempt(
            body=request.model_dump(exclude_none=True),
            headers={RUN_ID_HEADER: run_id} if run_id else {},
            left=await self._order(),
        )
        if not attempt.left:
            return _single(
                internal_error(
                    0, started_at, "The code runner could not be found, so your code did not run"
                )
            )
        response = await self._connect(attempt)
        if response is None:
            if attempt.retry_after is not None:
                raise RunnerBusy(attempt.retry_after)
            return _single(
                internal_error(
                    0, started_at, "No code runner could be reached, so your code did not run"
                )
            )
        return self._events(attempt, response, started_at)

    async def _connect(self, attempt: _Attempt) -> httpx.Response | None:
        """POST the run to the next replica that takes it; None when none does."""
        while attempt.left:
            replica = attempt.replica = attempt.left.pop(0)
            try:
                response = await self.client.send(
                    self.client.build_request(
                        "POST",
                        f"{replica.base}/v1/runs",
                        json=attempt.body,
                        headers={**attempt.headers, **_host(replica)},
                    ),
                    stream=True,
                )
            except httpx.HTTPError as exc:
                self._failed(replica, "unreachable", exc)
                continue  # nothing started there: try another replica
            if response.status_code == 503:
                attempt.retry_after = int(response.headers.get("Retry-After", "5"))
                await response.aclose()
                self._failed(replica, "busy", "its queue is full")
                continue  # busy: the next replica may have room
            if response.status_code >= 500:
                detail = (await response.aread()).decode(errors="replace")[:200]
                await response.aclose()
                self._failed(replica, "http", f"HTTP {response.status_code}: {detail}")
                continue
            return response
        return None

    async def _events(
        self, attempt: _Attempt, response: httpx.Response, started_at: float
    ) -> AsyncGenerator[Event, None]:
        last_seq = -1
        offset = 0  # after a retry, the next replica's events follow on from what was sent
        started = False  # `started` came: the code may have run there
        while True:
            reason = ""
            try:
                if response.status_code == 422 and (over := await _limits_refused(response)):
                    yield lesson_refused(over)
                    return
                if response.status_code != 200:
                    detail = (await response.aread()).decode(errors="replace")[:500]
                    yield internal_error(
                        0,
                        started_at,
                        f"The code runner refused the run (HTTP {response.status_code})",
                        detail,
                    )
                    return
                async for line in response.aiter_lines():
                    if not line:
                        continue
                    event = parse_event(line)
                    if offset:
                        event = event.model_copy(update={"seq": event.seq + offset})
                    last_seq = event.seq
                    started = started or event.type == "started"
                    yield event
                    if isinstance(event, Done):
                        return
                reason = "the stream ended early"
            except (httpx.HTTPError, ValueError) as exc:
                reason = type(exc).__name__
            finally:
                await response.aclose()
            assert attempt.replica is not None
            self._failed(attempt.replica, "died", reason)
            if started:  # the code may have run: say so rather than run it twice
                yield internal_error(
                    last_seq + 1,
                    started_at,
                    "The code runner stopped answering while your code ran",
                    reason,
                )
                return
            retry = await self._connect(attempt)
            if retry is None:
                yield internal_error(
                    last_seq + 1,
                    started_at,
                    "The code runner stopped answering before your code started, and no other "
                    "runner could take it",
                    reason,
                )
                return
            response, offset = retry, last_seq + 1


@dataclass
class _Attempt:
    body: dict[str, Any]
    headers: dict[str, str]
    left: list[Replica]
    replica: Replica | None = None
    retry_after: int | None = None


def _host(replica: Replica) -> dict[str, str]:
    return {"Host": replica.host} if replica.host else {}


Resolver = Callable[[str, int], Awaitable[list[str]]]


async def system_resolve(host: str, port: int) -> list[str]:
    """Every address of a name (Docker's and Kubernetes' DNS give one per replica)."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return sorted({str(info[4][0]) for info in infos})


async def _expand(url: str, resolve: Resolver) -> list[Replica]:
    """The URL itself, or one replica per address when its host name has several (plain HTTP
    only: an https URL keeps its name, which its certificate is for)."""
    parts = urlsplit(url)
    host = parts.hostname
    if parts.scheme != "http" or not host or host == "localhost" or _is_address(host):
        return [Replica(url)]
    port = parts.port or 80
    try:
        addresses = await resolve(host, port)
    except OSError as exc:
        log.warning("runner name %s does not resolve: %s", host, exc)
        return [Replica(url)]  # let the connection attempt report it
    if len(addresses) < 2:
        return [Replica(url)]
    netloc = parts.netloc.rsplit("@", 1)[-1]
    replicas = []
    for address in addresses:
        shown = f"[{address}]" if ":" in address else address
        base = urlunsplit(parts._replace(netloc=f"{shown}:{port}"))
        replicas.append(Replica(base, host=netloc))
    return replicas


def _is_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


async def _single(event: Event) -> AsyncGenerator[Event, None]:
    yield event


def make_runner(
    runner_url: str | None, pool_size: int | None, metrics: WebMetrics | None = None
) -> RunnerClient:
    if runner_url:
        urls = [url.strip() for url in runner_url.split(",") if url.strip()]
        return RemoteRunner(urls, metrics=metrics)
    return LocalRunner(pool_size)


async def _limits_refused(response: httpx.Response) -> list[str]:
    """The runner service's 422 for limits above its maximums: one line per limit."""
    try:
        detail = json.loads(await response.aread()).get("detail")
    except (ValueError, AttributeError):
        return []
    if isinstance(detail, str) and detail.startswith("limits."):
        return detail.split("; ")
    return []
