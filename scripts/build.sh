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
  out=build-selftest
  "$WORKER_BUILD_BIN" --release --out-dir "$out" --features selftest
else
  out=build
  "$WORKER_BUILD_BIN" --release
fi
# The entry module: worker-build's class with the fast path of src/worker/entry.mjs in front.
"$ESBUILD_BIN" src/worker/entry.mjs --bundle --format=esm --log-level=warning \
  --external:../index.js --outfile="$out/worker/shim.mjs" --allow-overwrite
