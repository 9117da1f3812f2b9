"""A real Docker engine for the deployment test, as /work/shared/docker-here.md's recipe does it.

Installs docker.io, docker-compose and debootstrap with apt-get when they are missing (as root),
starts dockerd on its own socket and data root, makes the base images that cannot be pulled here
(debootstrap stand-ins tagged with the names the Dockerfiles use, see standins/README.md), and
builds the web and runner images with a CPU build of torch.
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import subprocess
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path

import docker  # the SDK (site-packages), not the repository's docker/ folder of Dockerfiles

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
WORK = Path(os.environ.get("DEPLOY_TEST_WORK", "/tmp/dojo-deploy"))
SOCKET = "/tmp/dojo-docker.sock"
DOCKER_HOST = f"unix://{SOCKET}"
PIDFILE = Path("/tmp/dojo-docker.pid")
DAEMON_LOG = Path("/tmp/dojo-dockerd.log")

PYTHON_BASE = "python:3.11.13-slim-bookworm"
NODE_BASE = "node:20.19.2-bookworm-slim"
POSTGRES_BASE = "postgres:15.13-bookworm"
DEBIAN_BASE = "debian:12.11-slim"
WEB_IMAGE = "torchdojo/web:0.1.0"
RUNNER_IMAGE = "torchdojo/runner:0.1.0"
PROXY_IMAGE = "torchdojo/proxy:0.1.0"
TORCH_CPU = "torch==2.13.0+cpu"


def log(message: str) -> None:
    print(f"[deploy-test {time.strftime('%H:%M:%S')}] {message}", flush=True)


def sh(*args: str, **kwargs: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, check=True, text=True, **kwargs)  # type: ignore[call-overload]


def install_packages() -> None:
    """docker.io (engine 20.10), docker-compose (1.29) and debootstrap, when missing."""
    needed = {"dockerd": "docker.io", "docker-compose": "docker-compose"}
    needed["debootstrap"] = "debootstrap"
    missing = [pkg for exe, pkg in needed.items() if shutil.which(exe) is None]
    if not missing:
        return
    if os.geteuid() != 0:
        raise RuntimeError(f"the deployment test needs root to install {missing}")
    log(f"installing {' '.join(missing)}")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    sh("apt-get", "update", "-qq", env=env)
    sh("apt-get", "install", "-y", "-qq", *missing, env=env, stdout=subprocess.DEVNULL)


@contextlib.contextmanager
def engine() -> Iterator[docker.DockerClient]:
    """dockerd on its own socket (started here, stopped at the end), or one already running."""
    started = False
    if _answers():
        log("using the Docker engine already running on " + SOCKET)
    else:
        install_packages()
        for attempt in range(2):
            log("starting dockerd")
            daemon = _start_daemon()
            started = True
            tail = _wait_for_daemon(daemon)
            if tail is None:
                break
            # A daemon killed while it removed a network (a test run stopped halfway) can leave
            # libnetwork's store half-written, and the next daemon panics reading it. The store
            # holds only network state, which a daemon rebuilds: drop it and start once more.
            network_store = Path("/tmp/dojo-docker/network/files/local-kv.db")
            if attempt == 0 and "libnetwork" in tail and network_store.exists():
                log("dockerd failed reading its network store; starting it without that store")
                network_store.unlink()
                continue
            raise RuntimeError(f"dockerd did not start: {tail}")
    client = docker.DockerClient(base_url=DOCKER_HOST, timeout=600)
    try:
        yield client
    finally:
        client.close()
        if started:
            stop_engine()


def _answers() -> bool:
    try:
        client = docker.DockerClient(base_url=DOCKER_HOST, timeout=5)
    except Exception:  # no socket yet
        return False
    try:
        return bool(client.ping())
    except Exception:  # not answering yet
        return False
    finally:
        client.close()


def stop_engine() -> None:
    with contextlib.suppress(OSError, ValueError):
        pid = int(PIDFILE.read_text())
        os.kill(pid, 15)
        for _ in range(100):
            os.kill(pid, 0)
            time.sleep(0.1)


def _has_image(client: docker.DockerClient, name: str) -> bool:
    try:
        client.images.get(name)
        return True
    except docker.errors.ImageNotFound:
        return False


def apt_mirror() -> str:
    """The Debian mirror apt already uses on this machine."""
    sources = Path("/etc/apt/sources.list.d/debian.sources")
    if sources.exists():
        for line in sources.read_text().splitlines():
            if line.startswith("URIs:"):
                return line.split()[1]
    return "http://deb.debian.org/debian"


def _run_and_commit(
    client: docker.DockerClient,
    base: str,
    tag: str,
    script: str,
    changes: list[str],
    files: dict[str, bytes] | None = None,
) -> None:
    """One container (one copy of the image under vfs) instead of a Dockerfile's many steps."""
    container = client.containers.create(
        base, ["/bin/sh", "-euc", script], network_mode="host", user="root"
    )
    try:
        if files:
            archive = io.BytesIO()
            with tarfile.open(fileobj=archive, mode="w") as tar:
                for path, data in files.items():
                    info = tarfile.TarInfo(path.lstrip("/"))
                    info.size, info.mode = len(data), 0o755
                    tar.addfile(info, io.BytesIO(data))
            container.put_archive("/", archive.getvalue())
        container.start()
        result = container.wait()
        if result["StatusCode"] != 0:
            output = container.logs().decode(errors="replace")[-3000:]
            raise RuntimeError(f"making {tag} failed: {output}")
        repository, _, version = tag.rpartition(":")
        container.commit(repository=repository, tag=version, changes=changes)
    finally:
        container.remove(force=True)


