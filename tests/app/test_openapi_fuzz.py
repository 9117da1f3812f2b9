"""Fuzz the JSON API from its own OpenAPI schema (schemathesis): no input makes it answer 5xx.

The real app (uvicorn, SQLite and then PostgreSQL, the embedded sandbox pool) answers;
schemathesis generates requests for every operation in its OpenAPI document, valid and invalid
(at most 50 per operation, plus its coverage cases), and sends them as a signed-in learner
(session cookie and X-CSRF-Token on every request), so they reach the handlers instead of
stopping at 401/403. Every answer must be below 500, and every 4xx a JSON object whose `detail`
is a string or a list (what the page shows the learner). The document is built in this process
at import (the tests are generated at collection) and checked to be the one the server serves.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.strategies import SearchStrategy
from schemathesis import Case, CheckContext, HookContext, Response
from schemathesis.checks import not_a_server_error

from app.config import Settings
from app.main import create_app
from tests.support.servers import Learner, Server, start_server

MAX_EXAMPLES = 50
SEED_LESSON = "intro-to-deep-learning/deep-learning-introduction"


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def fuzz_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    """One server per database: PostgreSQL refuses some text SQLite takes (a NUL), so an
    input that is only turned away by the database shows up there as a 500."""
    tmp: Path = tmp_path_factory.mktemp("fuzz")
    if request.param == "sqlite":
        database_url = f"sqlite:///{tmp / 'torchdojo.sqlite3'}"
    else:
        database_url = request.getfixturevalue("postgres").url
    server = start_server(database_url, tmp, TORCHDOJO_RUNS_PER_MINUTE="100000")
    yield server
    server.process.terminate()
    server.process.wait(30)


@pytest.fixture(scope="module")
def fuzz_learner(fuzz_server: Server) -> Learner:
    return Learner(fuzz_server.url).sign_up()


def app_openapi() -> dict[str, Any]:
    """The app's OpenAPI document, built in this process (no server, database or sandbox)."""
    settings = Settings(environment="test", database_url="sqlite:///:memory:")
    return create_app(settings).openapi()


def test_the_server_serves_the_schema_fuzzed_here(fuzz_server: Server) -> None:
    assert httpx.get(f"{fuzz_server.url}/openapi.json").json() == app_openapi()


def detail_is_readable(ctx: CheckContext, response: Response, case: Case) -> bool | None:
    """A 4xx is JSON with a `detail` the page can show: a message, or a list of problems."""
    if not 400 <= response.status_code < 500:
        return None
    try:
        body = json.loads(response.content)
    except ValueError:
        raise AssertionError(
            f"{response.status_code} is not JSON: {response.content[:200]!r}"
        ) from None
    assert isinstance(body, dict), f"{response.status_code} body is not an object: {body!r}"
    detail = body.get("detail")
    assert isinstance(detail, str | list), f"{response.status_code} detail is {detail!r}"
    return None


# Loaded at import, not from the server fixture: schemathesis.pytest.from_fixture (4.32) sets
# `request.node._nodeid`, which pytest 9 no longer has. The test above checks it is the same.
schema = schemathesis.openapi.from_dict(app_openapi())


# Random lesson names almost never exist, so about half the cases name the seed lesson
# instead: they get past the 404 into the handlers' own checks (and real runs start).
@schema.hook
def flatmap_path_parameters(
    context: HookContext, parameters: dict[str, Any] | None
) -> SearchStrategy:
    if parameters is None or not {"course", "lesson"} <= parameters.keys():
        return st.just(parameters)
    course, _, lesson = SEED_LESSON.partition("/")
    return st.sampled_from([parameters, {**parameters, "course": course, "lesson": lesson}])


@schema.hook
def flatmap_body(context: HookContext, body: Any) -> SearchStrategy:
    if not (isinstance(body, dict) and isinstance(body.get("lesson"), str)):
        return st.just(body)
    return st.sampled_from([body, {**body, "lesson": SEED_LESSON}])


@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
def test_no_input_makes_the_api_fail(
    case: Case, fuzz_server: Server, fuzz_learner: Learner
) -> None:
    case.call_and_validate(
        base_url=fuzz_server.url,
        headers={"X-CSRF-Token": fuzz_learner.csrf},
        cookies=dict(fuzz_learner.client.cookies),
        checks=[not_a_server_error, detail_is_readable],
        timeout=30,
    )
