// Starts the built Gatehouse worker inside workerd (through Miniflare) for end-to-end tests,
// scripts and benchmarks.
//
//   const w = await startWorker({ vars: { REGISTRATION: 'open', JWT_SIGNING_KEY: key.d } });
//   await fetch(`${w.url}/healthz`);
//   await w.db.prepare('SELECT count(*) AS n FROM users').first();
//   await w.stop();
//
// The production build is build/worker/shim.mjs (written by `bash scripts/build.sh`); the
// selftest build is the same layout under build-selftest/. Every start gets a fresh temporary
// persistence directory; with `migrate: true` the D1 migrations are applied to it first with the
// real `wrangler d1 migrations apply DB --local --persist-to <dir>` command.

import { spawn } from 'node:child_process';
import { createHash, generateKeyPairSync } from 'node:crypto';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { cp, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Miniflare } from 'miniflare';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const WRANGLER = path.join(ROOT, 'node_modules', '.bin', 'wrangler');

// ---------------------------------------------------------------------------------------------
// wrangler.toml (only the few keys the harness needs; no TOML library in Node's standard library)

function parseTomlString(raw) {
  const v = raw.trim();
  if (v.startsWith('"')) {
    const end = v.indexOf('"', 1);
    if (end < 0) throw new Error(`unterminated string in wrangler.toml: ${raw}`);
    return JSON.parse(v.slice(0, end + 1));
  }
  if (v.startsWith("'")) {
    const end = v.indexOf("'", 1);
    if (end < 0) throw new Error(`unterminated string in wrangler.toml: ${raw}`);
    return v.slice(1, end);
  }
  return v.replace(/\s+#.*$/, '');
}

/** Reads compatibility_date, compatibility_flags, the DB binding and [vars] from wrangler.toml. */
export function readWranglerConfig(file = path.join(ROOT, 'wrangler.toml')) {
  const text = readFileSync(file, 'utf8');
  const config = { compatibilityDate: undefined, compatibilityFlags: [], d1: [], vars: {} };
  let section = '';
  let current = null;
  for (const rawLine of text.split(/\r?\n/)) {
    const line = rawLine.trim();
    if (!line || line.startsWith('#')) continue;
    let m;
    if ((m = /^\[\[\s*([^\]]+?)\s*\]\]$/.exec(line))) {
      section = m[1];
      current = {};
      if (section === 'd1_databases') config.d1.push(current);
      continue;
    }
    if ((m = /^\[\s*([^\]]+?)\s*\]$/.exec(line))) {
      section = m[1];
      current = null;
      continue;
    }
    if (!(m = /^([A-Za-z0-9_-]+)\s*=\s*(.*)$/.exec(line))) continue;
    const [, key, value] = m;
    if (section === '') {
      if (key === 'compatibility_date') config.compatibilityDate = parseTomlString(value);
      if (key === 'compatibility_flags') {
        config.compatibilityFlags = [...value.matchAll(/"([^"]*)"/g)].map((x) => x[1]);
      }
    } else if (section === 'vars') {
      config.vars[key] = parseTomlString(value);
    } else if (section === 'd1_databases' && current) {
      current[key] = parseTomlString(value);
    }
  }
  if (!config.compatibilityDate) throw new Error('wrangler.toml has no compatibility_date');
  return config;
}

// ---------------------------------------------------------------------------------------------
// Migrations

function run(cmd, args, { cwd, env }) {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code, signal, out }));
  });
}

/** Applies migrations/ to a local D1 under persistTo with the real wrangler command. */
export async function applyMigrations(persistTo) {
  if (!existsSync(WRANGLER)) throw new Error(`${WRANGLER} not found: run npm ci`);
  const env = {
    ...process.env,
    WRANGLER_SEND_METRICS: 'false',
    CLOUDFLARE_CF_FETCH_ENABLED: 'false',
  };
  const args = ['d1', 'migrations', 'apply', 'DB', '--local', '--persist-to', persistTo];
  const res = await run(WRANGLER, args, { cwd: ROOT, env });
  if (res.code !== 0) {
    throw new Error(`wrangler ${args.join(' ')} failed (${res.code ?? res.signal}):\n${res.out}`);
  }
  return res.out;
}

// Temporary directories still to remove. Miniflare ends the process itself on SIGINT/SIGTERM
// (after killing workerd), so a synchronous 'exit' hook is the one place that always runs.
const leftovers = new Set();
let exitHookInstalled = false;
function removeOnExit(dir) {
  leftovers.add(dir);
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    process.once('exit', () => {
      for (const d of leftovers) rmSync(d, { recursive: true, force: true });
    });
  }
}

// The wrangler command takes about 2.5 s. It runs once per process (stdin is /dev/null, so it
// answers its own prompt); later starts in the same process copy its result (the same SQLite
// files) into their own fresh directory. GATEHOUSE_E2E_MIGRATE_EVERY_TIME=1 runs the command
// for every start instead.
let migratedTemplate = null;
async function migratedTemplateDir() {
  if (!migratedTemplate) {
    migratedTemplate = (async () => {
      const dir = await mkdtemp(path.join(tmpdir(), 'gatehouse-e2e-template-'));
      removeOnExit(dir);
      await applyMigrations(dir);
      return dir;
    })();
    migratedTemplate.catch(() => (migratedTemplate = null));
  }
  return migratedTemplate;
}

// ---------------------------------------------------------------------------------------------
// Worker

/** Where a build lives: build/ (production) or build-selftest/. */
export function buildDir(selftest = false) {
  return path.join(ROOT, selftest ? 'build-selftest' : 'build');
}

