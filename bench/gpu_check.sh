#!/usr/bin/env bash
# The runner on a GPU machine, in one go (about 2-4 minutes on an H100 host):
#
#   bench/gpu_check.sh [--require-gpu]        from the repository root
#
# Starts the runner service (python -m runner serve, pool of 2) as a GPU host runs it, checks
# that /healthz and a run's `started.device` name a CUDA device, runs a matmul on the GPU inside
# a sandbox (which must see exactly one GPU), then measures warm print("hi") latency over HTTP
# against a cold `import torch` (20 interleaved samples) and the seed exercise, runner vs plain
# warm Python (5 pairs). Results go to $OUT/runner-gpu.json (default ./artifacts/gpu), the
# Markdown table to stdout.
#
# It installs nothing (the GPU machine has no network): it uses .venv/bin/python, or $PYTHON,
# which must have torch with CUDA, and bubblewrap must be installed. Without a CUDA device
# (this includes a CPU build of torch) it prints "no CUDA device: skipped" and exits 0, or 1
# with --require-gpu.
set -euo pipefail
cd "$(dirname "$0")/.."

require_gpu=0
for arg in "$@"; do
  case "$arg" in
    --require-gpu) require_gpu=1 ;;
    -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
    *) echo "gpu_check: unknown argument $arg" >&2; exit 2 ;;
  esac
done

python="${PYTHON:-.venv/bin/python}"
out="${OUT:-artifacts/gpu}"
if [ ! -x "$python" ] && ! command -v "$python" >/dev/null; then
  echo "gpu_check: no Python at $python (make setup, or PYTHON=/path/to/python with torch)" >&2
  exit 2
fi

if ! probe="$("$python" - 2>&1 <<'EOF'
import torch
if torch.cuda.is_available():
    print(f"cuda {torch.cuda.device_count()} {torch.cuda.get_device_name(0)}; torch {torch.__version__}")
else:
    build = f"CUDA {torch.version.cuda} build" if torch.version.cuda else "a CPU-only build"
    print(f"none: torch {torch.__version__} is {build} and sees no GPU")
EOF
)"; then
  echo "gpu_check: $python cannot import torch: $probe" >&2
  exit 2
fi

if [[ "$probe" != cuda* ]]; then
  echo "no CUDA device: skipped ($probe)"
  [ "$require_gpu" = 1 ] && exit 1
  exit 0
fi
echo "gpu_check: $probe"

mkdir -p "$out"
exec "$python" bench/runner_bench.py --gpu --samples 20 --overhead-samples 5 \
  --json "$out/runner-gpu.json"
