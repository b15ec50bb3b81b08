// Starts a real Directus 11.3.5 on a fresh SQLite database and seeds it, for end-to-end tests.
//
//   const d = await startDirectus();
//   await fetch(`${d.url}/items/articles`, { headers: { authorization: `Bearer ${d.readToken}` } });
//   await d.stop();
//
// Directus comes from tests/directus's lockfile, installed once per machine by
// `bash scripts/setup.sh` into $GATEHOUSE_DIRECTUS ($GATEHOUSE_TOOLS/directus-<lockfile hash>).
//
// The seed: collection `articles` (id integer auto-increment, title, body, status default
// "draft", author nullable); role+policy "Reader" (read `articles` where status = published,
// all fields) with user reader@example.com and a static token; role+policy "Writer" (create,
// read all, update `articles`; no delete) with writer@example.com and a static token; items
// alice1, alice2 (published, usr_alice), aliceDraft (draft, usr_alice), bob1 (published, usr_bob).
// The public policy has no permission at all.
//
// What Directus 11.3.5 does here (observed by running it; tests/e2e/directus.test.mjs checks
// the REST points):
// - Errors are {"errors":[{"message":…,"extensions":{"code":…}}]}. No token → 403 FORBIDDEN
//   (never 401), for reads and writes alike; an unknown token → 401 INVALID_CREDENTIALS.
// - A missing item → 403 FORBIDDEN, never 404: GET /items/articles/999999 with the writer, the
//   reader and even the admin token; the same for PATCH and DELETE of a missing id, for an item
//   the reader may not see (a draft), and for an unknown collection.
// - POST /items/articles → 200 (not 201) {"data": item with defaults, e.g. status "draft"}; an
//   array body creates several, answered in order. An `id` that exists → 400 RECORD_NOT_UNIQUE
//   (a create never overwrites).
// - PATCH /items/articles/{id} (writer) → 200 {"data": the whole item}: any field of any item,
//   `author` and `status` (publishing) included; PATCH /items/articles {keys:[…], data:{…}} updates
//   many. The reader's POST/PATCH and the writer's DELETE → 403.
// - A static token also works as the query parameter `?access_token=…`.
// - With the read token, GET /users/me → 200 {"data":{"id": the service account}}.
// - POST /graphql works with the static tokens. Query `{ articles { id title } }` (ids come back as
//   strings; the reader sees published items only, `articles_by_id` of a draft is null). The
//   writer's schema has `create_articles_item(data: create_articles_input!)`,
//   `create_articles_items`, `update_articles_item(id: ID!, data: update_articles_input!)`,
//   `update_articles_items`, `update_articles_batch` and no delete; the data usually sits in
//   variables: {"query":"mutation($d: create_articles_input!) { create_articles_item(data: $d)
//   { id } }","variables":{"d":{"title":"…","author":"…"}}}. GraphQL answers HTTP 200 with
//   {"data":{"update_articles_item":null},"errors":[{…"code":"FORBIDDEN"}]} for a missing id;
//   200 with INTERNAL_SERVER_ERROR for any mutation by the reader (its schema has no Mutation
//   type); 400 GRAPHQL_VALIDATION for a field the caller's schema lacks (anonymous: `articles`).
// - Startup: bootstrap (system tables and ~100 migrations) takes about 4 s on a memory file
//   system, 8 s on disk; `start` answers /server/health about 3 s later (200 {"status":"ok"} for
//   anyone); the whole startDirectus() with the seed, about 8 s on 2 busy cores.

