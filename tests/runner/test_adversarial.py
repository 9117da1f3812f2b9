"""Hostile code, one file each under adversarial/: each must end with the right done.status,
never print "ESCAPED", and leave the pool healthy for the next learner."""

from __future__ import annotations

import asyncio
import json
import os
import re
import socket
import subprocess
import sys
import sysconfig
import tempfile
import threading
import time
from pathlib import Path

import pytest

from runner.protocol import EventAdapter, RunRequest, SandboxLimits
from tests.support import adversarial
from tests.support.runner import PoolDriver, done_of, output_of

CASES = adversarial.CASES

SECRET = "dojo-secret-7f3a9c"
SMALL = SandboxLimits(**adversarial.SMALL)


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


@pytest.mark.parametrize("case", adversarial.names())
def test_hostile_code_is_contained(pool: PoolDriver, case: str, host_listener, secret_file) -> None:
    port, accepted = host_listener
    hostile = adversarial.load(case)
    code = hostile.code(
        HOST_PORT=str(port), SECRET_FILE=str(secret_file), SECRET_NAME=SECRET, SECRET=SECRET
    )
    zygotes = [(z.name, z.process.pid if z.process else None) for z in pool.pool.zygotes]
    fields = hostile.request_fields()
    limits = SandboxLimits(**fields.pop("limits"))
    events = pool.run(code, limits=limits, **fields)
    done = done_of(events)
    elapsed = done.t - events[0].t  # from the sandbox taking the job to its end
    stdout = output_of(events)

    assert done.status in hostile.expected, (
        done,
        stdout[-2000:],
        output_of(events, "stderr")[-2000:],
    )
    assert "ESCAPED" not in stdout, stdout
    assert elapsed < limits.wall_s + 30, f"the run took {elapsed:.1f}s; limits must stop it"
    assert not accepted, "sandboxed code reached a service on the host's loopback"
    if case == "output_flood":
        assert len(stdout.encode()) <= SMALL.output_kb * 1024
    if case in ("forge_test", "conftest_hijack"):
        tests = [e for e in events if e.type == "test"]
        assert [(t.name, t.status) for t in tests] == [("The answer is 42", "failed")]
        assert done.tests is not None and done.tests.passed == 0 and done.tests.failed == 1
    if case == "forge_test":
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
        # Never more than the run's files limit (the mount's size, or the supervisor's watch
        # of both tmpfs mounts together), whichever folder it wrote to.
        written = [int(n) for n in re.findall(r"stopped after (\d+) MiB", stdout)]
        assert written and all(mib <= SMALL.tmpfs_mb for mib in written), written
        assert sum(written) <= SMALL.tmpfs_mb + 64, written  # + what one 100 ms poll lets by
    if case == "signal_parent":
        assert done.error is not None and done.error.type == "ProcessLookupError", done

    # The zygote every sandbox comes from is untouched: the same process, still serving.
    assert [(z.name, z.process.pid if z.process else None) for z in pool.pool.zygotes] == zygotes
    assert all(z.alive for z in pool.pool.zygotes)
    # The pool is still healthy: the next learner's run works.
    after = pool.run('print("still fine")')
    assert done_of(after).status == "completed" and output_of(after) == "still fine\n"


