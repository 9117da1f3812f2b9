# The web app: pages, JSON API, SSE streams, migrations. From the repository root:
#   docker build -f docker/web.Dockerfile -t torchdojo/web:0.1.0 .
# (BuildKit, the default builder of Docker 23+ and of `docker compose`; on older engines set
# DOCKER_BUILDKIT=1.) Each stage is one step that mounts what it reads from the build context
# under /context instead of copying it: one layer per stage, build-only inputs (docker/extra-ca)
# enter no image layer, and a step is rebuilt only when what it mounts changes.
#
# bundle: the editor bundle, built with node. venv: the Python dependencies (no torch: learners'
# code runs in the runner image). The final stage holds the app, its venv and the bundle, runs
# as an unprivileged user, and has no compiler, no npm, no pip and no build-time certificate.
# /var/lib/torchdojo, owned by that user, is where compose mounts the web app's data volume (a
# fresh named volume takes the folder's owner), for the content check results.

FROM node:20.19.2-bookworm-slim AS bundle
RUN --mount=type=bind,source=package.json,target=/context/package.json \
    --mount=type=bind,source=package-lock.json,target=/context/package-lock.json \
    --mount=type=bind,source=scripts/build-static.mjs,target=/context/scripts/build-static.mjs \
    --mount=type=bind,source=static,target=/context/static \
    --mount=type=bind,source=docker/extra-ca,target=/context/docker/extra-ca \
    --mount=type=bind,source=docker/trust-extra-ca.sh,target=/context/docker/trust-extra-ca.sh \
    mkdir -p /src/scripts \
 && cp -r /context/package.json /context/package-lock.json /context/static /src/ \
 && cp /context/scripts/build-static.mjs /src/scripts/ \
 && cd /src \
 && . /context/docker/trust-extra-ca.sh \
 && npm ci --no-audit --no-fund --loglevel=error \
 && npm run build --silent \
 && test -s static/dist/app.js

FROM python:3.11.13-slim-bookworm AS venv
RUN --mount=type=bind,source=pyproject.toml,target=/context/pyproject.toml \
    --mount=type=bind,source=docker/requirements.py,target=/context/docker/requirements.py \
    --mount=type=bind,source=docker/extra-ca,target=/context/docker/extra-ca \
    --mount=type=bind,source=docker/trust-extra-ca.sh,target=/context/docker/trust-extra-ca.sh \
    . /context/docker/trust-extra-ca.sh \
 && python -m venv /opt/venv \
 && python /context/docker/requirements.py web /context/pyproject.toml >/tmp/requirements.txt \
 && /opt/venv/bin/pip install --no-cache-dir --disable-pip-version-check \
      -r /tmp/requirements.txt \
 && /opt/venv/bin/pip uninstall --yes --quiet pip

FROM python:3.11.13-slim-bookworm
RUN --mount=type=bind,source=app,target=/context/app \
    --mount=type=bind,source=runner,target=/context/runner \
    --mount=type=bind,source=content,target=/context/content \
    --mount=type=bind,source=templates,target=/context/templates \
    --mount=type=bind,source=static,target=/context/static \
    --mount=type=bind,source=docker/prestart.py,target=/context/docker/prestart.py \
    --mount=type=bind,from=venv,source=/opt/venv,target=/build/venv \
    --mount=type=bind,from=bundle,source=/src/static/dist,target=/build/dist \
    useradd --uid 10001 --user-group --no-create-home --home-dir /nonexistent \
      --shell /usr/sbin/nologin torchdojo \
 && cp -a /build/venv /opt/venv \
 && mkdir -p /app/docker \
 && cp -r /context/app /context/runner /context/content /context/templates /context/static /app/ \
 && cp /context/docker/prestart.py /app/docker/ \
 && cp -r /build/dist /app/static/dist \
 && install -d -o 10001 -g 10001 -m 0755 /var/lib/torchdojo
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONPATH=/app \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    TORCHDOJO_ENVIRONMENT=production
USER 10001:10001
EXPOSE 8000
# `python -m app.cli` is the `torchdojo` command: migrate, create-user, serve.
CMD ["python", "-m", "app.cli", "serve", "--host", "0.0.0.0", "--port", "8000"]