import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { accessSync, constants as fsConstants, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import net from 'node:net';
import { homedir, tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

/** The install directory, computed as scripts/env.sh does (GATEHOUSE_DIRECTUS wins if set). */
export function directusInstallDir() {
  if (process.env.GATEHOUSE_DIRECTUS) return process.env.GATEHOUSE_DIRECTUS;
  const tools = process.env.GATEHOUSE_TOOLS || path.join(homedir(), '.cache', 'gatehouse', 'tools');
  const lock = readFileSync(path.join(ROOT, 'tests', 'directus', 'package-lock.json'));
  return path.join(tools, `directus-${createHash('sha256').update(lock).digest('hex').slice(0, 12)}`);
}

// Processes and directories to clean up if the test process exits without stop(). Directus
// also gets a preload that ends it when its IPC channel to this process closes, so it never
// outlives a test process that was killed outright.
const running = new Set();
let exitHookInstalled = false;
function cleanupOnExit(entry) {
  running.add(entry);
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    process.once('exit', () => {
      for (const e of running) e.kill();
    });
  }
}

async function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

// SQLite syncs every write to disk: on a VM disk that doubles the bootstrap (about 100 migrations)
// and slows every write. A memory file system is used when there is one (/dev/shm on Linux);
// GATEHOUSE_DIRECTUS_TMP chooses another place.
function scratchBase() {
  if (process.env.GATEHOUSE_DIRECTUS_TMP) return process.env.GATEHOUSE_DIRECTUS_TMP;
  try {
    accessSync('/dev/shm', fsConstants.W_OK);
    return '/dev/shm';
  } catch {
    return tmpdir();
  }
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * Boots Directus and seeds it. Options: `timeoutMs` (whole start, default 120 s), `log` (echo
 * Directus's output; also GATEHOUSE_E2E_LOG=1), `logLevel` (default "warn").
 * → { url, port, readToken, writeToken, adminToken, adminEmail, adminPassword, items, articles,
 *     reader, writer, logs(), stop() }
 *   items: the seeded articles' ids by name ({ alice1, alice2, aliceDraft, bob1 } → id);
 *   articles: the same names → the whole item as created ({ id, title, body, status, author });
 *   reader, writer: { token, userId, roleId, policyId }.
 */
export async function startDirectus({ timeoutMs = 120_000, log = process.env.GATEHOUSE_E2E_LOG === '1', logLevel = 'warn' } = {}) {
  const install = directusInstallDir();
  const cli = path.join(install, 'node_modules', '@directus', 'api', 'dist', 'cli', 'run.js');
  if (!existsSync(path.join(install, '.gatehouse-installed')) || !existsSync(cli)) {
    throw new Error(
      `Directus is not installed (expected it in ${install}): run \`bash scripts/setup.sh\`, ` +
        'which installs it from tests/directus/package-lock.json',
    );
  }
  const deadline = Date.now() + timeoutMs;
  const dir = await mkdtemp(path.join(scratchBase(), 'gatehouse-directus-'));
  for (const sub of ['uploads', 'extensions', 'migrations', 'templates', 'tmp']) mkdirSync(path.join(dir, sub));
  // Directus looks for extensions among the dependencies of the package.json in PACKAGE_FILE_LOCATION.
  writeFileSync(path.join(dir, 'package.json'), '{ "name": "gatehouse-directus-e2e", "private": true }\n');
  // Ends Directus, and removes this directory, as soon as its IPC channel to the test process
  // closes: the test process died without running its exit hook (SIGKILL).
  const watchdog = path.join(dir, 'watchdog.cjs');
  writeFileSync(
    watchdog,
    "process.on('disconnect', () => {\n" +
      "  try { require('node:fs').rmSync(__dirname, { recursive: true, force: true }); } catch {}\n" +
      '  process.exit(1);\n' +
      '});\n',
  );

  const output = [];
  const record = (chunk) => {
    for (const line of String(chunk).split(/\r?\n/)) {
      if (!line) continue;
      output.push(line);
      if (output.length > 2000) output.splice(0, output.length - 2000);
      if (log) process.stderr.write(`[directus] ${line}\n`);
    }
  };
  const logs = () => output.join('\n');
  const tail = (n = 40) => output.slice(-n).join('\n');

  const admin = { email: 'admin@example.com', password: randomBytes(12).toString('base64url') };
  const adminToken = `adm-${randomBytes(24).toString('hex')}`;
  let port = await freePort();
  const env = () => ({
    // Only what Directus needs: nothing from this process's environment reaches its config.
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    HOME: dir,
    TMPDIR: path.join(dir, 'tmp'),
    LANG: 'C.UTF-8',
    TZ: 'UTC',
    NODE_ENV: 'production',
    CONFIG_PATH: path.join(dir, 'no.env'), // no .env file is read
    DB_CLIENT: 'sqlite3',
    DB_FILENAME: path.join(dir, 'directus.db'),
    KEY: randomBytes(16).toString('hex'),
    SECRET: randomBytes(32).toString('hex'),
    ADMIN_EMAIL: admin.email,
    ADMIN_PASSWORD: admin.password,
    ADMIN_TOKEN: adminToken,
    HOST: '127.0.0.1',
    PORT: String(port),
    PUBLIC_URL: `http://127.0.0.1:${port}`,
    LOG_LEVEL: logLevel,
    LOG_STYLE: 'raw',
    TELEMETRY: 'false',
    SERVE_APP: 'false', // no admin app
    RATE_LIMITER_ENABLED: 'false',
    RATE_LIMITER_GLOBAL_ENABLED: 'false',
    RATE_LIMITER_REGISTRATION_ENABLED: 'false',
    PRESSURE_LIMITER_ENABLED: 'false', // would answer 503 when a shared CPU slows the event loop
    CACHE_ENABLED: 'false',
    CACHE_AUTO_PURGE: 'false',
    LOGIN_STALL_TIME: '0',
    EMAIL_VERIFY_SETUP: 'false',
    EMAIL_TRANSPORT: 'sendmail',
    EMAIL_SENDMAIL_PATH: '/bin/false',
    WEBSOCKETS_ENABLED: 'false',
    TUS_ENABLED: 'false',
    RETENTION_ENABLED: 'false',
    EXTENSIONS_AUTO_RELOAD: 'false',
    MARKETPLACE_TRUST: 'sandbox',
    MARKETPLACE_REGISTRY: 'http://127.0.0.1:9', // never the public extension registry
    TEMP_PATH: path.join(dir, 'tmp'),
    STORAGE_LOCAL_ROOT: path.join(dir, 'uploads'),
    EXTENSIONS_PATH: path.join(dir, 'extensions'),
    MIGRATIONS_PATH: path.join(dir, 'migrations'),
    EMAIL_TEMPLATES_PATH: path.join(dir, 'templates'),
    PACKAGE_FILE_LOCATION: dir,
  });

  // `node …/@directus/api/dist/cli/run.js` is the `directus` command without its wrapper, which
  // only asks registry.npmjs.org whether a newer release exists (up to 8 s) before running it.
  const launch = (args, envVars) => {
    // --no-node-snapshot: isolated-vm (Directus's sandbox for extensions and flow scripts)
    // requires it on Node 20+.
    const child = spawn(process.execPath, ['--no-node-snapshot', '--require', watchdog, cli, ...args], {
      cwd: dir,
      env: envVars,
      detached: true, // its own process group, so stop() ends it and anything it started
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
    });
    child.stdout.on('data', record);
    child.stderr.on('data', record);
    const exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
    child.once('error', (err) => record(`spawn error: ${err.message}`));
    const entry = {
      child,
      exited,
      kill() {
        if (child.exitCode === null && child.signalCode === null) {
          try {
            process.kill(-child.pid, 'SIGKILL');
          } catch {
            child.kill('SIGKILL');
          }
        }
      },
    };
    // Once started, a forgotten stop() must not keep the test process alive (the exit hook still
    // kills it); while this module waits for it, it must.
    entry.hold = (held) => {
      for (const h of [child, child.channel, child.stdout, child.stderr]) h?.[held ? 'ref' : 'unref']?.();
    };
    return entry;
  };

  let current = null; // the Directus process running now (bootstrap, then start)
  let server = null;
  const dirEntry = {
    kill() {
      current?.kill();
      rmSync(dir, { recursive: true, force: true });
    },
  };
  cleanupOnExit(dirEntry);
  const fail = async (what) => {
    current?.kill();
    if (current) await current.exited;
    running.delete(dirEntry);
    rmSync(dir, { recursive: true, force: true });
    const err = new Error(`Directus ${what}; its last output:\n${tail() || '(none)'}`);
    err.directusStartFailure = true;
    throw err;
  };
  const remaining = () => deadline - Date.now();

  try {
    // 1. bootstrap: system tables, migrations, the admin user with its static token.
    const boot = (current = launch(['bootstrap'], env()));
    let bootTimedOut = false;
    const bootTimer = setTimeout(() => {
      bootTimedOut = true;
      boot.kill();
    }, Math.max(remaining(), 0));
    const bootEnd = await boot.exited;
    clearTimeout(bootTimer);
    if (bootTimedOut) await fail(`bootstrap did not finish within ${timeoutMs} ms`);
    if (bootEnd.code !== 0) await fail(`bootstrap failed (${bootEnd.code ?? bootEnd.signal})`);

    // 2. start, on a port picked just before; another process may take it first: try again.
    let url;
    for (let attempt = 1; ; attempt++) {
      url = `http://127.0.0.1:${port}`;
      server = current = launch(['start'], env());
      const state = await waitHealthy(url, server, deadline);
      if (state === 'ok') break;
      if (state === 'exited' && /already in use/.test(tail(5)) && attempt < 3 && remaining() > 0) {
        port = await freePort();
        continue;
      }
      await fail(state === 'exited' ? 'exited during startup' : `was not healthy within ${timeoutMs} ms`);
    }

    // 3. log in as admin and seed through the REST API.
    const seed = await seedDirectus(url, admin, deadline);
    server.hold(false);
    return {
      url,
      port,
      adminToken,
      adminEmail: admin.email,
      adminPassword: admin.password,
      ...seed,
      logs,
      async stop() {
        server.hold(true);
        server.kill();
        await server.exited;
        running.delete(dirEntry);
        rmSync(dir, { recursive: true, force: true });
      },
    };
  } catch (err) {
    if (err.directusStartFailure) throw err;
    return fail(`could not be set up: ${err.message}`);
  }
}

/** Polls /server/health until it answers 200 → 'ok'; 'exited' if Directus ends; 'timeout'. */
async function waitHealthy(url, server, deadline) {
  let exited = false;
  server.exited.then(() => (exited = true));
  while (Date.now() < deadline) {
    if (exited) return 'exited';
    try {
      const res = await fetch(`${url}/server/health`, { signal: AbortSignal.timeout(2000) });
      await res.arrayBuffer();
      if (res.status === 200) return 'ok';
    } catch {
      // not listening yet
    }
    await Promise.race([sleep(100), server.exited]);
  }
  return exited ? 'exited' : 'timeout';
}

async function api(url, method, p, token, body, deadline) {
  const res = await fetch(`${url}${p}`, {
    method,
    headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...(body ? { 'content-type': 'application/json' } : {}) },
    body: body ? JSON.stringify(body) : undefined,
    signal: AbortSignal.timeout(Math.max(deadline - Date.now(), 1000)),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`seeding: ${method} ${p} → ${res.status} ${text.slice(0, 500)}`);
  return text ? JSON.parse(text).data : null;
}

export const SEED_ITEMS = {
  alice1: { title: 'Alice, published 1', body: 'First published article by Alice.', status: 'published', author: 'usr_alice' },
  alice2: { title: 'Alice, published 2', body: 'Second published article by Alice.', status: 'published', author: 'usr_alice' },
  aliceDraft: { title: 'Alice, draft', body: 'A draft by Alice.', status: 'draft', author: 'usr_alice' },
  bob1: { title: 'Bob, published', body: 'A published article by Bob.', status: 'published', author: 'usr_bob' },
};

async function seedDirectus(url, admin, deadline) {
  const call = (method, p, token, body) => api(url, method, p, token, body, deadline);
  const { access_token: t } = await call('POST', '/auth/login', null, { email: admin.email, password: admin.password });

  await call('POST', '/collections', t, {
    collection: 'articles',
    meta: { icon: 'article', note: 'Gatehouse end-to-end tests' },
    schema: {},
    fields: [
      { field: 'id', type: 'integer', meta: { hidden: true, readonly: true }, schema: { is_primary_key: true, has_auto_increment: true } },
      { field: 'title', type: 'string', schema: {} },
      { field: 'body', type: 'text', schema: {} },
      { field: 'status', type: 'string', schema: { default_value: 'draft', is_nullable: false } },
      { field: 'author', type: 'string', schema: { is_nullable: true } },
    ],
  });

  const account = async (name, permissions) => {
    const policy = await call('POST', '/policies', t, { name, icon: 'badge', app_access: false, admin_access: false });
    for (const p of permissions) await call('POST', '/permissions', t, { policy: policy.id, collection: 'articles', fields: ['*'], ...p });
    const role = await call('POST', '/roles', t, { name, icon: 'badge' });
    await call('POST', '/access', t, { role: role.id, policy: policy.id });
    const token = `${name.toLowerCase()}-${randomBytes(24).toString('hex')}`;
    const user = await call('POST', '/users', t, {
      email: `${name.toLowerCase()}@example.com`,
      password: randomBytes(12).toString('base64url'),
      role: role.id,
      token,
      status: 'active',
    });
    return { token, userId: user.id, roleId: role.id, policyId: policy.id };
  };
  const reader = await account('Reader', [{ action: 'read', permissions: { status: { _eq: 'published' } } }]);
  const writer = await account('Writer', [
    { action: 'create', permissions: {}, validation: {} },
    { action: 'read', permissions: {} },
    { action: 'update', permissions: {}, validation: {} },
  ]);

  const names = Object.keys(SEED_ITEMS);
  const created = await call('POST', '/items/articles', t, names.map((n) => SEED_ITEMS[n]));
  const items = {};
  const articles = {};
  names.forEach((n, i) => {
    items[n] = created[i].id;
    articles[n] = created[i];
  });
  return { readToken: reader.token, writeToken: writer.token, reader, writer, items, articles };
}
