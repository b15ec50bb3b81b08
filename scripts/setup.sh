#!/usr/bin/env bash
# Installs everything Gatehouse needs to build and test, from crates.io and npm only.
# Idempotent: a second run checks versions and does nothing else.
#
#   scripts/setup.sh          toolchain + npm packages
#
# Tools go to $GATEHOUSE_TOOLS (default ~/.cache/gatehouse/tools), keyed by version, so
# fresh clones on the same machine reuse them. Source scripts/env.sh to get the variables.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/env.sh

log() { printf '\033[1m[setup]\033[0m %s\n' "$*"; }

command -v cargo >/dev/null || { echo "cargo not found: install Rust with rustup first" >&2; exit 1; }
command -v npm >/dev/null || { echo "npm not found: install Node.js 20.19+ and npm first" >&2; exit 1; }
# Wrangler needs Node 20+; the Nuxt example's toolchain (vite, nitropack) needs 20.19+ or 22.12+.
node -e 'const [a, b] = process.versions.node.split(".").map(Number); process.exit(a > 22 || (a === 22 && b >= 12) || (a === 20 && b >= 19) ? 0 : 1)' ||
  { echo "Node.js $(node --version) is too old: install Node.js 20.19+ (or 22.12+)" >&2; exit 1; }

if ! rustup target list --installed 2>/dev/null | grep -qx wasm32-unknown-unknown; then
  log "adding the wasm32-unknown-unknown target"
  rustup target add wasm32-unknown-unknown
fi

# Cargo links native programs (wasm-bindgen-cli, worker-build, the gatehouse CLI) with the
# system's C toolchain, which rustup does not bring.
if ! command -v cc >/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    log "installing gcc and libc6-dev (Debian packages: the linker cargo needs for native builds)"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq gcc libc6-dev >/dev/null
  else
    echo "cargo needs a C compiler and linker (cc): sudo apt-get install gcc libc6-dev" >&2
    exit 1
  fi
fi

# worker-build links OpenSSL (native-tls): it needs pkg-config and the OpenSSL headers.
if ! { command -v pkg-config >/dev/null && pkg-config --exists openssl; }; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    log "installing pkg-config and libssl-dev (Debian packages, needed to build worker-build)"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq pkg-config libssl-dev >/dev/null
  else
    echo "worker-build needs pkg-config and the OpenSSL headers: sudo apt-get install pkg-config libssl-dev" >&2
    exit 1
  fi
fi

# The test suite runs the PHP snippet that verifies the proxy's identity signature.
if ! command -v php >/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    log "installing php-cli (Debian package; the tests run the PHP signature verifier)"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends php-cli >/dev/null
  else
    echo "note: php is not installed; the PHP signature-verifier test will be skipped (sudo apt-get install php-cli)" >&2
  fi
fi

# wasm-bindgen-cli must equal Cargo.lock's wasm-bindgen exactly.
WB_VERSION=$(awk '/^name = "wasm-bindgen"$/{getline; gsub(/version = |"/,""); print; exit}' Cargo.lock)
[ -n "$WB_VERSION" ] || { echo "wasm-bindgen not found in Cargo.lock" >&2; exit 1; }
WB_ROOT="$GATEHOUSE_TOOLS/wasm-bindgen-$WB_VERSION"
if [ ! -x "$WB_ROOT/bin/wasm-bindgen" ]; then
  log "installing wasm-bindgen-cli $WB_VERSION (from crates.io)"
  # --locked first; the crate's own lockfile may name a release the registry no longer
  # serves, in which case resolve afresh (the CLI version itself stays exact).
  cargo install --quiet --locked wasm-bindgen-cli --version "=$WB_VERSION" --root "$WB_ROOT" ||
    cargo install --quiet wasm-bindgen-cli --version "=$WB_VERSION" --root "$WB_ROOT"
fi

WBUILD_ROOT="$GATEHOUSE_TOOLS/worker-build-$WORKER_BUILD_VERSION"
if [ ! -x "$WBUILD_ROOT/bin/worker-build" ]; then
  log "installing worker-build $WORKER_BUILD_VERSION (from crates.io)"
  cargo install --quiet --locked worker-build --version "=$WORKER_BUILD_VERSION" --root "$WBUILD_ROOT" ||
    cargo install --quiet worker-build --version "=$WORKER_BUILD_VERSION" --root "$WBUILD_ROOT"
fi

if [ ! -f node_modules/.package-lock.json ] || ! cmp -s package-lock.json node_modules/.gatehouse-lock; then
  log "installing npm packages (npm ci)"
  npm ci --no-audit --no-fund --loglevel=error
  cp package-lock.json node_modules/.gatehouse-lock
fi
# The browser tests drive Debian's Chromium (never a downloaded browser).
if [ ! -x /usr/bin/chromium ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    log "installing chromium (Debian package, for the browser tests)"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  else
    echo "note: the browser tests need Debian's chromium (sudo apt-get install chromium); the test command fails without it" >&2
  fi
fi

# The Nuxt example has its own lockfile (with rollup's optional per-platform packages listed, so
# that `npm ci` accepts it).
EX=examples/nuxt-static
if [ -f "$EX/package-lock.json" ] &&
   { [ ! -f "$EX/node_modules/.package-lock.json" ] || ! cmp -s "$EX/package-lock.json" "$EX/node_modules/.gatehouse-lock"; }; then
  log "installing the Nuxt example's npm packages (npm ci in $EX)"
  (cd "$EX" && npm ci --no-audit --no-fund --loglevel=error && cp package-lock.json node_modules/.gatehouse-lock)
fi
log "toolchain ready"
