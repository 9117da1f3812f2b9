"""Hostile code, one file each under adversarial/: each must end with the right done.status,
never print "ESCAPED", and leave the pool healthy for the next learner."""

from __future__ import annotations

import asyncio
import os
import re
import socket
import threading
import time
from pathlib import Path

import pytest

from runner.protocol import RunRequest, SandboxLimits
from tests.runner.conftest import PoolDriver, done_of, output_of

CASES = Path(__file__).with_name("adversarial")
SECRET = "dojo-secret-7f3a9c"
SMALL = SandboxLimits(wall_s=8, memory_mb=768, output_kb=64, processes=64)


def expected_statuses(source: str) -> set[str]:
    match = re.search(r"^# Expect: (.+)$", source, re.MULTILINE)
    assert match, "every adversarial case says what it expects"
    return {status.strip() for status in match.group(1).split(",")}


@pytest.fixture(scope="module")
def host_listener():
    """A service on the host's loopback that sandboxed code must not reach."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    accepted: list[object] = []

    def accept() -> None:
        while True:
            try:
                accepted.append(server.accept())
            except OSError:
                return

    threading.Thread(target=accept, daemon=True).start()
    yield server.getsockname()[1], accepted
    server.close()


@pytest.fixture(scope="module")
def secret_file(tmp_path_factory):
    """A database file beside the service, and a secret in the service's environment."""
    folder = tmp_path_factory.mktemp("service")
    path = folder / f"{SECRET}.sqlite3"
    path.write_text(f"password={SECRET}")
    os.environ["TORCHDOJO_SECRET_KEY"] = SECRET
    yield path
    os.environ.pop("TORCHDOJO_SECRET_KEY", None)


@pytest.mark.parametrize("case", sorted(p.stem for p in CASES.glob("*.py") if "." not in p.stem))
def test_hostile_code_is_contained(pool: PoolDriver, case: str, host_listener, secret_file) -> None:
    port, accepted = host_listener
    source = (CASES / f"{case}.py").read_text()
    code = (
        source.replace("{HOST_PORT}", str(port))
        .replace("{SECRET_FILE}", str(secret_file))
        .replace("{SECRET_NAME}", SECRET)
        .replace("{SECRET}", SECRET)
    )
    checks = CASES / f"{case}.checks.py"
    fields = {"mode": "check", "checks": checks.read_text()} if checks.exists() else {}
    events = pool.run(code, limits=SMALL, **fields)
    done = done_of(events)
    elapsed = done.t - events[0].t  # from the sandbox taking the job to its end
    stdout = output_of(events)

    assert done.status in expected_statuses(source), (
        done,
        stdout[-2000:],
        output_of(events, "stderr")[-2000:],
    )
    assert "ESCAPED" not in stdout, stdout
    assert elapsed < SMALL.wall_s + 10, f"the run took {elapsed:.1f}s; limits must stop it"
    assert not accepted, "sandboxed code reached a service on the host's loopback"
    if case == "output_flood":
        assert len(stdout.encode()) <= SMALL.output_kb * 1024
    if case == "forge_test":
        tests = [e for e in events if e.type == "test"]
        assert [(t.name, t.status) for t in tests] == [("The answer is 42", "failed")]
        assert done.tests is not None and done.tests.passed == 0 and done.tests.failed == 1
        assert '"status": "passed"' in stdout  # the printed forgery is just output
    if case == "forge_pipe":
        # One done, the supervisor's (pool.run asserted it and the gapless seq); what the
        # forged lines said appears nowhere, and the real check ran and failed.
        assert "forged on" in stdout and "forged output" not in stdout
        assert [e.type for e in events].count("started") == 1
        assert all(getattr(e, "device", "") != "forged" for e in events)
        assert not [e for e in events if e.type == "metric"]
        tests = [e for e in events if e.type == "test"]
        assert [(t.name, t.status) for t in tests] == [("The answer is 42", "failed")]
        assert done.tests is not None and (done.tests.passed, done.tests.failed) == (0, 1)
    if case == "setsid_daemon":
        time.sleep(0.5)
        leftovers = [
            p for p in Path("/proc").iterdir() if p.name.isdigit() and _cmdline(p) == "sleep 987654"
        ]
        assert not leftovers, "a daemon outlived its sandbox"
    if case == "fill_disk":
        assert "stopped after" in stdout

    # The pool is still healthy: the next learner's run works.
    after = pool.run('print("still fine")')
    assert done_of(after).status == "completed" and output_of(after) == "still fine\n"


def _cmdline(proc: Path) -> str:
    try:
        return (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
    except OSError:
        return ""


def test_hostile_run_does_not_stall_another(pool: PoolDriver) -> None:
    """A fork bomb and a friendly run at once: the friendly one finishes quickly and intact."""
    bomb = (CASES / "fork_bomb.py").read_text()
    pool.call(pool.pool.wait_warm())
    hostile = asyncio.run_coroutine_threadsafe(
        pool.collect(RunRequest(code=bomb, limits=SMALL)), pool.loop
    )
    time.sleep(0.5)
    started = time.monotonic()
    friendly = pool.run("import torch\nprint(torch.ones(3).sum().item())")
    assert time.monotonic() - started < 5
    assert done_of(friendly).status == "completed" and output_of(friendly) == "3.0\n"
    events = hostile.result(60)
    assert done_of(events).status in {"timeout", "error"}


def test_sandbox_runs_as_unprivileged_user_without_capabilities(pool: PoolDriver) -> None:
    code = (
        "import os\n"
        "status = open('/proc/self/status').read()\n"
        "wanted = ('CapEff', 'CapBnd', 'NoNewPrivs')\n"
        "caps = [l for l in status.splitlines() if l.startswith(wanted)]\n"
        "print(os.getuid(), os.getgid(), *caps, sep='|')\n"
        "print(open('/proc/1/cmdline').read().split(chr(0))[0])\n"
    )
    events = pool.run(code)
    uid, gid, *caps = output_of(events).splitlines()[0].split("|")
    if os.geteuid() == 0:
        assert int(uid) >= pool.pool.settings.uid_base
    assert uid != "0" and gid != "0"
    assert "CapEff:\t0000000000000000" in caps and "CapBnd:\t0000000000000000" in caps
    assert "NoNewPrivs:\t1" in caps or os.geteuid() != 0