/**
 * Starts the worker. Options:
 *   vars          string bindings (JWT_SIGNING_KEY too: secrets are plain bindings locally)
 *   selftest      run build-selftest/ instead of build/
 *   migrate       apply migrations/ to the fresh D1 first (default true)
 *   port          0 picks a free port
 *   wranglerVars  also bind wrangler.toml's [vars] (under `vars`); default false, so the
 *                 worker's own defaults apply to everything a test does not set
 *   dir           a build directory holding worker/shim.mjs (overrides `selftest`)
 *   log           echo the worker's stdout/stderr (also GATEHOUSE_E2E_LOG=1)
 *   beforeStart   async (persistDir) => {}: runs after the migrations, before the worker starts
 *                 (e.g. to write rows with the CLI through wrangler --persist-to persistDir)
 *   cachePersist  a directory for the Cache API's entries (`caches.default`, `caches.open`),
 *                 which the caller owns and removes: a worker started later on the same
 *                 directory (after this one stopped) finds what this one stored, as a fresh
 *                 isolate in the same data centre would. Default: a cache in memory, empty at
 *                 each start
 * Returns { url, port, db, mf, logs, persistDir, stop }. `url` has no trailing slash;
 * `logs()` returns everything the worker printed so far.
 */
export async function startWorker(opts = {}) {
  const {
    vars = {},
    selftest = false,
    migrate = true,
    port = 0,
    wranglerVars = false,
    dir = buildDir(selftest),
    log = process.env.GATEHOUSE_E2E_LOG === '1',
    beforeStart,
    cachePersist,
  } = opts;

  const scriptPath = path.join(dir, 'worker', 'shim.mjs');
  if (!existsSync(scriptPath)) {
    throw new Error(
      `${path.relative(ROOT, scriptPath)} does not exist: build the worker first ` +
        `(bash scripts/build.sh${selftest ? ' --selftest' : ''})`,
    );
  }
  const config = readWranglerConfig();
  const d1 = config.d1.find((d) => d.binding === 'DB');
  if (!d1?.database_id) throw new Error('wrangler.toml has no [[d1_databases]] binding DB');

  const bindings = {};
  for (const [k, v] of Object.entries({ ...(wranglerVars ? config.vars : {}), ...vars })) {
    if (v === undefined || v === null) continue;
    bindings[k] = v !== null && typeof v === 'object' ? v : String(v); // objects: TOML tables
  }

  const persistDir = await mkdtemp(path.join(tmpdir(), 'gatehouse-e2e-'));
  removeOnExit(persistDir);
  let mf;
  try {
    if (migrate) {
      if (process.env.GATEHOUSE_E2E_MIGRATE_EVERY_TIME === '1') {
        await applyMigrations(persistDir);
      } else {
        await cp(await migratedTemplateDir(), persistDir, { recursive: true });
      }
    }
    if (beforeStart) await beforeStart(persistDir);

    const output = [];
    const collect = (stream, sink) => {
      stream.setEncoding('utf8');
      stream.on('data', (chunk) => {
        output.push(chunk);
        if (log) sink.write(chunk);
      });
    };

    mf = new Miniflare({
      modules: true,
      scriptPath,
      modulesRoot: dir,
      modulesRules: [
        { type: 'CompiledWasm', include: ['**/*.wasm'], fallthrough: true },
        { type: 'ESModule', include: ['**/*.js', '**/*.mjs'], fallthrough: true },
      ],
      compatibilityDate: config.compatibilityDate,
      compatibilityFlags: config.compatibilityFlags,
      bindings,
      d1Databases: { DB: d1.database_id },
      // wrangler --persist-to <dir> keeps D1 under <dir>/v3/d1.
      d1Persist: path.join(persistDir, 'v3', 'd1'),
      ...(cachePersist ? { cachePersist } : {}),
      host: '127.0.0.1',
      port,
      handleRuntimeStdio(stdout, stderr) {
        collect(stdout, process.stdout);
        collect(stderr, process.stderr);
      },
    });
    const url = await mf.ready;
    const db = await mf.getD1Database('DB');
    let stopped = null;
    return {
      url: url.origin,
      port: Number(url.port),
      db,
      mf,
      persistDir,
      logs: () => output.join(''),
      stop() {
        stopped ??= (async () => {
          try {
            await mf.dispose();
          } finally {
            await rm(persistDir, { recursive: true, force: true });
            leftovers.delete(persistDir);
          }
        })();
        return stopped;
      },
    };
  } catch (err) {
    if (mf) await mf.dispose().catch(() => {});
    await rm(persistDir, { recursive: true, force: true });
    leftovers.delete(persistDir);
    throw err;
  }
}

// ---------------------------------------------------------------------------------------------
// Keys

export function b64url(buf) {
  return Buffer.from(buf).toString('base64url');
}

/** RFC 7638 JWK thumbprint (SHA-256, base64url) of an OKP public key. */
export function jwkThumbprint({ crv, kty, x }) {
  // Required members only, in lexicographic order, no whitespace.
  const canonical = JSON.stringify({ crv, kty, x });
  return createHash('sha256').update(canonical, 'utf8').digest('base64url');
}

/**
 * A fresh Ed25519 signing key. `d` (base64url 32-byte seed) goes into JWT_SIGNING_KEY; the
 * KeyObjects, `x` and `kid` let tests sign and check tokens themselves.
 */
export function generateSigningKey() {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const jwk = privateKey.export({ format: 'jwk' }); // { crv, d, x, kty }
  const publicJwk = { kty: jwk.kty, crv: jwk.crv, x: jwk.x };
  return {
    d: jwk.d,
    x: jwk.x,
    kid: jwkThumbprint(publicJwk),
    jwk,
    publicJwk,
    privateKey,
    publicKey,
  };
}
