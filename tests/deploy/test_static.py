"""Static checks of the deployment files: no Docker needed, part of the ordinary `make test`.

The compose files parse and wire the services together with healthchecks; every path they and
the Dockerfiles name exists; the runner is never privileged, keeps only what bubblewrap needs and
has no route out; base images are pinned; the seccomp profile stays narrow; .env.example and
docs/configuration.md are complete and current.
"""

from __future__ import annotations

import json
import os
import re
import runpy
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
GPU = ROOT / "docker-compose.gpu.yml"
DOCKERFILES = sorted((ROOT / "docker").glob("*.Dockerfile"))
SECCOMP = ROOT / "docker" / "runner-seccomp.json"
REQUIRED_SECRETS = ("SECRET_KEY", "POSTGRES_PASSWORD", "METRICS_TOKEN")


def load(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text())
    assert isinstance(data, dict), f"{path.name} is not a YAML mapping"
    return data


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return load(COMPOSE)


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, Any]:
    return compose["services"]


def test_services_healthchecks_and_startup_order(services: dict[str, Any]) -> None:
    assert set(services) >= {"web", "runner", "db", "prestart", "proxy"}
    for name in ("web", "runner", "db", "proxy"):
        test = services[name].get("healthcheck", {}).get("test")
        assert test, f"{name} has no healthcheck"
    assert "/readyz" in " ".join(services["web"]["healthcheck"]["test"])
    assert "/healthz" in " ".join(services["runner"]["healthcheck"]["test"])
    assert services["prestart"]["depends_on"] == {"db": {"condition": "service_healthy"}}
    assert services["web"]["depends_on"] == {
        "prestart": {"condition": "service_completed_successfully"},
        "runner": {"condition": "service_healthy"},
    }
    assert services["proxy"]["depends_on"] == {"web": {"condition": "service_healthy"}}
    # Only the proxy is published; the web replicas sit behind it on an internal network.
    assert "ports" not in services["web"] and services["proxy"]["ports"]
    assert set(services["proxy"]["networks"]) == {"edge", "front"}
    assert "edge" not in services["web"]["networks"]
    assert "prestart.py" in " ".join(services["prestart"]["command"])
    db_volumes = services["db"]["volumes"]
    assert any(v.split(":")[0] == "pgdata" for v in db_volumes), "the database needs its volume"


def test_required_secrets_use_the_error_syntax() -> None:
    text = COMPOSE.read_text()
    for name in REQUIRED_SECRETS:
        uses = re.findall(r"\$\{" + name + r"([^}]*)\}", text)
        assert uses, f"{name} is not used"
        assert all(use.startswith(":?") for use in uses), f"${{{name}}} must be ${{{name}:?…}}"
    assert "SECRET_KEY" not in json.dumps(load(COMPOSE)["services"]["runner"]), (
        "the runner must not see the app's secrets"
    )


def test_every_referenced_path_exists(services: dict[str, Any]) -> None:
    gpu_services = load(GPU)["services"]
    for name, service in [*services.items(), *gpu_services.items()]:
        build = service.get("build")
        if isinstance(build, dict) and "context" in build:
            context = ROOT / build["context"]
            assert context.is_dir(), f"{name}: build context {context} is missing"
            dockerfile = context / build.get("dockerfile", "Dockerfile")
            assert dockerfile.is_file(), f"{name}: {dockerfile} is missing"
        for option in service.get("security_opt", []):
            key, _, value = option.partition("=")
            if key == "seccomp" and value != "unconfined":
                assert (ROOT / value).is_file(), f"{name}: seccomp profile {value} is missing"
        for volume in service.get("volumes", []):
            source = volume.split(":")[0] if isinstance(volume, str) else volume.get("source")
            if source.startswith((".", "/")):
                assert (ROOT / source).exists(), f"{name}: volume source {source} is missing"


def _steps(dockerfile: Path) -> list[str]:
    return re.sub(r"\\\n", " ", dockerfile.read_text()).splitlines()


