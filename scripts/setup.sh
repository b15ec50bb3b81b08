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
# Installs crate $1 at exactly version $2 into $3: with the crate's own Cargo.lock first; when
# that fails (it may name a release the registry no longer serves), with its dependencies
# resolved afresh. The tool's own version stays exact either way.
install_crate() {
  local locked_err
  locked_err=$(mktemp)
  if ! cargo install --quiet --locked "$1" --version "=$2" --root "$3" 2>"$locked_err"; then
    log "$1 $2 did not build with its own Cargo.lock ($(grep -m1 '^error' "$locked_err" | cut -c1-120)); resolving its dependencies afresh"
    cargo install --quiet "$1" --version "=$2" --root "$3" ||
      { cat "$locked_err" >&2; rm -f "$locked_err"; return 1; }
  fi
  rm -f "$locked_err"
}

if [ ! -x "$WB_ROOT/bin/wasm-bindgen" ]; then
  log "installing wasm-bindgen-cli $WB_VERSION (from crates.io)"
  install_crate wasm-bindgen-cli "$WB_VERSION" "$WB_ROOT"
fi

WBUILD_ROOT="$GATEHOUSE_TOOLS/worker-build-$WORKER_BUILD_VERSION"
if [ ! -x "$WBUILD_ROOT/bin/worker-build" ]; then
  log "installing worker-build $WORKER_BUILD_VERSION (from crates.io)"
  install_crate worker-build "$WORKER_BUILD_VERSION" "$WBUILD_ROOT"
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
# that `npm ci` accepts it). It installs this repository's clients/js and clients/nuxt as copies
# (its .npmrc sets install-links), so a change to their files reinstalls it too.
EX=examples/nuxt-static
ex_stamp() {
  cat "$EX/package-lock.json"
  find clients/js clients/nuxt -type f -not -path '*/node_modules/*' -not -path '*/test/*' -print0 |
    LC_ALL=C sort -z | xargs -0 sha256sum
}
if [ -f "$EX/package-lock.json" ] &&
   { [ ! -f "$EX/node_modules/.package-lock.json" ] || ! ex_stamp | cmp -s - "$EX/node_modules/.gatehouse-lock"; }; then
  log "installing the Nuxt example's npm packages (npm ci in $EX)"
  (cd "$EX" && npm ci --no-audit --no-fund --loglevel=error)
  ex_stamp >"$EX/node_modules/.gatehouse-lock"
fi
# Moves a finished install (temporary directory $1, under $GATEHOUSE_TOOLS) to $2 with its marker
# $3, replacing an older one; a concurrent setup that placed the same install first is fine. Ends
# the EXIT trap that would remove $1 on failure.
put_in_place() {
  chmod 755 "$1"
  printf '%s\n' "$3" >"$1/.gatehouse-installed"
  rm -rf "$2"
  mv -T "$1" "$2" 2>/dev/null ||
    [ "$(cat "$2/.gatehouse-installed" 2>/dev/null)" = "$3" ] || # a concurrent setup won
    { echo "error: could not move $4 into $2" >&2; exit 1; }
  rm -rf "$1"
  trap - EXIT
}
# A real Directus 11 (SQLite) for the end-to-end tests, from tests/directus's lockfile: installed
# once per machine into $GATEHOUSE_DIRECTUS ($GATEHOUSE_TOOLS/directus-<lockfile hash>) and reused.
# sqlite3 and isolated-vm compile from source with node-gyp (about 4 minutes on 2 busy cores), so the
# install is done in a temporary directory and renamed into place once complete: an interrupted
# install is never taken for a good one. A failed install fails setup.
if ! { command -v python3 && command -v make && command -v g++; } >/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    log "installing python3, make and g++ (Debian packages; node-gyp builds Directus's sqlite3 and isolated-vm)"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3 make g++ >/dev/null
  else
    echo "Directus's sqlite3 and isolated-vm build with node-gyp, which needs python3, make and g++: sudo apt-get install python3 make g++" >&2
    exit 1
  fi
