# torchdojo: the two commands are `make run` and `make test`; both install what they need.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# The CPU build of torch 2.13.0 installs from local disk on the dev and CI machines; an
# unpinned torch would pull a multi-GB CUDA build. Docker images choose their own build.
TORCH_VERSION ?= 2.13.0
INSTALLED := $(VENV)/.installed
# The browser bundle (CodeMirror, uPlot, our modules) is built from npm packages, never committed.
BUNDLE := static/dist/app.js
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run test setup system-deps lint format bench content-check clean

## run: set everything up and serve torchdojo at http://$(HOST):$(PORT)
run: setup
	$(BIN)/torchdojo serve --host $(HOST) --port $(PORT)

## test: set everything up, lint, and run the whole test suite (the deployment test included,
## in the background: it needs root; see scripts/test-all.sh)
test: setup lint
	@scripts/system-deps.sh test
	scripts/test-all.sh

setup: system-deps $(INSTALLED) $(BUNDLE)

system-deps:
	@scripts/system-deps.sh

$(INSTALLED): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check "torch==$(TORCH_VERSION)"
	$(BIN)/pip install --quiet --disable-pip-version-check -e ".[dev]"
	@touch $@

$(BUNDLE): package.json package-lock.json scripts/build-static.mjs $(wildcard static/src/*.js)
	npm ci --no-audit --no-fund --loglevel=error
	npm run build --silent

## lint: ruff and mypy
lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: setup
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

## bench: the runner's, the web app's and the crowd's figures (see README; ~20 min, quiet machine)
bench: setup
	$(BIN)/python bench/runner_bench.py
	$(BIN)/python bench/web_bench.py
	$(BIN)/python bench/crowd_bench.py

## content-check: prove every lesson's solution passes and every starter fails, in the sandbox
content-check: setup
	$(BIN)/torchdojo content check content

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache node_modules static/dist

## deploy-test: only the deployment test: docker-compose on a real Docker engine (root, ~15 min cold)
.PHONY: deploy-test
deploy-test: setup
	TORCHDOJO_DEPLOY_TEST=1 $(BIN)/pytest -v -s --timeout=2400 tests/deploy/test_compose.py
