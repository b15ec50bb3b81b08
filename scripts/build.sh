#!/usr/bin/env bash
# Builds the worker with the pinned worker-build, offline-safe (no downloads from GitHub).
#
#   scripts/build.sh              production build into build/ (what wrangler deploys)
#   scripts/build.sh --selftest   test build with /__selftest/* routes into build-selftest/
#
# Expects scripts/setup.sh to have run (scripts/dev.sh and scripts/test.sh do that).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/env.sh
for tool in "$WORKER_BUILD_BIN" "$WASM_BINDGEN_BIN" "$WASM_OPT_BIN" "$ESBUILD_BIN"; do
  [ -x "$tool" ] || { echo "missing $tool: run scripts/setup.sh first" >&2; exit 1; }
done
if [ "${1:-}" = "--selftest" ]; then
  exec "$WORKER_BUILD_BIN" --release --out-dir build-selftest --features selftest
else
  exec "$WORKER_BUILD_BIN" --release
fi
