"""What the zygote adds, and what must hold despite it: nothing a job does reaches the zygote,
a later job or a concurrent one; a zygote that dies ends its runs clearly and is replaced; a
worn zygote is replaced while it serves; queued runs are served fairly and told their place;
two runners on one host never share sandbox uids.

The hostile programs are files in adversarial/pairs/, each saying what it tries.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import secrets
import signal
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from runner.config import RunnerSettings
from runner.pool import WarmPool
from runner.protocol import Event, RunRequest, SandboxLimits
from runner.sandbox import uids
from runner.sandbox.command import (
    HARNESS_DIR,
    Identity,
    ZygoteFds,
    readonly_trees,
    zygote_command,
)
from tests.support.runner import PoolDriver, assert_well_formed, done_of, output_of

PAIRS = Path(__file__).with_name("adversarial") / "pairs"
LIMITS = SandboxLimits(wall_s=60, memory_mb=768, output_kb=64)


def pair(name: str, **values: str) -> str:
    code = (PAIRS / f"{name}.py").read_text()
    for key, value in values.items():
        code = code.replace("{" + key + "}", value)
    return code


@pytest.fixture(scope="module")
def small_pool() -> Iterator[PoolDriver]:
    """A pool of one with a zygote that wears out after a few sandboxes: for the tests that
    kill or replace zygotes, away from the session's pool."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    settings = RunnerSettings(pool_size=1, queue_size=16, zygote_max_jobs=6)
    warm = WarmPool(settings, size=1)
    driver = PoolDriver(warm, loop)
    driver.call(warm.start())
    yield driver
    driver.call(warm.close())
    loop.call_soon_threadsafe(loop.stop)
    thread.join(10)


# -- nothing carries over, nothing crosses --


def test_a_job_leaves_nothing_for_the_next(pool: PoolDriver) -> None:
    first = pool.run(pair("leave_behind"), limits=LIMITS)
    assert done_of(first).status == "completed", output_of(first, "stderr")
    assert "left behind (shm " in output_of(first)
    then = pool.run(pair("look_behind"), limits=LIMITS)
    assert done_of(then).status == "completed", output_of(then, "stderr")
    assert output_of(then) == "nothing left behind\n"


def test_a_job_never_learns_the_previous_jobs_code(pool: PoolDriver) -> None:
    prefix = "prev-job-secret-"
    secret = prefix + secrets.token_hex(16)
    first = pool.run(pair("remember_code", SECRET=secret), limits=LIMITS)
    assert done_of(first).status == "completed", output_of(first, "stderr")
    digest = hashlib.sha256(secret.encode()).hexdigest()
    then = pool.run(pair("find_code", SECRET_HASH=digest, PREFIX=prefix), limits=LIMITS)
    assert done_of(then).status == "completed", output_of(then, "stderr")
    assert output_of(then) == "no trace of the previous job\n"


def test_concurrent_sandboxes_cannot_reach_each_other(pool: PoolDriver) -> None:
    async def both() -> tuple[list[Event], list[Event]]:
        await pool.pool.wait_warm()
        holder_events: list[Event] = []
        holding = asyncio.Event()

        async def hold() -> None:
            async for event in pool.pool.run(RunRequest(code=pair("sibling_holder"))):
                holder_events.append(event)
                if event.type == "output" and "holding" in event.text:
                    holding.set()

        holder = asyncio.create_task(hold())
        await asyncio.wait_for(holding.wait(), 120)
        prober = [e async for e in pool.pool.run(RunRequest(code=pair("sibling_prober")))]
        holder.cancel()
        await asyncio.gather(holder, return_exceptions=True)
        return holder_events, prober

    holder, prober = pool.call(both())
    assert "holding" in output_of(holder)
    assert "-1" not in output_of(holder).split("holding", 1)[1], output_of(holder)
    assert_well_formed(prober)
    assert output_of(prober) == "no way to the sibling\n", output_of(prober)


# -- the zygote's life --


def test_the_zygote_is_single_threaded_and_jobs_see_none_of_it(pool: PoolDriver) -> None:
    zygote = pool.pool.zygotes[0]
    assert zygote.threads == 1
    events = pool.run("import os\nprint(os.getpid(), os.getppid())")
    assert output_of(events) == "2 1\n"  # pid 2 under its own init, in its own pid namespace


