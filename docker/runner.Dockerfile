# The runner: a warm pool of bubblewrap sandboxes with torch, served over HTTP on port 8001.
# From the repository root:
#   docker build -f docker/runner.Dockerfile -t torchdojo/runner:0.1.0 .                 (CPU)
#   docker build -f docker/runner.Dockerfile --build-arg TORCH_BUILD=cu128 \
#                -t torchdojo/runner:0.1.0-gpu .                                          (CUDA)
# (BuildKit, as for docker/web.Dockerfile: each step mounts what it reads under /context.)
# torch's CUDA wheels carry their own CUDA libraries and the host's driver comes in at run time
# (NVIDIA Container Toolkit), so one slim Python base serves CPU and GPU hosts alike. The final
# stage runs as an unprivileged user and has no compiler, no pip and no build-time certificate.

FROM python:3.11.13-slim-bookworm AS venv
# TORCH_BUILD: "cpu", or the CUDA build matching the host's driver ("cu126", "cu128", …).
# TORCH_INDEX_URL: where that build and its dependencies come from; empty means PyTorch's
# index for TORCH_BUILD. A torch wheel in docker/wheels/ wins over both (a host without the
# PyTorch index): it is installed from there, and its dependencies from pip's default index.
ARG TORCH_VERSION=2.13.0
ARG TORCH_BUILD=cpu
ARG TORCH_INDEX_URL=
RUN --mount=type=bind,source=pyproject.toml,target=/context/pyproject.toml \
    --mount=type=bind,source=docker/requirements.py,target=/context/docker/requirements.py \
    --mount=type=bind,source=docker/extra-ca,target=/context/docker/extra-ca \
    --mount=type=bind,source=docker/trust-extra-ca.sh,target=/context/docker/trust-extra-ca.sh \
    --mount=type=bind,source=docker/wheels,target=/context/docker/wheels \
    . /context/docker/trust-extra-ca.sh \
 && python -m venv /opt/venv \
 && pip="/opt/venv/bin/pip install --no-cache-dir --disable-pip-version-check" \
 && if ls /context/docker/wheels/torch-*.whl >/dev/null 2>&1; then torch_from=""; \
    else torch_from="--index-url ${TORCH_INDEX_URL:-https://download.pytorch.org/whl/$TORCH_BUILD}"; fi \
 && $pip --find-links /context/docker/wheels $torch_from "torch==$TORCH_VERSION" \
 && python /context/docker/requirements.py runner /context/pyproject.toml >/tmp/requirements.txt \
 && $pip -r /tmp/requirements.txt "torch==$TORCH_VERSION" \
 && /opt/venv/bin/python -c "import torch, torchinfo, sklearn, matplotlib, pytest, pyseccomp" \
 && /opt/venv/bin/pip uninstall --yes --quiet pip

FROM python:3.11.13-slim-bookworm
# bubblewrap: the sandbox; libseccomp2: its syscall filter; util-linux (prlimit) is in the base.
RUN --mount=type=bind,source=runner,target=/context/runner \
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
