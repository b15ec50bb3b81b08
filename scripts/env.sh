# Sourced by the other scripts: tool locations and quiet, offline-safe settings.
GATEHOUSE_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export GATEHOUSE_TOOLS="${GATEHOUSE_TOOLS:-$HOME/.cache/gatehouse/tools}"
export WORKER_BUILD_VERSION=0.8.7
_wb_version=$(awk '/^name = "wasm-bindgen"$/{getline; gsub(/version = |"/,""); print; exit}' "$GATEHOUSE_ROOT/Cargo.lock")
export WASM_BINDGEN_BIN="$GATEHOUSE_TOOLS/wasm-bindgen-$_wb_version/bin/wasm-bindgen"
export WORKER_BUILD_BIN="$GATEHOUSE_TOOLS/worker-build-$WORKER_BUILD_VERSION/bin/worker-build"
export WASM_OPT_BIN="$GATEHOUSE_ROOT/node_modules/.bin/wasm-opt"
export ESBUILD_BIN="$GATEHOUSE_ROOT/node_modules/.bin/esbuild"
export WRANGLER_SEND_METRICS=false
export CLOUDFLARE_CF_FETCH_ENABLED=false
export WRANGLER_LOG="${WRANGLER_LOG:-warn}"
unset _wb_version
# The real Directus of the end-to-end tests (scripts/setup.sh installs it), keyed by its lockfile.
_dx_hash=$(sha256sum "$GATEHOUSE_ROOT/tests/directus/package-lock.json" 2>/dev/null | cut -c1-12 || true)
export GATEHOUSE_DIRECTUS="$GATEHOUSE_TOOLS/directus-${_dx_hash:-missing}"
unset _dx_hash
# The real OpenID provider of the end-to-end tests (oidc-provider; scripts/setup.sh installs it).
_oidc_hash=$(sha256sum "$GATEHOUSE_ROOT/tests/oidc/package-lock.json" 2>/dev/null | cut -c1-12 || true)
export GATEHOUSE_OIDC="$GATEHOUSE_TOOLS/oidc-${_oidc_hash:-missing}"
unset _oidc_hash