def test_a_dying_zygote_ends_its_runs_clearly_and_is_replaced(small_pool: PoolDriver) -> None:
    async def scenario() -> tuple[list[Event], str, str]:
        await small_pool.pool.wait_warm()
        zygote = small_pool.pool.zygotes[0]
        events: list[Event] = []

        async def collect() -> None:
            code = "import time\nprint('running', flush=True)\ntime.sleep(60)"
            async for event in small_pool.pool.run(RunRequest(code=code)):
                events.append(event)

        run = asyncio.create_task(collect())
        while not any(e.type == "output" for e in events):
            await asyncio.sleep(0.05)
        os.kill(_zygote_python(zygote.init_pid), signal.SIGKILL)
        await asyncio.wait_for(run, 60)  # nothing hangs
        await small_pool.pool.wait_warm(timeout=180)
        return events, zygote.name, small_pool.pool.zygotes[0].name

    events, before, after = small_pool.call(scenario())
    assert_well_formed(events)
    done = done_of(events)
    assert done.status == "internal_error" and done.error is not None
    assert "stopped unexpectedly" in done.error.message and "run it again" in done.error.message
    assert after != before
    again = small_pool.run("print('after the zygote died')")
    assert done_of(again).status == "completed" and output_of(again) == "after the zygote died\n"


def test_a_worn_zygote_is_replaced_while_runs_go_on(small_pool: PoolDriver) -> None:
    """zygote_max_jobs=6: past six sandboxes a fresh zygote warms up while the worn one goes on
    serving, then takes over; every run meanwhile completes, and the worn one exits once it
    holds nothing."""
    first = small_pool.pool.zygotes[0]
    deadline = time.monotonic() + 240
    runs = 0
    while small_pool.pool.zygotes[0] is first:
        assert time.monotonic() < deadline, f"no fresh zygote after {runs} runs"
        events = small_pool.run(f"print({runs})")
        assert done_of(events).status == "completed" and output_of(events) == f"{runs}\n"
        runs += 1
        time.sleep(0.2)
    assert runs > 6
    while first.process is not None and first.process.returncode is None:
        assert time.monotonic() < deadline, "the worn zygote never exited"
        time.sleep(0.1)
    events = small_pool.run("print('fresh')")
    assert output_of(events) == "fresh\n"


def _zygote_python(init_pid: int | None) -> int:
    """The zygote's own process: the child of bubblewrap's pid 1 in its namespace."""
    assert init_pid is not None
    children = Path(f"/proc/{init_pid}/task/{init_pid}/children").read_text().split()
    return int(children[0])


# -- fairness --


def test_queued_runs_take_turns_by_owner_and_hear_their_place(small_pool: PoolDriver) -> None:
    """Pool of one: a's first run holds it; a's next two and then b's one wait. b's starts
    next (a has had its turn), then a's; each waiting run hears its place as it changes."""
    code = "import time\ntime.sleep(0.4)\nprint('{name}')"

    async def scenario() -> dict[str, list[Event]]:
        await small_pool.pool.wait_warm()
        runs: dict[str, list[Event]] = {}
        order: list[str] = []

        async def collect(name: str, owner: str) -> None:
            runs[name] = []
            request = RunRequest(code=code.replace("{name}", name), owner=owner)
            async for event in small_pool.pool.run(request):
                runs[name].append(event)
                if event.type == "started":
                    order.append(name)

        tasks = [asyncio.create_task(collect("a1", "a"))]
        while "a1" not in order:
            await asyncio.sleep(0.01)
        for name, owner in (("a2", "a"), ("a3", "a"), ("b1", "b")):
            tasks.append(asyncio.create_task(collect(name, owner)))
            await asyncio.sleep(0.05)
        await asyncio.gather(*tasks)
        runs["order"] = order  # type: ignore[assignment]
        return runs

    runs = small_pool.call(scenario())
    assert runs.pop("order") == ["a1", "b1", "a2", "a3"]  # type: ignore[comparison-overlap]
    for events in runs.values():
        assert_well_formed(events)
        assert done_of(events).status == "completed"
    positions = {name: [e.position for e in ev if e.type == "queued"] for name, ev in runs.items()}
    assert positions["a1"] == []  # it never waited: not a word about waiting
    assert positions["b1"][0] == 1
    assert positions["a2"][:2] == [1, 2]  # b arrived and went ahead of it
    assert positions["a3"][0] == 2 and positions["a3"][-1] == 1


