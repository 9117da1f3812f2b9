"""The deployment, end to end, on a real Docker engine: `make deploy-test` (root, ~10-15 min).

Starts dockerd as /work/shared/docker-here.md shows, makes the base images that cannot be
pulled here (tests/deploy/standins), builds both images (a CPU build of torch), brings
docker-compose.yml up, signs up through the web API, runs the seed lesson's solution in check
mode, and checks that every check passes, that the summary and loss events arrive, and that the
run and its events are in PostgreSQL. Then the runner suite's hostile cases (network, host files,
fork bomb, memory bomb, setsid daemon) run in the runner container, through its HTTP API from
inside the compose network. Tears everything down and stops the engine.
"""

from __future__ import annotations

import base64
import json
import os
import re
import secrets
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

import docker  # the SDK, not the repository's docker/ folder
from tests.deploy import engine
from tests.support import adversarial
from tests.support.postgres import free_port
from tests.support.servers import Learner

pytestmark = [
    pytest.mark.skipif(
        os.environ.get("TORCHDOJO_DEPLOY_TEST") != "1",
        reason="the deployment test runs with `make deploy-test` (root, a Docker engine, "
        "~15 minutes)",
    ),
    pytest.mark.timeout(2400),
]

ROOT = engine.ROOT
PROJECT = "torchdojo-deploytest"
SEED = ROOT / "content" / "intro-to-deep-learning" / "01-deep-learning-introduction"
LESSON = "intro-to-deep-learning/deep-learning-introduction"
# What the runner container adds to (or could take from) the sandbox, and what the zygote adds.
HOSTILE = [
    "network",
    "host_files",
    "fork_bomb",
    "memory_bomb",
    "setsid_daemon",
    "write_outside",
    "zygote_memory",
    "inherited_fds",
    "conftest_hijack",
]
SMALL_LIMITS = adversarial.SMALL
SECRET = "dojo-secret-" + secrets.token_hex(4)
LISTENER_PORT = 9999
RUNNERS = 2  # `--scale runner=2`: the app must find both behind the one service name
WEBS = 2  # two web replicas behind the proxy
METRICS_TOKEN = secrets.token_urlsafe(24)


@dataclass
class Deployment:
    client: docker.DockerClient
    url: str
    compose: list[str]
    env: dict[str, str]
    timings: dict[str, float] = field(default_factory=dict)

    def container(self, service: str):  # -> docker's Container
        return self.containers(service)[0]

    def containers(self, service: str) -> list:  # every replica of the service
        found = self.client.containers.list(
            all=True,
            filters={
                "label": [
                    f"com.docker.compose.project={PROJECT}",
                    f"com.docker.compose.service={service}",
                ]
            },
        )
        assert found, f"no container for {service}"
        return found

    def run_compose(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [*self.compose, "-p", PROJECT, *args],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
        )
        if check and result.returncode != 0:
            raise AssertionError(f"compose {' '.join(args)} failed:\n{result.stderr[-4000:]}")
        return result

    def exec(self, service: str, command: list[str], user: str | None = None) -> str:
        result = self.container(service).exec_run(command, user=user or "")
        output = result.output.decode(errors="replace")
        assert result.exit_code == 0, f"{service}: {command[:3]} exited {result.exit_code}:{output}"
        return output

    def psql(self, sql: str) -> str:
        return self.exec(
            "db", ["psql", "-U", "torchdojo", "-d", "torchdojo", "-tAc", sql], user="postgres"
        ).strip()