fi
DX_LOCK=tests/directus/package-lock.json
# What the marker records: the lockfile and the Node ABI the native modules were built for.
DX_STAMP="$(sha256sum "$DX_LOCK" | cut -d' ' -f1) node-abi-$(node -p 'process.versions.modules') $(node -p 'process.platform + "-" + process.arch')"
if [ "$(cat "$GATEHOUSE_DIRECTUS/.gatehouse-installed" 2>/dev/null)" != "$DX_STAMP" ]; then
  log "installing Directus for the end-to-end tests into $GATEHOUSE_DIRECTUS (npm ci; compiles sqlite3 and isolated-vm, a few minutes)"
  mkdir -p "$GATEHOUSE_TOOLS"
  DX_TMP=$(mktemp -d "$GATEHOUSE_TOOLS/.directus-install.XXXXXX")
  trap 'rm -rf "$DX_TMP"' EXIT
  cp tests/directus/package.json "$DX_LOCK" "$DX_TMP/"
  # Native modules build from source: prebuild-install would otherwise fetch binaries from GitHub
  # (rc reads `prebuild-install_*` from the environment; the variable affects prebuild-install
  # only, so sharp and argon2 keep the prebuilt binaries that come in their npm packages).
  # node-gyp uses this Node's own headers when they are installed next to it, not a download.
  DX_NODEDIR=$(node -p 'require("path").resolve(process.execPath, "../..")')
  if [ -z "${npm_config_nodedir:-}" ] && [ -z "$(npm config get nodedir 2>/dev/null | grep -v '^undefined$' || true)" ] &&
     [ -f "$DX_NODEDIR/include/node/common.gypi" ]; then
    export npm_config_nodedir="$DX_NODEDIR"
  fi
  DX_START=$SECONDS
  if ! (cd "$DX_TMP" && env 'prebuild-install_buildFromSource=true' JOBS=max \
          npm ci --no-audit --no-fund --loglevel=error --foreground-scripts >"$DX_TMP/.npm-ci.log" 2>&1); then
    echo "error: installing Directus (npm ci of tests/directus/package-lock.json) failed:" >&2
    { grep -m 10 '^npm error' "$DX_TMP/.npm-ci.log" || true; echo '[…] the last lines:'; tail -n 25 "$DX_TMP/.npm-ci.log"; } >&2
    echo "The end-to-end tests need it. Building sqlite3 and isolated-vm needs python3, make and g++." >&2
    exit 1
  fi
  [ -x "$DX_TMP/node_modules/.bin/directus" ] || { echo "error: the Directus install has no node_modules/.bin/directus" >&2; exit 1; }
  (cd "$DX_TMP" && node --no-node-snapshot -e 'require("sqlite3"); require("isolated-vm")') ||
    { echo "error: the Directus install's sqlite3 or isolated-vm native module does not load" >&2; exit 1; }
  put_in_place "$DX_TMP" "$GATEHOUSE_DIRECTUS" "$DX_STAMP" "the Directus install"
  log "Directus installed in $((SECONDS - DX_START)) s"
fi
# A real OpenID provider (oidc-provider, OpenID Certified; pure JavaScript) as the external issuer
# of tests/e2e/external-issuers.test.mjs, from tests/oidc's lockfile: installed once per machine
# into $GATEHOUSE_OIDC ($GATEHOUSE_TOOLS/oidc-<lockfile hash>) as Directus is, and reused.
OIDC_LOCK=tests/oidc/package-lock.json
OIDC_STAMP="$(sha256sum "$OIDC_LOCK" | cut -d' ' -f1)"
if [ "$(cat "$GATEHOUSE_OIDC/.gatehouse-installed" 2>/dev/null)" != "$OIDC_STAMP" ]; then
  log "installing oidc-provider for the end-to-end tests into $GATEHOUSE_OIDC (npm ci)"
  mkdir -p "$GATEHOUSE_TOOLS"
  OIDC_TMP=$(mktemp -d "$GATEHOUSE_TOOLS/.oidc-install.XXXXXX")
  trap 'rm -rf "$OIDC_TMP"' EXIT
  cp tests/oidc/package.json "$OIDC_LOCK" "$OIDC_TMP/"
  if ! (cd "$OIDC_TMP" && npm ci --no-audit --no-fund --loglevel=error >"$OIDC_TMP/.npm-ci.log" 2>&1); then
    echo "error: installing oidc-provider (npm ci of tests/oidc/package-lock.json) failed:" >&2
    tail -n 25 "$OIDC_TMP/.npm-ci.log" >&2
    exit 1
  fi
  [ -f "$OIDC_TMP/node_modules/oidc-provider/package.json" ] ||
    { echo "error: the oidc-provider install has no node_modules/oidc-provider" >&2; exit 1; }
  put_in_place "$OIDC_TMP" "$GATEHOUSE_OIDC" "$OIDC_STAMP" "the oidc-provider install"
