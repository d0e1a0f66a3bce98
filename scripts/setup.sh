#!/usr/bin/env bash
# Set up a fresh Linux machine (Python >= 3.11 and Node >= 20 present) for devenv: system packages,
# uv, the locked Python environment, and the pinned CDK CLI. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

if ! command -v redis-server >/dev/null 2>&1; then
  echo "setup: installing redis-server (apt)"
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq redis-server >/dev/null
fi
if ! command -v wrk >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1; then
  echo "setup: installing wrk (apt; used by the benchmark)"
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq wrk >/dev/null || echo "setup: wrk not installed (benchmarks only)"
fi
if ! command -v chromium >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1; then
  echo "setup: installing chromium (apt; the dashboard's browser test renders the page headless; ~45 s)"
  { as_root apt-get update -qq && DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq chromium >/dev/null; } \
    || echo "setup: chromium not installed: the dashboard's browser test will skip, saying so (devenv does not need it)"
fi
# uv is used as `python3 -m uv`, which works whatever PATH the pip install put its script on.
if ! python3 -m uv --version >/dev/null 2>&1; then
  echo "setup: installing uv (pip)"
  python3 -m pip install --quiet "uv==0.13.8" 2>/dev/null \
    || python3 -m pip install --quiet --user --break-system-packages "uv==0.13.8"  # an externally managed Python
fi
# Compiled once here: where PYTHONDONTWRITEBYTECODE is set, no process writes .pyc files, and every devenv
# command, emulator and task would compile moto, boto3 and the rest again at each start (seconds each).
echo "setup: syncing the Python environment (uv sync --frozen --compile-bytecode; ~1 min the first time)"
python3 -m uv sync --frozen --quiet --compile-bytecode
python3 -m uv run --frozen python -m compileall -q -j 0 -x node_modules devenv llmproxy stack loadtests >/dev/null
if [ ! -f stack/node_modules/.package-lock.json ] || [ stack/package-lock.json -nt stack/node_modules/.package-lock.json ]; then
  echo "setup: installing the pinned CDK CLI (npm ci in stack/)"
  npm ci --prefix stack --no-audit --no-fund --loglevel=error >/dev/null
fi
echo "setup: done"