def wait_healthy(deployment: Deployment, services: list[str], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    for service in services:
        for container in deployment.containers(service):  # every replica
            while True:
                container.reload()
                status = container.attrs["State"].get("Health", {}).get("Status")
                if status == "healthy":
                    break
                if container.status == "exited" or time.monotonic() > deadline:
                    logs = container.logs(tail=60).decode(errors="replace")
                    raise AssertionError(f"{service} is {container.status}/{status}:\n{logs}")
                time.sleep(1)


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    started = time.monotonic()
    timings: dict[str, float] = {}
    env_file = tmp_path_factory.mktemp("compose") / "deploy-test.env"
    port = free_port()
    env_file.write_text(
        f"SECRET_KEY={secrets.token_urlsafe(48)}\n"
        f"POSTGRES_PASSWORD={secrets.token_hex(24)}\n"
        f"METRICS_TOKEN={METRICS_TOKEN}\n"
        # The test talks plain HTTP to the published port; a real site sits behind TLS.
        "SECURE_COOKIES=false\n"
        "WEB_BIND=127.0.0.1\n"
        f"WEB_PORT={port}\n"
        "RUNNER_POOL_SIZE=1\n"
        "RUNS_PER_MINUTE=100\n"
        "SIGNUPS_PER_ADDRESS=1000\n"
    )
    env = {
        **os.environ,
        "DOCKER_HOST": engine.DOCKER_HOST,
        "COMPOSE_HTTP_TIMEOUT": "600",  # the vfs storage driver is slow to create containers
    }
    with engine.engine() as client:
        timings["engine_s"] = time.monotonic() - started
        mark = time.monotonic()
        engine.ensure_python_base(client)
        timings["python_base_s"] = time.monotonic() - mark

        def timed(name: str, *steps: Callable[[], object]) -> None:
            begun = time.monotonic()
            for step in steps:
                step()
            timings[name] = time.monotonic() - begun

        # The rest waits mostly on the network and the disk: three lines of work side by side.
        mark = time.monotonic()
        with engine.build_inputs() as args, ThreadPoolExecutor(3) as pool:
            web, runner, postgres = (
                pool.submit(
                    timed,
                    "node_base_web_and_proxy_build_s",
                    lambda: engine.ensure_node_base(client),
                    lambda: engine.build(client, "docker/web.Dockerfile", engine.WEB_IMAGE, {}),
                    lambda: engine.ensure_debian_base(client),
                    lambda: engine.build(client, "docker/proxy.Dockerfile", engine.PROXY_IMAGE, {}),
                ),
                pool.submit(
                    timed,
                    "runner_build_s",
                    lambda: engine.build(
                        client, "docker/runner.Dockerfile", engine.RUNNER_IMAGE, args
                    ),
                ),
                pool.submit(timed, "postgres_base_s", lambda: engine.ensure_postgres_base(client)),
            )
            for future in (web, runner, postgres):
                future.result()
        timings["images_s"] = time.monotonic() - mark
        compose = [*engine.compose_command(), "--env-file", str(env_file)]
        deployment = Deployment(client, f"http://127.0.0.1:{port}", compose, env, timings)
        try:
            mark = time.monotonic()
            # A run that was killed may have left its containers and volumes (a database
            # volume with another password): start from nothing.
            deployment.run_compose("down", "--volumes", "--remove-orphans", check=False)
            engine.log(f"docker-compose up, {RUNNERS} runner replicas")
            deployment.run_compose(
                "up", "-d", "--no-build", "--scale", f"runner={RUNNERS}", "--scale", f"web={WEBS}"
            )
            wait_healthy(deployment, ["db", "runner", "web", "proxy"], timeout=300)
            deadline = time.monotonic() + 180
            while _warm(deployment) < RUNNERS:
                assert time.monotonic() < deadline, "a runner replica has no warm sandbox"
                time.sleep(1)
            timings["up_s"] = time.monotonic() - mark
            yield deployment
        finally:
            logs = engine.WORK / "logs"
            logs.mkdir(parents=True, exist_ok=True)
            for service in ("db", "prestart", "runner", "web", "proxy"):
                try:
                    text = deployment.container(service).logs().decode(errors="replace")
                    (logs / f"{service}.log").write_text(text)
                except Exception as exc:  # the logs are for diagnosis; never mask a failure
                    engine.log(f"no logs for {service}: {exc}")
            mark = time.monotonic()
            deployment.run_compose("down", "--volumes", "--remove-orphans", check=False)
            timings["down_s"] = time.monotonic() - mark
            timings["total_s"] = time.monotonic() - started
            (engine.WORK / "timings.json").write_text(json.dumps(timings, indent=2))
            engine.log("timings: " + ", ".join(f"{k}={v:.0f}" for k, v in timings.items()))


def _warm(deployment: Deployment) -> int:
    """How many runner replicas the web app sees (through the service name) with a warm sandbox."""
    try:
        health = httpx.get(f"{deployment.url}/healthz", timeout=5).json()
        return sum(r.get("pool", {}).get("warm", 0) >= 1 for r in health["runner"]["replicas"])
    except (httpx.HTTPError, ValueError, KeyError, TypeError):
        return 0


def test_the_seed_solution_passes_every_check_through_the_deployment(
    deployment: Deployment,
) -> None:
    learner = Learner(deployment.url).sign_up()
    code = (SEED / "solution.py").read_text()
    response = learner.post("/api/runs", json={"lesson": LESSON, "code": code, "mode": "check"})
    assert response.status_code == 201, response.text
    run_id = response.json()["id"]
    events = learner.events(run_id)

    done = events[-1]
    tests = [e for e in events if e["type"] == "test"]
    assert done["type"] == "done" and done["status"] == "completed", done
    assert tests and all(t["status"] == "passed" for t in tests), tests
    assert done["tests"] == {"passed": len(tests), "failed": 0, "errors": 0}
    assert events[0]["type"] == "started" and events[0]["device"] == "cpu"
    assert any(e["type"] == "summary" for e in events), "no model summary"
    assert len([e for e in events if e["type"] == "metric" and e["name"] == "loss"]) >= 2

    # The run and every event are in PostgreSQL.
    assert deployment.psql(f"SELECT status FROM runs WHERE id = '{run_id}'") == "completed"
    stored = int(deployment.psql(f"SELECT count(*) FROM run_events WHERE run_id = '{run_id}'"))
    assert stored == len(events)
    types = deployment.psql(
        f"SELECT string_agg(DISTINCT type, ',') FROM run_events WHERE run_id = '{run_id}'"
    )
    assert {"started", "summary", "metric", "test", "done"} <= set(types.split(","))
    assert deployment.psql(f"SELECT count(*) FROM users WHERE email = '{learner.email}'") == "1"

    # Health and metrics, as a monitoring system reads them.
    health = httpx.get(f"{deployment.url}/healthz", timeout=10).json()
    assert health["status"] == "ok" and health["database"] == "ok"
    # Each runner replica's own metrics (the service name would reach just one of them).
    completed = 0.0
    for runner in deployment.containers("runner"):
        text = runner.exec_run(["python", "-c", FETCH_LOCAL]).output.decode(errors="replace")
        found = re.search(r'^torchdojo_runner_runs_total\{status="completed"\} (\S+)$', text, re.M)
        completed += float(found.group(1)) if found else 0.0
    assert completed >= 1, "no runner replica counted the completed run"
    # The proxy sent the POST to one of the web replicas; it logged it.
    web_logs = [web.logs().decode(errors="replace") for web in deployment.containers("web")]
    assert any("POST /api/runs" in text for text in web_logs)


def test_runs_spread_over_the_runner_replicas_and_their_logs_share_the_run_id(
    deployment: Deployment,
) -> None:
    # The web app resolved the one service name to every replica.
    replicas = httpx.get(f"{deployment.url}/healthz", timeout=10).json()["runner"]["replicas"]
    assert len(replicas) == RUNNERS and all(r["status"] == "ok" for r in replicas), replicas

    # Learners at once: one sandbox per replica, so each replica takes one of the runs.
    learners = [Learner(deployment.url).sign_up() for _ in range(RUNNERS)]
    code = "import time\nprint('hello', flush=True)\ntime.sleep(4)\nprint('bye')"
    run_ids = []
    for learner in learners:
        response = learner.post("/api/runs", json={"lesson": LESSON, "code": code})
        assert response.status_code == 201, response.text
        run_ids.append(response.json()["id"])
    for learner, run_id in zip(learners, run_ids, strict=True):
        done = learner.events(run_id)[-1]
        assert done["type"] == "done" and done["status"] == "completed", done

    def finished(container) -> set[str]:  # run ids a service logged as finished (JSON lines)
        lines = container.logs().decode(errors="replace").splitlines()
        records = [json.loads(line) for line in lines if line.startswith("{")]
        return {r["run_id"] for r in records if r.get("message") == "run finished"} & set(run_ids)

    ran = [finished(runner) for runner in deployment.containers("runner")]
    assert sorted(len(ids) for ids in ran) == [1] * RUNNERS, ran
    # Each run was driven (and logged) by the web replica that took its POST.
    webs = deployment.containers("web")
    assert set().union(*(finished(web) for web in webs)) == set(run_ids)
    # Every replica's own metrics (through the proxy, one request reaches just one of them).
    counted = 0.0
    for web in webs:
        text = web.exec_run(["python", "-c", FETCH_WEB_METRICS]).output.decode(errors="replace")
        found = re.search(r'^torchdojo_web_runs_total\{status="completed"\} (\S+)$', text, re.M)
        counted += float(found.group(1)) if found else 0.0
    assert counted >= RUNNERS + 1, "the web replicas counted fewer completed runs than ran"


def test_the_runner_container_is_locked_down(deployment: Deployment) -> None:
    runner = deployment.container("runner")
    runner.reload()
    host = runner.attrs["HostConfig"]
    assert host["Privileged"] is False
    assert host["CapDrop"] == ["ALL"] and not host.get("CapAdd")
    assert host["ReadonlyRootfs"] is True
    assert "no-new-privileges:true" in host["SecurityOpt"]
    assert runner.attrs["Config"]["User"] == "10001:10001"
    networks = runner.attrs["NetworkSettings"]["Networks"]
    assert list(networks) == [f"{PROJECT}_sandbox"]
    assert deployment.client.networks.get(f"{PROJECT}_sandbox").attrs["Internal"] is True
    # No route out, from the runner container itself (not only from its sandboxes).
    probe = (
        "import socket\n"
        "for address in [('1.1.1.1', 53), ('8.8.8.8', 443)]:\n"
        "    try:\n"
        "        socket.create_connection(address, timeout=3).close(); print('ESCAPED', address)\n"
        "    except OSError as exc:\n"
        "        print('blocked', address, type(exc).__name__)\n"
    )
    output = deployment.exec("runner", ["python", "-c", probe])
    assert "ESCAPED" not in output and output.count("blocked") == 2, output


# Runs in the web container: POST one run to the runner over the internal network and print
# its NDJSON events. The request comes base64-encoded in argv[1].
RUN_ON_RUNNER = """
import base64, sys, httpx
body = base64.b64decode(sys.argv[1])
with httpx.stream("POST", "http://runner:8001/v1/runs", content=body, timeout=120,
                  headers={"content-type": "application/json"}) as response:
    assert response.status_code == 200, response.read()
    for line in response.iter_lines():
        if line:
            print(line, flush=True)
"""
FETCH_LOCAL = (
    "import urllib.request as u; "
    "print(u.urlopen('http://127.0.0.1:8001/metrics', timeout=10).read().decode())"
)
FETCH_WEB_METRICS = (
    "import os, urllib.request as u; "
    "r = u.Request('http://127.0.0.1:8000/metrics', "
    "headers={'Authorization': 'Bearer ' + os.environ['TORCHDOJO_METRICS_TOKEN']}); "
    "print(u.urlopen(r, timeout=10).read().decode())"
)
LISTENER = f"""
import socket
server = socket.socket()
server.bind(("127.0.0.1", {LISTENER_PORT}))
server.listen()
while True:
    connection, _ = server.accept()
    open("/tmp/reached", "a").write("reached\\n")
    connection.close()
"""
DAEMON_PROBE = """
import os
found = []
for pid in filter(str.isdigit, os.listdir("/proc")):
    try:
        cmdline = open(f"/proc/{pid}/cmdline", "rb").read().replace(b"\\0", b" ").strip()
    except OSError:
        continue
    if cmdline == b"sleep 987654":
        found.append(pid)
print(len(found))
"""


def run_on_runner(deployment: Deployment, code: str, **fields: object) -> list[dict]:
    body = json.dumps({"code": code, "mode": "run", "limits": SMALL_LIMITS} | fields)
    encoded = base64.b64encode(body.encode()).decode()
    output = deployment.exec("web", ["python", "-c", RUN_ON_RUNNER, encoded])
    return [json.loads(line) for line in output.splitlines() if line.startswith("{")]


@pytest.fixture(scope="module")
def runner_bait(deployment: Deployment) -> Path:
    """What hostile code must not reach in the runner container: a service on its loopback,
    and a secret file in its /tmp."""
    secret_file = Path(f"/tmp/{SECRET}.sqlite3")
    plant = f"echo password={SECRET} > {secret_file}; chmod 600 {secret_file}"
    for runner in deployment.containers("runner"):  # whichever replica takes the run
        runner.exec_run(["python", "-c", LISTENER], detach=True)
        assert runner.exec_run(["sh", "-c", plant]).exit_code == 0
    return secret_file


@pytest.mark.parametrize("case", HOSTILE)
def test_hostile_code_is_contained_in_the_runner_container(
    deployment: Deployment, runner_bait: Path, case: str
) -> None:
    hostile = adversarial.load(case)
    code = hostile.code(
        HOST_PORT=str(LISTENER_PORT),
        SECRET_FILE=str(runner_bait),
        SECRET_NAME=SECRET,
        SECRET=SECRET,
    )
    fields = hostile.request_fields()
    started = time.monotonic()
    events = run_on_runner(deployment, code, **fields)
    elapsed = time.monotonic() - started
    done = events[-1]
    stdout = "".join(e["text"] for e in events if e["type"] == "output" and e["stream"] == "stdout")
    assert done["type"] == "done" and done["status"] in hostile.expected, (done, stdout[-2000:])
    assert "ESCAPED" not in stdout, stdout
    assert elapsed < hostile.limits["wall_s"] + 60, f"took {elapsed:.0f}s"
    if hostile.checks is not None:  # conftest_hijack: its check ran, and failed
        assert done["tests"] == {"passed": 0, "failed": 1, "errors": 0}, done
    for runner in deployment.containers("runner"):
        reached = runner.exec_run(["cat", "/tmp/reached"])
        assert reached.exit_code != 0, "sandboxed code reached a service on the runner's loopback"
        if case == "setsid_daemon":
            time.sleep(0.5)
            daemons = runner.exec_run(["python", "-c", DAEMON_PROBE]).output.decode().strip()
            assert daemons == "0", f"a daemon outlived its sandbox in {runner.name}"

    # The runner is still healthy: the next learner's run works.
    after = run_on_runner(deployment, "print('still fine')")
    assert after[-1]["status"] == "completed", after
    assert "".join(e["text"] for e in after if e["type"] == "output") == "still fine\n"


# --- two web replicas behind the proxy ---------------------------------------------------------

# Runs in a web container: follow a run's events from that replica itself (127.0.0.1:8000, not
# through the proxy), with the learner's session cookie, and print them.
FOLLOW_HERE = """
import json, sys, httpx
cookie, run_id = sys.argv[1], sys.argv[2]
with httpx.stream("GET", f"http://127.0.0.1:8000/api/runs/{run_id}/events", timeout=180,
                  headers={"cookie": cookie}) as response:
    for line in response.iter_lines():
        if line.startswith("data: "):
            print(line[6:], flush=True)
"""
REPLICA = (
    "import json, urllib.request as u; "
    "print(json.load(u.urlopen('http://127.0.0.1:8000/livez', timeout=10))['replica'])"
)
TICKS = "import time\nfor i in range({n}):\n    print('tick', i, flush=True)\n    time.sleep({s})\n"


def _cookie(learner: Learner) -> str:
    return "; ".join(f"{name}={value}" for name, value in learner.client.cookies.items())


def _start(learner: Learner, code: str) -> str:
    response = learner.post("/api/runs", json={"lesson": LESSON, "code": code, "mode": "run"})
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def test_a_run_is_followed_through_either_web_replica(deployment: Deployment) -> None:
    webs = deployment.containers("web")
    assert len(webs) == WEBS
    learner = Learner(deployment.url).sign_up()
    run_id = _start(learner, TICKS.format(n=6, s=0.5))
    seen = []
    for web in webs:  # the run is driven by one of them; both follow it
        output = web.exec_run(["python", "-c", FOLLOW_HERE, _cookie(learner), run_id])
        events = [json.loads(line) for line in output.output.decode().splitlines() if line]
        assert events and events[-1]["type"] == "done", (web.name, events[-3:])
        assert [e["seq"] for e in events] == list(range(len(events)))
        seen.append(events)
    assert seen[0] == seen[1], "the two replicas told the run differently"
    assert seen[0][-1]["status"] == "completed"
    # The web app's metrics are behind the public proxy: only with the token.
    assert httpx.get(f"{deployment.url}/metrics").status_code == 401
    metrics = httpx.get(
        f"{deployment.url}/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"}
    )
    assert metrics.status_code == 200 and "torchdojo_web_http_requests_total" in metrics.text