fi
# schemathesis for the OpenAPI contract test (tests/e2e/openapi.test.mjs, tests/schemathesis/): a
# virtualenv of Debian's python3 with every package of tests/schemathesis/requirements.txt, pinned,
# from PyPI, made once per machine in $GATEHOUSE_TOOLS/schemathesis-<hash of that file>. Like
# Directus it is built in a temporary directory and renamed into place once complete (it is then
# run as `python -m schemathesis.cli`: the console scripts' #! lines name the temporary
# directory). A failed install fails setup.
ST_REQ=tests/schemathesis/requirements.txt
ST_VENV="$GATEHOUSE_TOOLS/schemathesis-$(sha256sum "$ST_REQ" | cut -c1-12)"
ST_PY=/usr/bin/python3
[ -x "$ST_PY" ] || ST_PY=$(command -v python3)
# What the marker records: the requirements and the interpreter the virtualenv was made from.
ST_STAMP="$(sha256sum "$ST_REQ" | cut -d' ' -f1) $("$ST_PY" -c 'import platform, sys; print(sys.executable + "-" + platform.python_version())')"
if [ "$(cat "$ST_VENV/.gatehouse-installed" 2>/dev/null)" != "$ST_STAMP" ] || [ ! -x "$ST_VENV/bin/python" ]; then
  # Debian's python3 makes virtualenvs only with python3-venv (it holds ensurepip).
  if ! "$ST_PY" -c 'import ensurepip, venv' 2>/dev/null; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
      log "installing python3-venv (Debian package; the schemathesis virtualenv needs it)"
      apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3-venv >/dev/null
    fi
    "$ST_PY" -c 'import ensurepip, venv' 2>/dev/null ||
      { echo "error: $ST_PY cannot make a virtualenv (no ensurepip): sudo apt-get install python3-venv" >&2; exit 1; }
  fi
  log "installing schemathesis for the OpenAPI contract test into $ST_VENV (pip, from $ST_REQ)"
  mkdir -p "$GATEHOUSE_TOOLS"
  ST_TMP=$(mktemp -d "$GATEHOUSE_TOOLS/.schemathesis-install.XXXXXX")
  trap 'rm -rf "$ST_TMP"' EXIT
  if ! { "$ST_PY" -m venv "$ST_TMP" &&
         "$ST_TMP/bin/python" -m pip install --quiet --disable-pip-version-check --no-input --no-deps \
           --require-virtualenv -r "$ST_REQ" &&
         "$ST_TMP/bin/python" -m pip check --disable-pip-version-check; } >"$ST_TMP/.pip.log" 2>&1; then
    echo "error: installing schemathesis (pip install -r $ST_REQ into a virtualenv) failed:" >&2
    tail -n 25 "$ST_TMP/.pip.log" >&2
    exit 1
  fi
  "$ST_TMP/bin/python" -m schemathesis.cli --version >/dev/null ||
    { echo "error: the schemathesis virtualenv does not run schemathesis" >&2; exit 1; }
  put_in_place "$ST_TMP" "$ST_VENV" "$ST_STAMP" "the schemathesis virtualenv"
  "$ST_VENV/bin/python" -m schemathesis.cli --version >/dev/null ||
    { echo "error: the schemathesis virtualenv does not run after moving it into $ST_VENV" >&2; exit 1; }
  log "schemathesis installed ($(grep -m1 '^schemathesis==' "$ST_REQ"))"
fi
log "toolchain ready"
