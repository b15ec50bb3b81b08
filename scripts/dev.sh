#!/usr/bin/env bash
# Sets everything up and runs Gatehouse locally on http://127.0.0.1:8787:
# toolchain, build, local D1 migrations, a demo user, a demo content API (Cockpit v2-like) on
# http://127.0.0.1:8789 proxied at /cms/, then `wrangler dev` (Ctrl-C stops both).
# The Nuxt example (examples/nuxt-static) is generated against it and served on
# http://localhost:3000 (SITE_PORT), an origin listed in ALLOWED_ORIGINS.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
. scripts/env.sh

DEMO_EMAIL=demo@example.com
DEMO_PASSWORD=gatehouse-demo
PORT="${PORT:-8787}"
SITE_PORT="${SITE_PORT:-3000}"
CMS_PORT="${CMS_PORT:-8789}"

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
if ! grep -q '^MFA_ENCRYPTION_KEY=' .dev.vars; then
  log "adding an MFA_ENCRYPTION_KEY to .dev.vars (TOTP second factor, turned on at the example's /account)"
  echo "MFA_ENCRYPTION_KEY=$("$CLI" keygen --mfa-key)" >> .dev.vars
fi

if ! grep -q '^CMS_READ_KEY=' .dev.vars; then
  log "adding the demo CMS keys to .dev.vars (random, local only)"
  node --input-type=module -e '
    import { randomBytes } from "node:crypto";
    const secret = () => randomBytes(32).toString("base64url");
    console.log(`UPSTREAM_SIGNING_SECRET=${secret()}`);
    console.log(`CMS_READ_KEY=read-${secret()}`);
    console.log(`CMS_WRITE_KEY=write-${secret()}`);
  ' >> .dev.vars
fi
# The route is the Cockpit recipe of docs/proxy.md, written afresh on every start so that it
# follows the document.
log "writing the demo CMS route (the Cockpit recipe of docs/proxy.md) to .dev.vars"
sed -i '/^ROUTES=/d' .dev.vars
CMS_PORT="$CMS_PORT" node --input-type=module -e '
  import { demoRoutes } from "./scripts/demo-cms.mjs";
  console.log(`ROUTES=\x27${JSON.stringify(demoRoutes(`http://127.0.0.1:${process.env.CMS_PORT}`))}\x27`);
' >> .dev.vars

log "applying D1 migrations to the local database"
node_modules/.bin/wrangler d1 migrations apply DB --local < /dev/null

log "creating the demo user"
printf '%s\n' "$DEMO_PASSWORD" |
  "$CLI" add-user --local --update --email "$DEMO_EMAIL" --name "Demo User" --roles user,editor --password-stdin

log "starting the demo content API on http://127.0.0.1:$CMS_PORT"
dev_var() { sed -n "s/^$1=//p" .dev.vars | tail -n 1; }
CMS_READ_KEY=$(dev_var CMS_READ_KEY) CMS_WRITE_KEY=$(dev_var CMS_WRITE_KEY) \
  UPSTREAM_SIGNING_SECRET=$(dev_var UPSTREAM_SIGNING_SECRET) \
  node scripts/demo-cms.mjs --port "$CMS_PORT" &
CMS_PID=$!
trap 'kill $CMS_PID 2>/dev/null || true' EXIT INT TERM

log "generating the Nuxt example (nuxt generate) against http://localhost:$PORT"
(cd examples/nuxt-static && GATEHOUSE_URL="http://localhost:$PORT" NUXT_TELEMETRY_DISABLED=1 \
  node_modules/.bin/nuxt generate > /dev/null)
node scripts/static-site.mjs --dir examples/nuxt-static/.output/public --port "$SITE_PORT" &
SITE_PID=$!
trap 'kill $CMS_PID $SITE_PID 2>/dev/null || true' EXIT INT TERM

cat <<EOT

  Gatehouse is starting on http://127.0.0.1:$PORT
  demo login: $DEMO_EMAIL / $DEMO_PASSWORD
  the Nuxt example: http://localhost:$SITE_PORT/
  demo CMS:   http://127.0.0.1:$CMS_PORT (Cockpit v2-like), proxied at http://127.0.0.1:$PORT/cms/
  admin console: http://localhost:$PORT/admin/console/ (for an admin; make one with
             target/release/gatehouse add-user --local --email you@example.com --roles admin,user)

  curl -s -X POST http://127.0.0.1:$PORT/auth/login -H 'content-type: application/json' \\
       -d '{"email":"$DEMO_EMAIL","password":"$DEMO_PASSWORD","refresh_token_in_body":true}'
  curl -s http://127.0.0.1:$PORT/cms/content/items/posts

EOT
node_modules/.bin/wrangler dev --ip 127.0.0.1 --port "$PORT" \
  --var "ALLOWED_ORIGINS:http://localhost:$SITE_PORT" \
  --var "WEBAUTHN_RP_ID:localhost"