def ensure_python_base(client: docker.DockerClient) -> None:
    """The Python base both Dockerfiles name, made locally where it cannot be pulled (the other
    stand-ins start from it)."""
    if not _has_image(client, PYTHON_BASE):
        rootfs = WORK / "rootfs-python"
        if not (rootfs / "usr" / "bin" / "python3").exists():
            shutil.rmtree(rootfs, ignore_errors=True)
            WORK.mkdir(parents=True, exist_ok=True)
            log("debootstrap: a Debian bookworm tree with python3, pip, venv (about a minute)")
            sh(
                "debootstrap",
                "--variant=minbase",
                "--include=python3,python3-venv,python3-pip,ca-certificates",
                "bookworm",
                str(rootfs),
                apt_mirror(),
                stdout=subprocess.DEVNULL,
            )
        # What the official image gives: `python` on PATH, pip usable (no EXTERNALLY-MANAGED).
        (rootfs / "usr/lib/python3.11/EXTERNALLY-MANAGED").unlink(missing_ok=True)
        python = rootfs / "usr/local/bin/python"
        if not python.is_symlink():
            python.symlink_to("/usr/bin/python3")
        log(f"importing the tree as {PYTHON_BASE}")
        tar = subprocess.Popen(["tar", "-C", str(rootfs), "-c", "."], stdout=subprocess.PIPE)
        assert tar.stdout is not None
        client.api.import_image_from_stream(
            tar.stdout,
            repository=PYTHON_BASE.split(":")[0],
            tag=PYTHON_BASE.split(":")[1],
            changes=['CMD ["python3"]'],
        )
        tar.wait()


def ensure_debian_base(client: docker.DockerClient) -> None:
    """The Debian image the proxy starts from: the Python stand-in is that Debian (bookworm,
    minbase) with Python added, which the proxy image does not mind."""
    if not _has_image(client, DEBIAN_BASE):
        log(f"tagging the Debian tree as {DEBIAN_BASE}")
        repository, _, tag = DEBIAN_BASE.partition(":")
        client.images.get(PYTHON_BASE).tag(repository, tag)


def ensure_node_base(client: docker.DockerClient) -> None:
    """The node image of the web build's first stage, made locally where it cannot be pulled."""
    if not _has_image(client, NODE_BASE):
        log(f"making {NODE_BASE} (Debian's nodejs and npm)")
        _run_and_commit(
            client,
            PYTHON_BASE,
            NODE_BASE,
            "apt-get update -qq; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "
            "--no-install-recommends nodejs npm >/dev/null; rm -rf /var/lib/apt/lists/*",
            ['CMD ["node"]'],
        )


def ensure_postgres_base(client: docker.DockerClient) -> None:
    """The PostgreSQL image compose names, made locally where it cannot be pulled."""
    if not _has_image(client, POSTGRES_BASE):
        log(f"making {POSTGRES_BASE} (Debian's PostgreSQL 15)")
        _run_and_commit(
            client,
            PYTHON_BASE,
            POSTGRES_BASE,
            "apt-get update -qq; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "
            "--no-install-recommends postgresql-15 >/dev/null; rm -rf /var/lib/apt/lists/*; "
            "mkdir -p /var/lib/postgresql/data /var/run/postgresql; "
            "chown -R postgres:postgres /var/lib/postgresql /var/run/postgresql",
            [
                "ENV PATH=/usr/lib/postgresql/15/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin"
                ":/usr/bin:/sbin:/bin",
                "ENV PGDATA=/var/lib/postgresql/data",
                'ENTRYPOINT ["/bin/sh", "/usr/local/bin/docker-entrypoint.sh"]',
                'CMD ["postgres"]',
            ],
            files={
                "/usr/local/bin/docker-entrypoint.sh": (
                    HERE / "standins" / "postgres-entrypoint.sh"
                ).read_bytes()
            },
        )


