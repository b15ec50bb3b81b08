#!/usr/bin/env bash
# Sets everything up and runs the whole test suite:
#   1. native unit and integration tests of the portable core (cargo test)
#   2. the production build and the self-test build of the worker
#   3. end-to-end tests against the built worker in workerd with local D1 (node --test), with
#      the browser tests: the generated Nuxt example in Debian's Chromium (playwright-core)
# and, first, the JS client's logic tests (node --test).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
. scripts/env.sh

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "JavaScript client logic (node --test)"
npm run --silent test:client

step "native tests (cargo test)"
cargo test --quiet

step "building the worker (production and self-test builds)"
bash scripts/build.sh
bash scripts/build.sh --selftest
cargo build --quiet --release --bin gatehouse

step "end-to-end tests in workerd (node --test)"
npm run --silent test:e2e
