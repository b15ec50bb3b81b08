#!/usr/bin/env node
// The worker schemathesis runs against: the built worker in workerd (tests/support/worker.mjs)
// with open registration, a cheap password hash, API keys switched on, one proxied route
// (`/cms/`, forward_all) in front of a local recording upstream, and an admin.
//
//   import { startTarget } from './target.mjs';
//   const t = await startTarget();   // { url, adminToken, adminAccess, adminKey, admin, stop }
//
// As a command it prints `{"url":…,"adminToken":…}` on one line once ready and runs until
// SIGINT/SIGTERM, so the fuzzer can be pointed at it by hand:
//
//   node tests/schemathesis/target.mjs &        # → {"url":"http://127.0.0.1:…","adminToken":"gk_…"}
//   tests/schemathesis/run.sh http://127.0.0.1:… gk_…

import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { PEPPER, mintKey, userWithRoles } from '../support/admin.mjs';
import { client, openVars } from '../support/http.mjs';
import { startUpstream } from '../support/upstream.mjs';
import { generateSigningKey, startWorker } from '../support/worker.mjs';

/** MFA_ENCRYPTION_KEY of the fuzzed worker: TOTP enrollment is on. */
const MFA_KEY = randomBytes(32).toString('base64url');

/** The route the spec's example proxy path (`/cms/{path}`) reaches in this run. */
export function cmsRoute(upstreamUrl) {
  return {
    cms: {
      prefix: '/cms/',
      upstream: `${upstreamUrl}/cms-base/`,
      forward_all: true,
      timeout_ms: 2000,
      inject: { header: 'api-key', value: '{secret}' },
      read: { roles: ['anonymous'], secret: 'CMS_READ_KEY' },
      write: { roles: ['user'], secret: 'CMS_WRITE_KEY' },
    },
  };
}

/**
 * Starts the upstream and the worker and creates the admin: a registered user given
 * `admin,user` in D1, logged in again, and an admin API key minted through the admin API.
 * `adminToken` (what the runner gets) is the API key: it is not tied to a session, so the
 * fuzzer revoking sessions or resetting passwords cannot cut the run's own credential.
 */
export async function startTarget({ vars = {}, log = false } = {}) {
  const up = await startUpstream();
  let w;
  try {
    const key = generateSigningKey();
    w = await startWorker({
      log,
      vars: openVars(key, {
        API_KEY_PEPPER: PEPPER,
        MFA_ENCRYPTION_KEY: MFA_KEY,
        ROUTES: cmsRoute(up.url),
        UPSTREAM_SIGNING_SECRET: randomBytes(32).toString('base64url'),
        CMS_READ_KEY: `read-${randomBytes(12).toString('hex')}`,
        CMS_WRITE_KEY: `write-${randomBytes(12).toString('hex')}`,
        // The fuzzer registers and logs in from one IP thousands of times a run.
        RATE_LIMIT_REGISTER_PER_IP: '1000000',
        RATE_LIMIT_LOGIN_PER_IP: '1000000',
        // Its generated emails repeat ("", "0"…): the per-account limit would answer most logins.
        RATE_LIMIT_LOGIN_PER_ACCOUNT: '100000',
        // Passkeys on, for the site's origin (ALLOWED_ORIGINS).
        WEBAUTHN_RP_ID: 'site.example',
        ...vars,
      }),
    });
    const c = client(w.url);
    const admin = await userWithRoles(w, c, ['admin', 'user']);
    const minted = await mintKey(c, admin.access, { label: 'schemathesis admin', role: 'admin', scopes: ['cms'] });
    return {
      url: w.url,
      worker: w,
      upstream: up,
      admin,
      adminAccess: admin.access,
      adminKey: minted.key,
      adminKeyId: minted.api_key.id,
      adminToken: minted.key,
      async stop() {
        try {
          await w.stop();
        } finally {
          await up.close?.();
        }
      },
    };
  } catch (err) {
    await w?.stop().catch(() => {});
    await up.close?.().catch(() => {});
    throw err;
  }
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const t = await startTarget({ log: process.argv.includes('--log') });
  console.log(JSON.stringify({ url: t.url, adminToken: t.adminToken, adminAccess: t.adminAccess }));
  let stopping = false;
  const stop = async () => {
    if (stopping) return;
    stopping = true;
    await t.stop().catch((err) => console.error(err));
    process.exit(0);
  };
  for (const signal of ['SIGINT', 'SIGTERM']) {
    process.removeAllListeners(signal);
    process.on(signal, stop);
  }
}