def _context_paths(dockerfile: Path) -> set[str]:
    """Paths a Dockerfile reads from the build context: COPY/ADD sources, and the sources of
    RUN --mount=type=bind without from= (BuildKit mounts them from the context)."""
    paths = set()
    for step in _steps(dockerfile):
        words = step.split()
        if not words:
            continue
        if words[0].upper() in ("COPY", "ADD") and not any(w.startswith("--from=") for w in words):
            paths |= {w.rstrip("/") for w in words[1:-1] if not w.startswith("--")}
        for mount in re.findall(r"--mount=(\S+)", step):
            options = dict(option.partition("=")[::2] for option in mount.split(","))
            if options.get("type") == "bind" and "from" not in options:
                paths.add(options.get("source", ".").rstrip("/") or ".")
    return paths


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_dockerfile_inputs_exist_and_are_in_the_build_context(dockerfile: Path) -> None:
    allowed = [
        line[1:].rstrip("/")
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.startswith("!")
    ]
    paths = _context_paths(dockerfile)
    assert paths, "reads nothing from the build context"
    for path in paths:
        assert (ROOT / path).exists(), f"{dockerfile.name}: {path}: no such path"
        assert any(path == a or path.startswith(a + "/") for a in allowed), (
            f"{dockerfile.name}: {path} is excluded by .dockerignore"
        )


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_every_context_path_a_step_uses_is_mounted_in_that_step(dockerfile: Path) -> None:
    for step in _steps(dockerfile):
        if not step.startswith("RUN"):
            continue
        targets = re.findall(r"--mount=\S*target=(/context/[^,\s]+)", step)
        command = re.sub(r"--mount=\S+", "", step)
        trust = ROOT / "docker" / "trust-extra-ca.sh"
        if "/context/docker/trust-extra-ca.sh" in command:
            command += trust.read_text()
        for used in re.findall(r"/context/[\w./-]+", command):
            assert any(used == t or used.startswith(t + "/") for t in targets), (
                f"{dockerfile.name}: {used} is not mounted in: {step[:80]}…"
            )


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_base_images_are_pinned(dockerfile: Path) -> None:
    stages: set[str] = set()
    froms = re.findall(r"^FROM\s+(\S+)(?:\s+AS\s+(\S+))?", dockerfile.read_text(), re.M | re.I)
    assert froms
    for image, stage in froms:
        if image.lower() not in stages:
            tag = image.partition(":")[2]
            assert tag and tag != "latest" and re.search(r"\d", tag), (
                f"{dockerfile.name}: FROM {image} is not pinned to a version"
            )
            assert "$" not in image, f"{dockerfile.name}: FROM {image}: spell the version out"
        if stage:
            stages.add(stage.lower())


def test_compose_images_are_pinned(services: dict[str, Any]) -> None:
    for name, service in [*services.items(), *load(GPU)["services"].items()]:
        image = service.get("image")
        if image is None:
            continue
        tag = image.rpartition(":")[2] if ":" in image.split("/")[-1] else ""
        assert tag and "latest" not in tag and re.search(r"\d", tag), f"{name}: {image}"


def _runner_is_hardened(runner: dict[str, Any], networks: dict[str, Any]) -> None:
    assert not runner.get("privileged"), "the runner must never be privileged"
    assert runner.get("cap_drop") == ["ALL"]
    assert not runner.get("cap_add"), "the runner adds no capability"
    security = runner.get("security_opt", [])
    assert "no-new-privileges:true" in security
    assert any(opt.startswith("seccomp=") and "unconfined" not in opt for opt in security), (
        "the runner needs its own seccomp profile, not none"
    )
    assert runner.get("read_only") is True
    assert runner.get("tmpfs"), "scratch space is a tmpfs"
    assert str(runner.get("user", "")).split(":")[0] not in ("", "0", "root")
    assert "ports" not in runner and "network_mode" not in runner
    assert runner.get("pid") is None and runner.get("ipc") is None
    assert not [v for v in runner.get("volumes", []) if "docker.sock" in str(v)]
    assert not runner.get("devices"), "GPUs come through device reservations, not raw devices"
    attached = runner["networks"]
    assert attached, "the runner must be on a network"
    for network in attached:
        assert (networks.get(network) or {}).get("internal") is True, (
            f"the runner's network {network!r} must be internal (no route out)"
        )


def test_runner_is_unprivileged_and_has_no_route_out(compose: dict[str, Any]) -> None:
    _runner_is_hardened(compose["services"]["runner"], compose["networks"])
    # The database is not reachable from outside either.
    for network in compose["services"]["db"]["networks"]:
        assert compose["networks"][network].get("internal") is True


def test_gpu_override_only_reserves_devices(compose: dict[str, Any]) -> None:
    override = load(GPU)["services"]["runner"]
    assert set(override) <= {"image", "build", "environment", "deploy"}, (
        "the GPU override must not loosen the runner's isolation"
    )
    devices = override["deploy"]["resources"]["reservations"]["devices"]
    assert any(d["driver"] == "nvidia" and "gpu" in d["capabilities"] for d in devices)
    assert override["build"]["args"]["TORCH_BUILD"].startswith("${")
    merged = {**compose["services"]["runner"], **override}
    _runner_is_hardened(merged, compose["networks"])