# -- uids --


def test_uid_blocks_are_leased_one_runner_each(tmp_path: Path) -> None:
    first = uids.lease(70000, 4, str(tmp_path))
    second = uids.lease(70000, 4, str(tmp_path))
    assert (first.first, second.first) == (70000, 70000 + uids.BLOCK_SIZE)
    assert first.zygote_uid == 70000 and first.take() == 70001
    first.close()
    third = uids.lease(70000, 4, str(tmp_path))
    assert third.first == 70000  # free again once its holder is gone
    with pytest.raises(uids.UidsExhausted, match="RUNNER_UID_BLOCKS"):
        for _ in range(4):
            uids.lease(70000, 4, str(tmp_path))
    second.close()
    third.close()


def test_two_runners_on_one_host_never_share_sandbox_uids(
    pool: PoolDriver, small_pool: PoolDriver
) -> None:
    if os.geteuid() != 0:
        pytest.skip("unprivileged, jobs keep the runner's uid (each in its own user namespace)")
    code = "import os\nprint(os.getuid())"
    seen = {}
    for name, driver in (("session", pool), ("small", small_pool)):
        block = driver.pool.uids
        assert block is not None
        uid = int(output_of(driver.run(code)))
        assert block.first < uid < block.first + block.size
        seen[name] = block.first
    assert seen["session"] != seen["small"]


# -- the command, read without running it --


def _command(privileged: bool) -> list[str]:
    return zygote_command(
        RunnerSettings(pool_size=2),
        bwrap="bwrap",
        fds=ZygoteFds(*range(3, 10)),
        identity=Identity(5000, (5001, 5002)),
        privileged=privileged,
    )


@pytest.mark.parametrize("privileged", [True, False])
def test_the_zygotes_sandbox_leaves_room_for_the_jobs_own(privileged: bool) -> None:
    args = _command(privileged)
    text = " ".join(args)
    # Each job makes its own user namespace inside: never forbidden here.
    assert "--disable-userns" not in args
    assert "--unshare-net" in args or "--unshare-all" in args
    # Nothing writable that jobs would share: everything read-only but the tmpfs mounts each
    # job replaces with its own.
    for path in ("/", "/dev", "/dev/pts"):
        assert f"--remount-ro {path}" in text, path
    # What comes from the host: the system's programs and libraries, the Python install and
    # its packages, the harness; read-only, and nothing else.
    sources = {args[i + 1] for i, arg in enumerate(args) if arg in ("--bind", "--ro-bind")}
    expected = {"/usr", "/etc/ld.so.cache", str(HARNESS_DIR), *readonly_trees(sys.executable)}
    expected |= {f"/{name}" for name in ("bin", "lib", "lib64", "lib32", "sbin")}
    assert sources <= expected, sources - expected
    assert "--bind" not in args and "--dev-bind" not in args  # no GPU here, nothing writable
    assert "--seccomp" in args and "-P" in args  # nothing from /tmp on the zygote's sys.path
    assert args[args.index("--") + 1 :][-2:] == ["-m", "harness"]
    if privileged:
        # As root: bubblewrap without CAP_DAC_OVERRIDE (so the zygote's /proc is left whole and
        # each job may mount its own), then the zygote drops to its own uid and every capability.
        assert args[args.index("setpriv") + 1] == "--bounding-set=-dac_override,-dac_read_search"
        after = args[args.index("--") :]
        assert (
            "--reuid=5000" in after and "--no-new-privs" in after and "--bounding-set=-all" in after
        )
    else:
        assert "--unshare-user" in args and "--cap-drop" in args


def test_the_identity_files_name_every_uid() -> None:
    files = Identity(5000, (5001, 5002)).files()
    passwd = files["passwd"].decode()
    assert "dojo:x:5000:" in passwd and "learner:x:5001:" in passwd and "learner:x:5002:" in passwd
    alone = Identity(10001, (10001,)).files()["passwd"].decode()  # unprivileged: one uid
    assert alone.count("10001") == 2 and "dojo" not in alone
