#!/usr/bin/env bash
# Sets everything up and runs Gatehouse locally on http://127.0.0.1:8787:
# toolchain, build, local D1 migrations, a demo user, then `wrangler dev` (Ctrl-C stops it).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
. scripts/env.sh

DEMO_EMAIL=demo@example.com
DEMO_PASSWORD=gatehouse-demo
PORT="${PORT:-8787}"

log() { printf '\033[1m[dev]\033[0m %s\n' "$*"; }

log "building the CLI"
cargo build --quiet --release --bin gatehouse
CLI=target/release/gatehouse

if [ ! -f .dev.vars ]; then
  log "writing .dev.vars with a fresh signing key (local only, git-ignored)"
  { "$CLI" keygen --env; echo "REGISTRATION=open"; } > .dev.vars
fi
if ! grep -q '^API_KEY_PEPPER=' .dev.vars; then
  log "adding an API_KEY_PEPPER to .dev.vars (API keys; export it for gatehouse mint-key --local)"
  echo "API_KEY_PEPPER=$("$CLI" keygen --pepper)" >> .dev.vars
fi

log "applying D1 migrations to the local database"
node_modules/.bin/wrangler d1 migrations apply DB --local < /dev/null

log "creating the demo user"
printf '%s\n' "$DEMO_PASSWORD" |
  "$CLI" add-user --local --update --email "$DEMO_EMAIL" --name "Demo User" --roles user,editor --password-stdin

cat <<EOT

  Gatehouse is starting on http://127.0.0.1:$PORT
  demo login: $DEMO_EMAIL / $DEMO_PASSWORD

  curl -s -X POST http://127.0.0.1:$PORT/auth/login -H 'content-type: application/json' \\
       -d '{"email":"$DEMO_EMAIL","password":"$DEMO_PASSWORD","refresh_token_in_body":true}'

EOT
exec node_modules/.bin/wrangler dev --ip 127.0.0.1 --port "$PORT"