def test_seccomp_profile_allows_bubblewrap_and_little_else() -> None:
    profile = json.loads(SECCOMP.read_text())
    assert profile["defaultAction"] == "SCMP_ACT_ERRNO"
    allowed = {
        name
        for rule in profile["syscalls"]
        if rule["action"] == "SCMP_ACT_ALLOW"
        for name in rule["names"]
    }
    assert {"clone", "unshare", "mount", "umount2", "pivot_root", "execve", "read"} <= allowed
    never = {
        "setns", "ptrace", "process_vm_readv", "process_vm_writev", "bpf", "perf_event_open",
        "keyctl", "add_key", "request_key", "userfaultfd", "io_uring_setup", "kexec_load",
        "kexec_file_load", "init_module", "finit_module", "delete_module", "reboot", "swapon",
        "open_by_handle_at", "name_to_handle_at", "acct", "settimeofday", "clock_settime",
        "syslog", "fsopen", "fsmount", "move_mount", "open_tree", "chroot",
    }  # fmt: skip
    assert not allowed & never, f"allowed but never needed: {sorted(allowed & never)}"
    assert all(rule.get("comment") for rule in profile["syscalls"]), "say why for every rule"


def test_env_example_defines_every_compose_variable() -> None:
    example = {
        line.split("=", 1)[0]
        for line in (ROOT / ".env.example").read_text().splitlines()
        if line and not line.startswith("#")
    }
    used = set()
    for path in (COMPOSE, GPU):
        used |= set(re.findall(r"\$\{([A-Z_][A-Z0-9_]*)", path.read_text()))
    assert used <= example, f"missing from .env.example: {sorted(used - example)}"
    assert set(REQUIRED_SECRETS) <= example


def test_configuration_doc_is_current() -> None:
    generator = runpy.run_path(str(ROOT / "scripts" / "gen-config-docs.py"))
    expected = generator["render"]()
    current = (ROOT / "docs" / "configuration.md").read_text()
    assert current == expected, (
        "docs/configuration.md is stale: run `.venv/bin/python scripts/gen-config-docs.py`"
    )


def test_configuration_doc_names_every_option() -> None:
    from app.config import Settings
    from runner.config import RunnerSettings

    text = (ROOT / "docs" / "configuration.md").read_text()
    for prefix, settings in (("TORCHDOJO_", Settings), ("RUNNER_", RunnerSettings)):
        for name in settings.model_fields:
            assert f"`{prefix}{name.upper()}`" in text


@pytest.mark.skipif(
    shutil.which("docker-compose") is None, reason="docker-compose is not installed here"
)
def test_docker_compose_accepts_the_files(tmp_path: Path) -> None:
    """The real parser, where it is installed (`make deploy-test` installs it)."""
    no_env_file = tmp_path / "empty.env"  # a developer's own .env must not change the answer
    no_env_file.touch()
    env = {
        **os.environ,
        "SECRET_KEY": "x" * 40,
        "POSTGRES_PASSWORD": "p" * 24,
        "METRICS_TOKEN": "m" * 32,
    }
    for files in (["-f", "docker-compose.yml"], ["-f", "docker-compose.yml", "-f", str(GPU)]):
        result = subprocess.run(
            ["docker-compose", "--env-file", str(no_env_file), *files, "config", "-q"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
        )
        assert result.returncode == 0, result.stderr
    missing = subprocess.run(
        ["docker-compose", "--env-file", str(no_env_file), "config", "-q"],
        cwd=ROOT,
        env={k: v for k, v in env.items() if k not in REQUIRED_SECRETS},
        capture_output=True,
        text=True,
    )
    assert missing.returncode != 0 and "in .env (see .env.example)" in missing.stderr


@pytest.mark.parametrize("manifest", ["torchdojo.yaml", "runner-gpu.yaml"])
def test_kubernetes_runner_is_unprivileged(manifest: str) -> None:
    documents = [d for d in yaml.safe_load_all((ROOT / "k8s" / manifest).read_text()) if d]
    runners = [
        d
        for d in documents
        if d["kind"] == "Deployment" and d["metadata"]["name"] == "torchdojo-runner"
    ]
    assert len(runners) == 1
    pod = runners[0]["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"]["type"] == "Localhost"
    (container,) = pod["containers"]
    security = container["securityContext"]
    assert security["privileged"] is False and security["allowPrivilegeEscalation"] is False
    assert security["capabilities"] == {"drop": ["ALL"]}
    assert security["readOnlyRootFilesystem"] is True
    if manifest == "runner-gpu.yaml":
        assert container["resources"]["requests"]["nvidia.com/gpu"] == 1
        assert container["resources"]["limits"]["nvidia.com/gpu"] == 1
    else:
        policies = [d for d in documents if d["kind"] == "NetworkPolicy"]
        assert policies and policies[0]["spec"]["egress"] == [], "runners reach nothing"