@contextlib.contextmanager
def build_inputs() -> Iterator[dict[str, str]]:
    """What the runner build needs on this machine, put where the Dockerfile looks for it:
    the CPU torch wheel from pip's local sources (docker/wheels/), and the CA of the HTTPS proxy
    that pip and npm go through here (docker/extra-ca/). Removed afterwards; neither reaches a
    final image. Yields the build arguments."""
    wheels, cas = ROOT / "docker" / "wheels", ROOT / "docker" / "extra-ca"
    added: list[Path] = []
    args = {"TORCH_BUILD": "cpu"}
    before = set(wheels.iterdir())
    result = subprocess.run(
        [str(ROOT / ".venv/bin/pip"), "download", "--no-deps", "-q", "-d", str(wheels), TORCH_CPU],
        capture_output=True,
        text=True,
    )
    added += [p for p in wheels.iterdir() if p not in before]
    if result.returncode == 0 and added:
        # docker/runner.Dockerfile installs a torch wheel it finds there, the rest from pip's
        # default index.
        log(f"torch from {added[0].name} (pip's local sources)")
    else:
        log("no local CPU torch wheel: the build fetches it from PyTorch's CPU index")
    for crt in sorted(Path("/usr/local/share/ca-certificates").glob("*.crt")):
        target = cas / crt.name
        if not target.exists():
            shutil.copy(crt, target)
            added.append(target)
    try:
        yield args
    finally:
        for path in added:
            path.unlink(missing_ok=True)


def build(client: docker.DockerClient, dockerfile: str, tag: str, args: dict[str, str]) -> float:
    """docker build with the host's network (for the package registries); returns seconds."""
    started = time.monotonic()
    log(f"building {tag} from {dockerfile}")
    env = {**os.environ, "DOCKER_HOST": DOCKER_HOST, "DOCKER_BUILDKIT": "1"}
    command = [_docker_cli(), "build", "--network=host", "-f", dockerfile, "-t", tag]
    for key, value in args.items():
        command += ["--build-arg", f"{key}={value}"]
    output = WORK / f"build-{tag.replace('/', '_').replace(':', '_')}.log"
    with output.open("w") as out:
        result = subprocess.run(
            [*command, "."], cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT
        )
    if result.returncode != 0:
        raise RuntimeError(f"building {tag} failed:\n{output.read_text()[-4000:]}")
    return time.monotonic() - started


def _start_daemon() -> subprocess.Popen[bytes]:
    with DAEMON_LOG.open("ab") as out:
        return subprocess.Popen(
            [
                "dockerd",
                "--iptables=false",
                "--ip6tables=false",
                "--bridge=none",
                "--storage-driver=vfs",
                f"--host={DOCKER_HOST}",
                "--data-root=/tmp/dojo-docker",
                "--exec-root=/tmp/dojo-docker-exec",
                f"--pidfile={PIDFILE}",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )


def _wait_for_daemon(daemon: subprocess.Popen[bytes], timeout_s: float = 60) -> str | None:
    """None once the daemon answers; else (it exited, or was stopped) the end of its log."""
    deadline = time.monotonic() + timeout_s
    while not _answers():
        if daemon.poll() is not None or time.monotonic() > deadline:
            stop_engine()
            return DAEMON_LOG.read_text()[-2000:]
        time.sleep(0.5)
    return None


def _docker_cli() -> str:
    """The engine's own CLI (docker.io's), which builds with BuildKit without buildx."""
    for candidate in ("/usr/bin/docker", shutil.which("docker")):
        if candidate and Path(candidate).exists():
            return candidate
    raise RuntimeError("no docker CLI")


def compose_command() -> list[str]:
    """Docker Compose v2 (`docker compose`) where the CLI has it; otherwise Debian's
    docker-compose 1.29 through compose_v1.py, which adds the one option it lacks."""
    cli = shutil.which("docker")
    if cli and subprocess.run([cli, "compose", "version"], capture_output=True).returncode == 0:
        return [cli, "compose"]
    script = shutil.which("docker-compose")
    if script is None:
        raise RuntimeError("neither `docker compose` nor docker-compose is installed")
    shebang = Path(script).read_text(errors="replace").splitlines()[0]
    python = shebang[2:].strip().split()[0] if shebang.startswith("#!") else "/usr/bin/python3"
    return [python, str(HERE / "compose_v1.py")]
