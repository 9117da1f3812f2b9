# The runner: a warm pool of bubblewrap sandboxes with torch, served over HTTP on port 8001.
# From the repository root:
#   docker build -f docker/runner.Dockerfile -t torchdojo/runner:0.1.0 .                 (CPU)
#   docker build -f docker/runner.Dockerfile --build-arg TORCH_BUILD=cu128 \
#                -t torchdojo/runner:0.1.0-gpu .                                          (CUDA)
# (BuildKit, as for docker/web.Dockerfile: the build context is mounted at /context.)
# torch's CUDA wheels carry their own CUDA libraries and the host's driver comes in at run time
# (NVIDIA Container Toolkit), so one slim Python base serves CPU and GPU hosts alike. The final
# stage runs as an unprivileged user and has no compiler, no pip and no build-time certificate.

FROM python:3.11.13-slim-bookworm AS venv
# TORCH_BUILD: "cpu", or the CUDA build matching the host's driver ("cu126", "cu128", …).
# TORCH_INDEX_URL: where that build comes from; empty means PyTorch's index for TORCH_BUILD.
# Wheels in docker/wheels/ are offered first (a host without the PyTorch index).
ARG TORCH_VERSION=2.13.0
ARG TORCH_BUILD=cpu
ARG TORCH_INDEX_URL=
RUN --mount=type=bind,target=/context \
    . /context/docker/trust-extra-ca.sh \
 && python -m venv /opt/venv \
 && pip="/opt/venv/bin/pip install --no-cache-dir --disable-pip-version-check" \
 && $pip --find-links /context/docker/wheels \
      --index-url "${TORCH_INDEX_URL:-https://download.pytorch.org/whl/$TORCH_BUILD}" \
      --extra-index-url https://pypi.org/simple "torch==$TORCH_VERSION" \
 && python /context/docker/requirements.py runner /context/pyproject.toml >/tmp/requirements.txt \
 && $pip -r /tmp/requirements.txt "torch==$TORCH_VERSION" \
 && /opt/venv/bin/python -c "import torch, torchinfo, sklearn, matplotlib, pytest, pyseccomp" \
 && /opt/venv/bin/pip uninstall --yes --quiet pip

FROM python:3.11.13-slim-bookworm
# bubblewrap: the sandbox; libseccomp2: its syscall filter; util-linux (prlimit) is in the base.
RUN --mount=type=bind,target=/context \
    --mount=type=bind,from=venv,source=/opt/venv,target=/build/venv \
    apt-get update \
 && apt-get install -y --no-install-recommends bubblewrap libseccomp2 \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --uid 10001 --user-group --no-create-home --home-dir /nonexistent \
      --shell /usr/sbin/nologin runner \
 && cp -a /build/venv /opt/venv \
 && mkdir /app \
 && cp -r /context/runner /app/
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONPATH=/app \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp
# Not root: bubblewrap then builds each sandbox in a user namespace of its own and drops every
# capability (runner/sandbox.py); compose adds the seccomp profile that allows exactly that.
USER 10001:10001
EXPOSE 8001
CMD ["python", "-m", "runner", "serve", "--host", "0.0.0.0", "--port", "8001"]