def _follow_like_a_browser(
    deployment: Deployment, learner: Learner, run_id: str, seen: list[dict]
) -> None:
    """EventSource's way: on a broken connection, reconnect with the last id it saw."""
    last = None
    for _ in range(20):
        headers = {"Last-Event-ID": str(last)} if last is not None else {}
        try:
            with learner.client.stream(
                "GET", f"/api/runs/{run_id}/events", headers=headers, timeout=120
            ) as stream:
                for line in stream.iter_lines():
                    if line.startswith("id: "):
                        last = int(line[4:])
                    elif line.startswith("data: "):
                        seen.append(json.loads(line[6:]))
                        if seen[-1]["type"] == "done":
                            return
        except httpx.HTTPError:
            pass
        time.sleep(1)


def test_a_web_replica_killed_mid_run_leaves_the_stream_ending_on_the_survivor(
    deployment: Deployment,
) -> None:
    learner = Learner(deployment.url).sign_up()
    run_id = _start(learner, TICKS.format(n=400, s=0.25))
    seen: list[dict] = []
    follower = threading.Thread(
        target=_follow_like_a_browser, args=(deployment, learner, run_id, seen), daemon=True
    )
    follower.start()
    deadline = time.monotonic() + 60
    while sum(e["type"] == "output" for e in seen) < 4:
        assert time.monotonic() < deadline, seen
        time.sleep(0.2)
    driver = deployment.psql(f"SELECT driver FROM runs WHERE id = '{run_id}'")
    replicas = {
        web.exec_run(["python", "-c", REPLICA]).output.decode().strip(): web
        for web in deployment.containers("web")
    }
    assert driver in replicas, (driver, list(replicas))
    replicas[driver].kill()
    follower.join(120)
    assert not follower.is_alive(), "the stream never ended"
    done = seen[-1]
    assert done["type"] == "done" and done["status"] == "internal_error", done
    assert "server restarted" in done["error"]["message"]
    seqs = [e["seq"] for e in seen]
    assert seqs == list(range(len(seqs))), "an event was lost or told twice"
    # The site goes on: the next run completes (on the survivor, whatever the proxy picks).
    again = _start(learner, "print('after')")
    assert learner.events(again)[-1]["status"] == "completed"
    replicas[driver].start()  # as `restart:` would, for the tests after this one
    wait_healthy(deployment, ["web"], timeout=300)


def test_a_run_waiting_in_the_queue_keeps_its_stream_through_the_proxy(
    deployment: Deployment,
) -> None:
    """Every sandbox busy (a pool of one per runner replica, and one more run than there are
    replicas): a later run waits in line, its stream quiet but for keep-alive comments, and
    its one connection through the proxy lasts until its done."""
    busy = [Learner(deployment.url).sign_up() for _ in range(RUNNERS + 1)]
    holders = [_start(learner, TICKS.format(n=1, s=25)) for learner in busy]
    waiting = Learner(deployment.url).sign_up()
    run_id = _start(waiting, "print('my turn')")
    lines = []
    with waiting.client.stream("GET", f"/api/runs/{run_id}/events", timeout=180) as stream:
        for line in stream.iter_lines():
            lines.append(line)
            if line.startswith("data: ") and '"type":"done"' in line:
                break
    events = [json.loads(line[6:]) for line in lines if line.startswith("data: ")]
    assert events[0]["type"] == "queued", events[:3]
    assert events[-1]["status"] == "completed", events[-1]
    assert any(line.startswith(":") for line in lines), "no keep-alive while it waited"
    for learner, holder in zip(busy, holders, strict=True):
        assert learner.events(holder)[-1]["status"] == "completed"