def _cmdline(proc: Path) -> str:
    try:
        return (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
    except OSError:
        return ""


def test_hostile_run_does_not_stall_another(pool: PoolDriver) -> None:
    """A fork bomb and a friendly run at once: the friendly one finishes intact while the bomb
    still runs (not after it), and the zygote forks fresh sandboxes meanwhile (it is not out of
    processes either)."""
    bomb = (CASES / "fork_bomb.py").read_text()
    pool.call(pool.pool.wait_warm())
    hostile = asyncio.run_coroutine_threadsafe(
        pool.collect(RunRequest(code=bomb, limits=SMALL)), pool.loop
    )
    time.sleep(0.5)
    friendly = pool.run("import torch\nprint(torch.ones(3).sum().item())")
    assert done_of(friendly).status == "completed" and output_of(friendly) == "3.0\n"
    pool.call(pool.pool.wait_warm(timeout=120))  # refilled from the zygote during the bomb
    assert not hostile.done(), "the friendly run (and the refill) waited for the bomb to end"
    events = hostile.result(60)
    assert done_of(events).status in {"timeout", "error"}


FORK_20 = """
import os, time
children, refused = [], 0
for _ in range(20):
    try:
        pid = os.fork()
    except OSError:
        refused += 1
        continue
    if pid == 0:
        time.sleep(3)
        os._exit(0)
    children.append(pid)
print(len(children), refused)
for pid in children:
    os.waitpid(pid, 0)
"""

UNPRIVILEGED_PAIR = """
import asyncio, json, sys, time
from runner.config import RunnerSettings
from runner.pool import WarmPool
from runner.protocol import EventAdapter, RunRequest, SandboxLimits

async def main():
    limits = SandboxLimits(wall_s=8, memory_mb=768, output_kb=64, processes=64)
    async with WarmPool(RunnerSettings(pool_size=2, queue_size=4), size=2) as pool:
        await pool.wait_warm()
        async def collect(request):
            return [event async for event in pool.run(request)]
        hostile = asyncio.create_task(collect(RunRequest(code=sys.argv[1], limits=limits)))
        await asyncio.sleep(1.0)
        started = time.monotonic()
        friendly = await collect(RunRequest(code=sys.argv[2]))
        elapsed = time.monotonic() - started
        bomb_still_running = not hostile.done()
        bomb = await hostile
        small = SandboxLimits(wall_s=20, processes=8)
        forks = await collect(RunRequest(code=sys.argv[3], limits=small))
        fill = "open('/tmp/big', 'wb').write(b'x' * (40 << 20))\\nimport time\\ntime.sleep(5)"
        files = await collect(RunRequest(code=fill, limits=SandboxLimits(wall_s=20, tmpfs_mb=16)))
        print(json.dumps({
            "friendly": [e.model_dump() for e in friendly],
            "elapsed": elapsed,
            "bomb_still_running": bomb_still_running,
            "bomb": bomb[-1].model_dump(),
            "forks": [e.model_dump() for e in forks],
            "files": files[-1].model_dump(),
        }))

asyncio.run(main())
"""


def _python_for_uid(uid: int, tmp_path_factory) -> str:
    """This virtualenv's Python, as a user who cannot read root's home (where pyenv may keep
    the interpreter): the system's Python of the same version over this venv's packages."""
    real = Path(sys.executable).resolve()
    probe = ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups", "test", "-x"]
    if subprocess.run([*probe, str(real)]).returncode == 0:
        return sys.executable
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    system = Path("/usr/bin", version)
    if not system.exists():
        pytest.skip(f"no Python that uid {uid} can run")
    base = Path(tempfile.mkdtemp(prefix="dojo-unprivileged-"))
    base.chmod(0o755)  # pytest's own tmp folders are private to root
    venv = base / "venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "lib" / version).mkdir(parents=True)
    (venv / "bin" / "python3").symlink_to(system)
    packages = sysconfig.get_paths()["purelib"]
    (venv / "lib" / version / "site-packages").symlink_to(Path(packages).resolve())
    (venv / "pyvenv.cfg").write_text("home = /usr/bin\ninclude-system-site-packages = false\n")
    return str(venv / "bin" / "python3")


@pytest.mark.skipif(os.geteuid() != 0, reason="unprivileged already: the test above is this one")
def test_hostile_run_does_not_stall_another_unprivileged(tmp_path_factory) -> None:
    """The deployment's setting: the runner as one unprivileged uid (docker-compose's 10001), so
    every slot shares that uid and no cgroup exists. A fork bomb in one slot must not starve a
    friendly run in the other: each sandbox's RLIMIT_NPROC is counted in its own user namespace.
    """
    friendly = (
        "import os, torch\n"
        "pids = [os.fork() for _ in range(4)]\n"  # the friendly run needs processes too
        "if 0 in pids:\n"
        "    os._exit(0)\n"
        "for pid in pids:\n"
        "    os.waitpid(pid, 0)\n"
        "print(torch.ones(3).sum().item())\n"
    )
    root = Path(__file__).resolve().parents[2]
    python = _python_for_uid(10001, tmp_path_factory)
    result = subprocess.run(
        [
            "setpriv",
            "--reuid=10001",
            "--regid=10001",
            "--clear-groups",
            python,
            "-c",
            UNPRIVILEGED_PAIR,
            (CASES / "fork_bomb.py").read_text(),
            friendly,
            FORK_20,
        ],
        capture_output=True,
        text=True,
        timeout=400,
        cwd=root,
        env={
            "PATH": os.environ["PATH"],
            "HOME": str(Path(python).parents[2]),
            "PYTHONPATH": str(root),
        },
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.splitlines()[-1])
    events = [EventAdapter.validate_python(e) for e in report["friendly"]]
    assert done_of(events).status == "completed", report
    assert output_of(events) == "3.0\n"
    assert report["bomb_still_running"], report  # it finished while the bomb ran, not after
    assert report["bomb"]["status"] in {"timeout", "error"}
    # A job's own `processes` holds here too (no cgroup: RLIMIT_NPROC, per user namespace).
    forks = [EventAdapter.validate_python(e) for e in report["forks"]]
    started, refused = map(int, output_of(forks).split())
    assert started < 8 and started + refused == 20, (started, refused)
    # And its tmpfs_mb: the supervisor can read an unprivileged sandbox's mounts too.
    assert report["files"]["status"] == "memory_limit", report["files"]
    assert report["files"]["error"]["type"] == "FilesLimit"


def test_concurrent_slots_run_as_different_users(pool: PoolDriver) -> None:
    if os.geteuid() != 0:
        pytest.skip("unprivileged, every slot keeps the service's uid in its own user namespace")
    code = "import os, time\nprint(os.getuid(), flush=True)\ntime.sleep(1)\n"

    async def both() -> list[list]:
        await pool.pool.wait_warm()
        runs = [pool.collect(RunRequest(code=code)) for _ in range(2)]
        return list(await asyncio.gather(*runs))

    first, second = pool.call(both())
    uids = {int(output_of(first)), int(output_of(second))}
    assert len(uids) == 2, uids
    assert all(uid >= pool.pool.settings.uid_base for uid in uids)


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
