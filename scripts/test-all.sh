#!/usr/bin/env bash
# The whole test suite (what `make test` runs after set-up and lint):
#   - the browser code's unit tests (`npm test`: node --test static/src/*.test.js) first, fast;
#     a failure there fails the run;
#   - the deployment test (tests/deploy/test_compose.py: a real Docker engine, both images built,
#     docker-compose up with two runner replicas, a check run, hostile code in the runner
#     container) in the background: it waits mostly on apt, pip and the disk;
#   - everything else with pytest in the foreground, on the CPUs, meanwhile.
# The deployment test needs root (it starts dockerd). As another user it is skipped with a
# message, unless CI=true, where skipping it is a failure. TORCHDOJO_DEPLOY_TEST=0 skips it.
# Extra arguments go to the foreground pytest.
set -uo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin
mkdir -p artifacts
DEPLOY_LOG=artifacts/deploy-test.log

echo "browser unit tests: npm test"
if ! npm test --silent; then
    echo "the browser unit tests (npm test) FAILED" >&2
    exit 1
fi

deploy_pid=""
if [ "${TORCHDOJO_DEPLOY_TEST:-}" = 0 ]; then
    echo "deployment test: skipped (TORCHDOJO_DEPLOY_TEST=0)"
elif [ "$(id -u)" != 0 ]; then
    if [ "${CI:-}" = true ]; then
        echo "deployment test: CI must run as root (it starts a Docker engine)" >&2
        exit 1
    fi
    echo "deployment test: skipped, it needs root to start a Docker engine (sudo make deploy-test)"
else
    echo "deployment test: started in the background (~15 min cold); its log: $DEPLOY_LOG"
    TORCHDOJO_DEPLOY_TEST=1 "$BIN/pytest" -v -s --timeout=2400 -p no:cacheprovider \
        --basetemp=/tmp/dojo-deploy-pytest tests/deploy/test_compose.py >"$DEPLOY_LOG" 2>&1 &
    deploy_pid=$!
fi

status=0
if [ -n "$deploy_pid" ]; then
    TORCHDOJO_DEPLOY_TEST=0 "$BIN/pytest" --ignore=tests/deploy/test_compose.py "$@" || status=$?
else
    TORCHDOJO_DEPLOY_TEST=0 "$BIN/pytest" "$@" || status=$?
fi

if [ -n "$deploy_pid" ]; then
    echo "waiting for the deployment test..."
    deploy_status=0
    wait "$deploy_pid" || deploy_status=$?
    echo "---- the deployment test (full log: $DEPLOY_LOG) ----"
    grep -E "^\[deploy-test|PASSED|FAILED|ERROR|passed|failed|error" "$DEPLOY_LOG" | tail -n 40
    if [ "$deploy_status" != 0 ]; then
        tail -n 80 "$DEPLOY_LOG"
        echo "the deployment test FAILED (exit $deploy_status)" >&2
        status=1
    fi
fi
exit "$status"
