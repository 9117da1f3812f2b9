"""Prints the pip requirements of one image, read from pyproject.toml (the one dependency list).

python docker/requirements.py web      the web app: no torch, nothing of the sandbox
python docker/requirements.py runner   the runner service and what runs in its sandbox,
                                       except torch (the image installs its own build first)
"""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path

# Only what the sandboxed code imports; the web app never loads them.
SANDBOX = {"torch", "torchinfo", "numpy", "matplotlib", "scikit-learn", "pytest", "pyseccomp"}
# The runner service itself (runner/service.py, runner/config.py, runner/protocol.py).
RUNNER_SERVICE = {
    "fastapi",
    "uvicorn",
    "pydantic",
    "pydantic-settings",
    "prometheus-client",
    "python-json-logger",
}
# Drives the deployment test from the host; no image needs it.
NEVER = {"docker"}


def requirements(image: str, pyproject: Path) -> list[str]:
    deps = tomllib.loads(pyproject.read_text())["project"]["dependencies"]
    chosen = []
    for spec in deps:
        name = re.split(r"[\[<>=!~ ;]", spec, maxsplit=1)[0].lower()
        if name in NEVER:
            continue
        web = image == "web" and name not in SANDBOX
        runner = image == "runner" and name != "torch" and name in SANDBOX | RUNNER_SERVICE
        if web or runner:
            chosen.append(spec)
    return chosen


if __name__ == "__main__":
    if len(sys.argv) not in (2, 3) or sys.argv[1] not in ("web", "runner"):
        sys.exit(__doc__)
    default = Path(__file__).resolve().parent.parent / "pyproject.toml"
    pyproject = Path(sys.argv[2]) if len(sys.argv) == 3 else default
    print("\n".join(requirements(sys.argv[1], pyproject)))
