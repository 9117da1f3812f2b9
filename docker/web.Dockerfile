# The web app: pages, JSON API, SSE streams, migrations. Built from the repository root:
#   docker build -f docker/web.Dockerfile -t torchdojo/web:0.1.0 .
# Stage 1 builds the editor bundle with node; stage 2 installs the Python dependencies (no torch:
# learners' code runs in the runner image); the final stage holds the app, the venv and the
# bundle, runs as an unprivileged user, and has no compiler, no npm and no build-time CA.

FROM node:20.19.2-bookworm-slim AS bundle
WORKDIR /src
COPY docker/extra-ca/ /tmp/extra-ca/
COPY docker/trust-extra-ca.sh /tmp/
COPY package.json package-lock.json ./
RUN . /tmp/trust-extra-ca.sh && npm ci --no-audit --no-fund --loglevel=error
COPY scripts/build-static.mjs scripts/
COPY static/ static/
RUN npm run build --silent && test -s static/dist/app.js

FROM python:3.11.13-slim-bookworm AS venv
COPY docker/extra-ca/ /tmp/extra-ca/
COPY docker/trust-extra-ca.sh docker/requirements.py pyproject.toml /tmp/
RUN . /tmp/trust-extra-ca.sh \
 && python -m venv /opt/venv \
 && python /tmp/requirements.py web >/tmp/requirements.txt \
 && /opt/venv/bin/pip install --no-cache-dir --disable-pip-version-check -r /tmp/requirements.txt \
 && /opt/venv/bin/pip uninstall --yes --quiet pip

FROM python:3.11.13-slim-bookworm AS source
WORKDIR /app
COPY app/ app/
COPY runner/ runner/
COPY content/ content/
COPY templates/ templates/
COPY static/ static/
COPY docker/prestart.py docker/

FROM python:3.11.13-slim-bookworm
RUN useradd --system --uid 10001 --user-group --no-create-home --home-dir /nonexistent \
      --shell /usr/sbin/nologin torchdojo
COPY --from=venv /opt/venv /opt/venv
COPY --from=source /app /app
COPY --from=bundle /src/static/dist/ /app/static/dist/
WORKDIR /app
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONPATH=/app \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    TORCHDOJO_ENVIRONMENT=production
USER 10001:10001
EXPOSE 8000
# `python -m app.cli` is the `torchdojo` command: migrate, create-user, serve.
CMD ["python", "-m", "app.cli", "serve", "--host", "0.0.0.0", "--port", "8000"]
