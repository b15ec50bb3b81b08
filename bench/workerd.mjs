// Proxied-GET benchmark of the built Gatehouse worker in workerd started directly from one capnp
// config (no Miniflare, no wrangler dev in the path), side by side with a bare pass-through
// worker and a Hono + jose peer, all in front of the same local upstream answering a 40-byte
// JSON. Prints requests/s, p50, p99, the ratios, workerd's CPU per request and the D1 calls each
// case made; then the first sight of a token, a login against its PBKDF2 alone, a refresh and
// its D1 round trips, the wasm's size and the start time, each against its target. Asserts
// nothing.
//
//   node bench/workerd.mjs [--rounds 3] [--seconds 6] [--warmup 2] [--connections 4]
//                          [--threads 1] [--no-startup] [--keep]
//   node bench/workerd.mjs --profile gh-anon [--profile-out file.cpuprofile]
//       a V8 CPU profile of one case's isolate (gh-anon, gh-bearer, gh-endpoint, gh-apikey, bare, peer)
//       through workerd's inspector, summarized by self time, instead of the table (the
//       inspector slows the isolate: read the shares, not the absolute µs)
//
// Needs the production build (build/worker/shim.mjs, `bash scripts/build.sh`), `wrk` and,
// preferably, `nginx` on PATH (apt-get install wrk nginx-light); without nginx the upstream is
// a Node http server. Everything listens on 127.0.0.1 only. One run takes about 3 minutes.
//
// What runs: one workerd process from a config generated into a temporary directory, with
//   gatehouse  build/ (copied first, so a rebuild during the run changes nothing) with its DB
//              bound as D1 the way wrangler binds it (`wrapped` binding, module
//              cloudflare-internal:d1-api) whose inner `fetcher` is d1-counter;
//   bare       bench/workers/bare.mjs: `fetch(upstream)`;
//   peer       bench/workers/peer.mjs bundled with esbuild: Hono + jose, EdDSA verify each request;
//   d1-counter bench/workers/d1-counter.mjs: counts the storage calls (empty results but for
//              the bench session, API key, user, refresh token and rate-limit counters);
//   pbkdf2     bench/workers/pbkdf2.mjs: the bench user's password hash computed alone;
// and one upstream (nginx, one process). Each case first gets a warm-up run, then every round
// runs each case once in turn (interleaved), `wrk -t1 -c4`; the table shows the medians over
// rounds. The machine's cores are shared by wrk, workerd and nginx: compare rows of one run with
// each other, and run it on a quiet machine.

import { spawn, spawnSync } from 'node:child_process';
import { generateKeyPairSync, createHash, createHmac, pbkdf2Sync, randomBytes } from 'node:crypto';
import { closeSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { createRequire } from 'node:module';
import { availableParallelism, tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { build as esbuild } from 'esbuild';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(HERE, '..');
const require = createRequire(import.meta.url);
const WORKERD = require('workerd').default;

// ---------------------------------------------------------------------------------------------
// Options

const argv = process.argv.slice(2);
const flag = (name) => argv.includes(`--${name}`);
const opt = (name, dflt) => {
  const i = argv.indexOf(`--${name}`);
  if (i < 0) return dflt;
  const v = Number(argv[i + 1]);
  if (!Number.isFinite(v) || v <= 0) throw new Error(`--${name} wants a positive number`);
  return v;
};
const ROUNDS = opt('rounds', 3);
const SECONDS = opt('seconds', 6);
const WARMUP = opt('warmup', 2);
const CONNECTIONS = opt('connections', 4);
const THREADS = opt('threads', 1);
const KEEP = flag('keep');
const STARTUP = !flag('no-startup');
const argValue = (name) => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? argv[i + 1] : undefined;
};
// --profile <case id>: instead of the table, a V8 CPU profile of that case's worker (through
// workerd's inspector) for one run, summarized by self time and written as a .cpuprofile.
const PROFILE = argValue('profile');
// A hard bound on the whole run, whatever happens.
const HARD_LIMIT_MS = (60 + 7 * (ROUNDS + 1) * (SECONDS + WARMUP) + 60) * 1000;

const BODY = '{"ok":true,"items":[1,2,3],"n":"abcdef"}'; // 40 bytes

// ---------------------------------------------------------------------------------------------
// Processes and clean-up: every child is tracked and killed by its pid; the temp dir is removed.

const children = new Set();
const tmp = mkdtempSync(path.join(tmpdir(), 'gatehouse-bench-'));
let cleanedUp = false;

function track(child) {
  children.add(child);
  child.once('exit', () => children.delete(child));
  return child;
}

function killChildren(signal = 'SIGTERM') {
  for (const c of children) {
    try {
      process.kill(c.pid, signal);
    } catch {}
  }
}

async function stopChild(child, ms = 2000) {
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  try {
    process.kill(child.pid, 'SIGTERM');
  } catch {}
  const t = setTimeout(() => {
    try {
      process.kill(child.pid, 'SIGKILL');
    } catch {}
  }, ms);
  await exited;
  clearTimeout(t);
}

function cleanupSync() {
  if (cleanedUp) return;
  cleanedUp = true;
  killChildren('SIGKILL');
  if (KEEP) console.error(`kept ${tmp}`);
  else rmSync(tmp, { recursive: true, force: true });
}
process.once('exit', cleanupSync);
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.once(sig, () => {
    console.error(`\n${sig}: stopping`);
    cleanupSync();
    process.exit(130);
  });
}
const hardLimit = setTimeout(() => {
  console.error(`bench: over its time bound (${Math.round(HARD_LIMIT_MS / 1000)} s), stopping`);
  cleanupSync();
  process.exit(2);
}, HARD_LIMIT_MS);
hardLimit.unref();

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function which(cmd) {
  const r = spawnSync('sh', ['-c', `command -v ${cmd}`], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : null;
}

/** Free loopback ports (held open together so they differ, then released). */
async function freePorts(n) {
  const servers = [];
  for (let i = 0; i < n; i++) {
    const s = net.createServer();
    await new Promise((r, j) => s.once('error', j).listen(0, '127.0.0.1', r));
    servers.push(s);
  }
  const ports = servers.map((s) => s.address().port);
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  return ports;
}

/** CPU time of every core, busy (not idle or iowait), in microseconds. */
function machineBusyMicros() {
  const f = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
  const [user, nice, system, , , irq, softirq, steal] = f;
  return ((user + nice + system + irq + softirq + (steal || 0)) * 1e6) / CLK_TCK;
}

/** This process plus its children already reaped (the wrk runs), in microseconds. */
function selfAndReapedMicros() {
  const stat = readFileSync('/proc/self/stat', 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return ((Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14])) * 1e6) / CLK_TCK;
}

/** utime + stime of a process (all its threads), in microseconds. */
const CLK_TCK = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout.trim()) || 100;
function cpuMicros(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((Number(f[11]) + Number(f[12])) * 1e6) / CLK_TCK; // fields 14 and 15
  } catch {
    return NaN;
  }
}

// ---------------------------------------------------------------------------------------------
// Keys and the token (the same token goes to Gatehouse and to the peer)

function b64urlJson(obj) {
  return Buffer.from(JSON.stringify(obj), 'utf8').toString('base64url');
}

function signingKey() {
  const { privateKey } = generateKeyPairSync('ed25519');
  const jwk = privateKey.export({ format: 'jwk' });
  const publicJwk = { crv: jwk.crv, kty: jwk.kty, x: jwk.x };
  // RFC 7638 thumbprint, as Gatehouse computes its kid.
  const kid = createHash('sha256').update(JSON.stringify(publicJwk), 'utf8').digest('base64url');
  return { d: jwk.d, publicJwk, kid, privateKey };
}

async function edSign(header, payload, privateKey) {
  const { sign } = await import('node:crypto');
  const input = `${b64urlJson(header)}.${b64urlJson(payload)}`;
  return `${input}.${sign(null, Buffer.from(input, 'ascii'), privateKey).toString('base64url')}`;
}

// ---------------------------------------------------------------------------------------------
// wrangler.toml: compatibility date and flags, [vars]

async function wranglerConfig() {
  const { parse } = await import('smol-toml');
  const t = parse(readFileSync(path.join(ROOT, 'wrangler.toml'), 'utf8'));
  if (!t.compatibility_date) throw new Error('wrangler.toml has no compatibility_date');
  return {
    compatibilityDate: t.compatibility_date,
    compatibilityFlags: t.compatibility_flags ?? [],
    vars: t.vars ?? {},
  };
}

// ---------------------------------------------------------------------------------------------
// The build: copied into the temp dir once it has been quiet for 2 s, so a rebuild by someone
// else while the bench runs cannot mix two builds.

const BUILD = path.join(ROOT, 'build');
const BUILD_FILES = ['worker/shim.mjs', 'index.js', 'index_bg.wasm'];

async function snapshotBuild(dest) {
  for (let attempt = 1; attempt <= 30; attempt++) {
    const before = BUILD_FILES.map((f) => {
      const p = path.join(BUILD, f);
      if (!existsSync(p)) return null;
      const s = statSync(p);
      return `${s.size}:${s.mtimeMs}`;
    });
    const newest = Math.max(...BUILD_FILES.map((f) => (existsSync(path.join(BUILD, f)) ? statSync(path.join(BUILD, f)).mtimeMs : Infinity)));
    if (before.includes(null) || Date.now() - newest < 2000) {
      if (attempt === 1) console.error('build/ is missing or being written; waiting for it (bash scripts/build.sh builds it)');
      await sleep(1000);
      continue;
    }
    mkdirSync(path.join(dest, 'worker'), { recursive: true });
    for (const f of BUILD_FILES) copyFileSync(path.join(BUILD, f), path.join(dest, f));
    const after = BUILD_FILES.map((f) => {
      const s = statSync(path.join(BUILD, f));
      return `${s.size}:${s.mtimeMs}`;
    });
    if (after.join() !== before.join()) continue;
    // (Node's V8 may not know every wasm feature workerd's does, so only the header is checked
    // here; a build that workerd refuses is retried by the caller.)
    const head = readFileSync(path.join(dest, 'index_bg.wasm')).subarray(0, 4);
    if (!head.equals(Buffer.from([0, 0x61, 0x73, 0x6d]))) {
      await sleep(1000);
      continue;
    }
    return;
  }
  throw new Error('build/worker/shim.mjs, build/index.js and build/index_bg.wasm never became stable: build first');
}

// ---------------------------------------------------------------------------------------------
// The upstream: nginx (one process), else a Node http server

async function startUpstream(port) {
  const nginx = which('nginx') ?? (existsSync('/usr/sbin/nginx') ? '/usr/sbin/nginx' : null);
  if (!nginx) {
    const server = http.createServer((req, res) => {
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': BODY.length });
      res.end(BODY);
    });
    server.keepAliveTimeout = 75_000;
    await new Promise((r) => server.listen(port, '127.0.0.1', r));
    return { kind: 'Node http server (nginx not found)', pid: process.pid, stop: () => new Promise((r) => server.close(r)) };
  }
  const dir = path.join(tmp, 'nginx');
  mkdirSync(dir, { recursive: true });
  const conf = path.join(dir, 'nginx.conf');
  writeFileSync(
    conf,
    `daemon off;
master_process off;
worker_processes 1;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  keepalive_requests 10000000;
  keepalive_timeout 75s;
  client_body_temp_path ${dir}/body;
  server {
    listen 127.0.0.1:${port};
    location / {
      default_type application/json;
      return 200 '${BODY}';
    }
  }
}
`,
  );
  const child = track(spawn(nginx, ['-p', dir, '-c', conf, '-e', `${dir}/error.log`], { stdio: ['ignore', 'ignore', 'pipe'] }));
  let err = '';
  child.stderr.on('data', (d) => (err += d));
  await waitFor(`http://127.0.0.1:${port}/`, (r) => r.status === 200, 10_000, child, () => err + readIf(`${dir}/error.log`));
  const version = spawnSync(nginx, ['-v'], { encoding: 'utf8' }).stderr.trim().replace(/^nginx version: /, '');
  return { kind: `nginx (${version}, one process)`, pid: child.pid, stop: () => stopChild(child) };
}

function readIf(p) {
  try {
    return readFileSync(p, 'utf8');
  } catch {
    return '';
  }
}

async function waitFor(url, ok, ms, child, why, init) {
  const until = Date.now() + ms;
  let last = 'no answer';
  while (Date.now() < until) {
    if (child && (child.exitCode !== null || child.signalCode !== null)) {
      throw new Error(`exited (${child.exitCode ?? child.signalCode}) before ${url} answered:\n${why?.() ?? ''}`);
    }
    try {
      const r = await fetch(url, { ...init, signal: AbortSignal.timeout(2000) });
      const text = await r.text();
      if (ok(r, text)) return { status: r.status, text };
      last = `${r.status} ${text.slice(0, 300)}`;
    } catch (e) {
      last = e.cause?.code ?? e.message;
    }
    await sleep(50);
  }
  throw new Error(`${url} did not answer as expected within ${ms} ms (last: ${last})\n${why?.() ?? ''}`);
}

// ---------------------------------------------------------------------------------------------
// The workerd config

const capStr = (s) => {
  if (!/^[\x20-\x7e]*$/.test(s)) throw new Error(`not printable ASCII: ${s.slice(0, 40)}`);
  return JSON.stringify(s); // "…" with \" and \\ escapes: valid Cap'n Proto text
};

const constName = (w) => `worker${w.id[0].toUpperCase()}${w.id.slice(1)}`; // capnp wants camelCase

function workerdConfig({ workers, sockets }) {
  const services = workers.map((w) => `    (name = ${capStr(w.name)}, worker = .${constName(w)}),`);
  services.push('    (name = "net", network = (allow = ["public", "private", "local"])),');
  const socks = sockets.map((s) => `    (name = ${capStr(s.service)}, address = ${capStr(`127.0.0.1:${s.port}`)}, http = (), service = ${capStr(s.service)}),`);
  const defs = workers.map((w) => {
    const modules = w.modules.map((m) => `    (name = ${capStr(m.name)}, ${m.type} = embed ${capStr(m.file)}),`);
    const bindings = w.bindings.map((b) => {
      if (b.text !== undefined) return `    (name = ${capStr(b.name)}, text = ${capStr(b.text)}),`;
      if (b.json !== undefined) return `    (name = ${capStr(b.name)}, json = ${capStr(JSON.stringify(b.json))}),`;
      if (b.d1) {
        return `    (name = ${capStr(b.name)}, wrapped = (moduleName = "cloudflare-internal:d1-api", innerBindings = [(name = "fetcher", service = ${capStr(b.d1)})])),`;
      }
      throw new Error(`binding ${b.name}: unknown kind`);
    });
    return `const ${constName(w)} :Workerd.Worker = (
  modules = [
${modules.join('\n')}
  ],
  compatibilityDate = ${capStr(w.compatibilityDate)},
  compatibilityFlags = [${w.compatibilityFlags.map(capStr).join(', ')}],
  bindings = [
${bindings.join('\n')}
  ],
  globalOutbound = "net",
);`;
  });
  return `using Workerd = import "/workerd/workerd.capnp";

const config :Workerd.Config = (
  services = [
${services.join('\n')}
  ],
  sockets = [
${socks.join('\n')}
  ],
);

${defs.join('\n\n')}
`;
}

let workerdStarts = 0;

async function startWorkerd(dir, configText, checks, extraArgs = []) {
  const file = path.join(dir, 'config.capnp');
  writeFileSync(file, configText);
  // The worker's console goes to a file (not into this process's memory).
  const logFile = path.join(dir, `workerd-${++workerdStarts}.log`);
  const fd = openSync(logFile, 'w');
  const t0 = performance.now();
  const child = track(spawn(WORKERD, ['serve', file, ...extraArgs], { cwd: dir, stdio: ['ignore', fd, fd] }));
  closeSync(fd);
  const tail = (n = 4000) => {
    const t = readIf(logFile);
    return t.slice(-n);
  };
  const why = () => tail();
  try {
    for (const c of checks) await waitFor(c.url, c.ok, 20_000, child, why, c.init);
  } catch (e) {
    await stopChild(child);
    throw e;
  }
  return { child, pid: child.pid, readyMs: performance.now() - t0, logFile, log: tail, stop: () => stopChild(child) };
}

// ---------------------------------------------------------------------------------------------
// wrk

const LUA = path.join(HERE, 'wrk-report.lua');

function runWrk(url, headers, seconds, bodyFile) {
  const args = [`-t${THREADS}`, `-c${CONNECTIONS}`, `-d${seconds}s`, '--timeout', '5s', '-s', LUA];
  // With a body file, wrk-report.lua makes every request a POST of that JSON.
  const env = bodyFile ? { ...process.env, BENCH_BODY_FILE: bodyFile } : process.env;
  for (const [k, v] of Object.entries(headers)) args.push('-H', `${k}: ${v}`);
  args.push(url);
  return new Promise((resolve, reject) => {
    const child = track(spawn('wrk', args, { stdio: ['ignore', 'pipe', 'pipe'], env }));
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    const t = setTimeout(() => {
      try {
        process.kill(child.pid, 'SIGKILL');
      } catch {}
    }, (seconds + 15) * 1000);
    child.on('error', reject);
    child.on('exit', (code) => {
      clearTimeout(t);
      const m = /^WRK_JSON (.*)$/m.exec(out);
      if (code !== 0 || !m) return reject(new Error(`wrk ${args.join(' ')} failed (${code}):\n${out}`));
      const j = JSON.parse(m[1]);
      j.rps = j.requests / (j.duration_us / 1e6);
      j.errors = j.connect + j.read + j.write + j.timeout;
      resolve(j);
    });
  });
}

// ---------------------------------------------------------------------------------------------
// --profile: V8's sampling profiler through workerd's inspector

async function inspectorSession(url) {
  const WS = globalThis.WebSocket ?? require('ws'); // Node 20 has no global WebSocket by default
  const ws = new WS(url);
  await new Promise((resolve, reject) => {
    ws.onopen = resolve;
    ws.onerror = (e) => reject(new Error(`inspector ${url}: ${e.message ?? 'connection failed'}`));
  });
  let next = 1;
  const pending = new Map();
  ws.onmessage = (ev) => {
    const msg = JSON.parse(typeof ev.data === 'string' ? ev.data : String(ev.data));
    const p = msg.id && pending.get(msg.id);
    if (!p) return;
    pending.delete(msg.id);
    if (msg.error) p.reject(new Error(`${p.method}: ${JSON.stringify(msg.error)}`));
    else p.resolve(msg.result);
  };
  return {
    send: (method, params = {}) =>
      new Promise((resolve, reject) => {
        const id = next++;
        pending.set(id, { resolve, reject, method });
        ws.send(JSON.stringify({ id, method, params }));
      }),
    close: () => ws.close(),
  };
}

async function profileCase(c, inspector) {
  const s = await inspectorSession(`ws://${inspector}/${c.service}`);
  await runWrk(c.url, c.headers, WARMUP, c.bodyFile);
  await s.send('Profiler.enable');
  await s.send('Profiler.setSamplingInterval', { interval: 100 }); // µs
  await s.send('Profiler.start');
  const r = await runWrk(c.url, c.headers, SECONDS, c.bodyFile);
  const { profile } = await s.send('Profiler.stop');
  s.close();
  const file = path.resolve(argValue('profile-out') ?? path.join(tmpdir(), `gatehouse-bench-${c.id}.cpuprofile`));
  writeFileSync(file, JSON.stringify(profile));

  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const self = new Map();
  profile.samples.forEach((id, i) => self.set(id, (self.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0)));
  const kind = (f) => {
    if (/^\(.*\)$/.test(f.functionName)) return f.functionName; // (idle), (program), (garbage collector)
    if (f.url.startsWith('wasm://') || /^\$|wasm-function/.test(f.functionName)) return 'wasm';
    if (f.url) return `JS ${path.basename(f.url)}`;
    return 'runtime builtins (native)';
  };
  const fn = new Map();
  const kinds = new Map();
  let total = 0;
  for (const [id, us] of self) {
    const f = byId.get(id).callFrame;
    const k = kind(f);
    kinds.set(k, (kinds.get(k) ?? 0) + us);
    const name = `${f.functionName || '(anonymous)'}  [${k}${f.url && !f.url.startsWith('wasm://') ? `:${f.lineNumber + 1}` : ''}]`;
    fn.set(name, (fn.get(name) ?? 0) + us);
    total += us;
  }
  const busy = total - (kinds.get('(idle)') ?? 0);
  const perReq = (us) => (us / r.requests).toFixed(1);
  console.log(`\nCPU profile of ${c.label} (${c.service} isolate), ${Math.round(r.rps)} req/s during it, ${r.requests} requests`);
  console.log(`written to ${file} (open in Chrome DevTools or speedscope)\n`);
  console.log('| where (self time) | % of busy | µs/request |');
  console.log('|---|---|---|');
  for (const [k, us] of [...kinds].sort((a, b) => b[1] - a[1])) {
    if (k !== '(idle)') console.log(`| ${k} | ${((100 * us) / busy).toFixed(1)} | ${perReq(us)} |`);
  }
  console.log('\n| top functions (self time) | % of busy | µs/request |');
  console.log('|---|---|---|');
  for (const [name, us] of [...fn].filter(([n]) => !n.startsWith('(idle)')).sort((a, b) => b[1] - a[1]).slice(0, 30)) {
    console.log(`| ${name.replace(/\|/g, '\\|')} | ${((100 * us) / busy).toFixed(1)} | ${perReq(us)} |`);
  }
}

const median = (xs) => {
  const s = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (!s.length) return NaN;
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

// ---------------------------------------------------------------------------------------------
// Main

async function main() {
  if (!which('wrk')) throw new Error('wrk not found: apt-get install wrk');
  const wc = await wranglerConfig();
  const key = signingKey();
  const now = Math.floor(Date.now() / 1000);
  const token = await edSign(
    { alg: 'EdDSA', typ: 'JWT', kid: key.kid },
    { iss: 'gatehouse', aud: 'gatehouse', sub: 'usr_bench', jti: 'bench', roles: ['user'], sid: 'fam_bench', iat: now, exp: now + 3600 },
    key.privateKey,
  );
  const bearer = { authorization: `Bearer ${token}` };
  // An API key of usr_bench for the members route; the D1 stand-in answers its lookup by hash.
  const apiKey = `gk_${'bench'.repeat(11).slice(0, 52)}`;
  const apiKeyPepper = randomBytes(32).toString('base64url');
  const apiKeyHash = createHmac('sha256', apiKeyPepper).update(apiKey).digest('hex');
  const keyed = { authorization: `Bearer ${apiKey}` };
  // The write cases' body: 2 KiB of JSON (wrk-report.lua sends it as application/json).
  const writeBody = JSON.stringify({ data: { title: 'A post', body: 'x'.repeat(2048 - 41) } });
  const bodyFile = path.join(tmp, 'write-body.json');
  writeFileSync(bodyFile, writeBody);
  const json = { 'content-type': 'application/json' };
  // The login and refresh probes: the bench user's password, stored as Gatehouse stores it
  // (PBKDF2-SHA256 with the configured iterations), and a refresh token of session fam_bench.
  const benchPassword = 'bench-password-correct-horse';
  const iterations = Number(wc.vars.PBKDF2_ITERATIONS ?? 100000);
  const salt = randomBytes(16);
  const b64 = (b) => b.toString('base64').replace(/=+$/, '');
  const passwordPhc = `$pbkdf2-sha256$i=${iterations},l=32$${b64(salt)}$${b64(pbkdf2Sync(benchPassword, salt, iterations, 32, 'sha256'))}`;
  const refreshToken = `ghr_${randomBytes(32).toString('base64url')}`;
  const refreshHash = createHash('sha256').update(refreshToken).digest('hex');

  const [upPort, ghPort, barePort, peerPort, d1Port, pbkdf2Port, inspectorPort] = await freePorts(7);
  const up = await startUpstream(upPort);
  const UP = `http://127.0.0.1:${upPort}`;

  // The peer, bundled the way a Workers project would ship it.
  const peerOut = path.join(tmp, 'peer', 'peer.mjs');
  await esbuild({
    entryPoints: [path.join(HERE, 'workers', 'peer.mjs')],
    outfile: peerOut,
    bundle: true,
    minify: true,
    format: 'esm',
    platform: 'neutral',
    target: 'es2022',
    conditions: ['workerd', 'worker', 'browser'],
    mainFields: ['module', 'main'],
    logLevel: 'error',
  });
  mkdirSync(path.join(tmp, 'js'), { recursive: true });
  copyFileSync(path.join(HERE, 'workers', 'bare.mjs'), path.join(tmp, 'js', 'bare.mjs'));
  copyFileSync(path.join(HERE, 'workers', 'd1-counter.mjs'), path.join(tmp, 'js', 'd1-counter.mjs'));
  copyFileSync(path.join(HERE, 'workers', 'pbkdf2.mjs'), path.join(tmp, 'js', 'pbkdf2.mjs'));

  const ROUTES = {
    // forward_all, anyone: the cheapest proxied path.
    cms: { prefix: '/cms/', upstream: `${UP}/`, forward_all: true, inject: { header: 'api-key', value: '{secret}' }, read: { roles: ['anonymous'], secret: 'CMS_READ_KEY' } },
    // forward_all, signed-in users only: the Bearer case.
    members: { prefix: '/members/', upstream: `${UP}/`, forward_all: true, inject: { header: 'api-key', value: '{secret}' }, read: { roles: ['user'], secret: 'CMS_READ_KEY' } },
    // endpoint policy: only GET items is forwarded.
    api: { prefix: '/api/', upstream: `${UP}/`, inject: { header: 'api-key', value: '{secret}' }, endpoints: [{ method: 'GET', path: 'items', roles: ['anonymous'], secret: 'CMS_READ_KEY' }] },
    // an owner-bound create: only the listed fields, the author always the caller.
    posts: {
      prefix: '/posts/', upstream: `${UP}/`, inject: { header: 'api-key', value: '{secret}' },
      endpoints: [{ method: 'POST', path: 'content/item/{model}', values: { model: ['posts'] }, action: 'create', fields: ['data.title', 'data.body'], owner: 'data.author', roles: ['user'], secret: 'CMS_WRITE_KEY' }],
    },
  };
  const ghVars = {
    ...Object.fromEntries(Object.entries(wc.vars).filter(([, v]) => typeof v !== 'object').map(([k, v]) => [k, String(v)])),
    JWT_SIGNING_KEY: key.d,
    UPSTREAM_SIGNING_SECRET: randomBytes(32).toString('base64url'),
    API_KEY_PEPPER: apiKeyPepper,
    CMS_READ_KEY: 'bench-read-key',
    CMS_WRITE_KEY: 'bench-write-key',
  };
  const compat = { compatibilityDate: wc.compatibilityDate, compatibilityFlags: wc.compatibilityFlags };
  const jsCompat = { compatibilityDate: wc.compatibilityDate, compatibilityFlags: [] };
  const W = {
    gatehouse: {
      id: 'gatehouse',
      name: 'gatehouse',
      ...compat,
      modules: [
        { name: 'worker/shim.mjs', type: 'esModule', file: 'gatehouse/worker/shim.mjs' },
        { name: 'index.js', type: 'esModule', file: 'gatehouse/index.js' },
        { name: 'index_bg.wasm', type: 'wasm', file: 'gatehouse/index_bg.wasm' },
      ],
      bindings: [
        { name: 'DB', d1: 'd1-counter' },
        ...Object.entries(ghVars).map(([name, text]) => ({ name, text })),
        { name: 'ROUTES', json: ROUTES },
      ],
    },
    bare: { id: 'bare', name: 'bare', ...jsCompat, modules: [{ name: 'bare.mjs', type: 'esModule', file: 'js/bare.mjs' }], bindings: [{ name: 'UP', text: UP }] },
    peer: {
      id: 'peer',
      name: 'peer',
      ...jsCompat,
      modules: [{ name: 'peer.mjs', type: 'esModule', file: 'peer/peer.mjs' }],
      bindings: [
        { name: 'UP', text: UP },
        { name: 'PEER_PUBLIC_JWK', text: JSON.stringify(key.publicJwk) },
        { name: 'PEER_ISSUER', text: 'gatehouse' },
      ],
    },
    d1: {
      id: 'd1',
      name: 'd1-counter',
      ...jsCompat,
      modules: [{ name: 'd1-counter.mjs', type: 'esModule', file: 'js/d1-counter.mjs' }],
      bindings: [
        { name: 'BENCH_KEY_HASH', text: apiKeyHash },
        { name: 'BENCH_PASSWORD_PHC', text: passwordPhc },
        { name: 'BENCH_REFRESH_HASH', text: refreshHash },
      ],
    },
    pbkdf2: {
      id: 'pbkdf2',
      name: 'pbkdf2',
      ...jsCompat,
      modules: [{ name: 'pbkdf2.mjs', type: 'esModule', file: 'js/pbkdf2.mjs' }],
      bindings: [{ name: 'BENCH_PASSWORD_PHC', text: passwordPhc }],
    },
  };

  const GH = `http://127.0.0.1:${ghPort}`;
  const BARE = `http://127.0.0.1:${barePort}`;
  const PEER = `http://127.0.0.1:${peerPort}`;
  const D1 = `http://127.0.0.1:${d1Port}`;
  const PBKDF2 = `http://127.0.0.1:${pbkdf2Port}`;
  const is200Body = (r, t) => r.status === 200 && t === BODY;

  // Start everything; a build caught half-written (or a failed start) is retried from a fresh copy.
  let wd;
  for (let attempt = 1; ; attempt++) {
    rmSync(path.join(tmp, 'gatehouse'), { recursive: true, force: true });
    await snapshotBuild(path.join(tmp, 'gatehouse'));
    try {
      wd = await startWorkerd(
        tmp,
        workerdConfig({
          workers: [W.gatehouse, W.bare, W.peer, W.d1, W.pbkdf2],
          sockets: [
            { service: 'gatehouse', port: ghPort },
            { service: 'bare', port: barePort },
            { service: 'peer', port: peerPort },
            { service: 'd1-counter', port: d1Port },
            { service: 'pbkdf2', port: pbkdf2Port },
          ],
        }),
        [
          { url: `${D1}/__count`, ok: (r) => r.status === 200 },
          { url: `${BARE}/items`, ok: is200Body },
          { url: `${GH}/healthz`, ok: (r) => r.status === 200 },
        ],
        PROFILE ? [`--inspector-addr=127.0.0.1:${inspectorPort}`] : [],
      );
      break;
    } catch (e) {
      if (attempt >= 4) throw e;
      console.error(`workerd did not start (attempt ${attempt}), retrying from a fresh copy of build/:\n${String(e.message).slice(0, 1500)}`);
      await sleep(3000);
    }
  }

  // Each case must answer the upstream's body before it is timed (a fast refusal is no result),
  // and the routes must refuse what they should.
  const first = {};
  const expect = async (label, url, headers, ok, record) => {
    const t0 = performance.now();
    const r = await fetch(url, { headers });
    const text = await r.text();
    if (record) first[record] = performance.now() - t0;
    if (!ok(r, text)) throw new Error(`${label}: ${url} answered ${r.status} ${text.slice(0, 300)}\n${wd.log().slice(-2000)}`);
  };
  await expect('peer with token', `${PEER}/items`, bearer, is200Body, 'peer');
  await expect('gatehouse anonymous', `${GH}/cms/items`, {}, is200Body, 'gatehouse');
  await expect('gatehouse bearer', `${GH}/members/items`, bearer, is200Body);
  await expect('gatehouse endpoint route', `${GH}/api/items`, {}, is200Body);
  await expect('gatehouse API key', `${GH}/members/items`, keyed, is200Body);
  const post = async (label, url, headers) => {
    const r = await fetch(url, { method: 'POST', headers: { ...headers, ...json }, body: writeBody });
    const text = await r.text();
    if (!is200Body(r, text)) throw new Error(`${label}: POST ${url} answered ${r.status} ${text.slice(0, 300)}`);
  };
  await post('bare write', `${BARE}/content/item/posts`, {});
  await post('gatehouse write', `${GH}/posts/content/item/posts`, bearer);
  await expect('peer without token', `${PEER}/items`, {}, (r) => r.status === 401);
  await expect('gatehouse members route without token', `${GH}/members/items`, {}, (r) => r.status === 401 || r.status === 403);
  await expect('gatehouse endpoint route, path not configured', `${GH}/api/other`, {}, (r) => r.status === 404);

  const cases = [
    { id: 'upstream', label: 'upstream alone (no worker)', url: `${UP}/items`, headers: {} },
    { id: 'bare', service: 'bare', label: 'bare pass-through (JS)', url: `${BARE}/items`, headers: {} },
    { id: 'peer', service: 'peer', label: 'Hono + jose peer, Bearer (verify each request)', url: `${PEER}/items`, headers: bearer },
    { id: 'gh-anon', service: 'gatehouse', label: 'Gatehouse, anonymous forward_all route', url: `${GH}/cms/items`, headers: {}, d1: true },
    { id: 'gh-bearer', service: 'gatehouse', label: 'Gatehouse, Bearer token (verify cache warm)', url: `${GH}/members/items`, headers: bearer, d1: true },
    { id: 'gh-endpoint', service: 'gatehouse', label: 'Gatehouse, endpoint-policy route (anonymous)', url: `${GH}/api/items`, headers: {}, d1: true },
    { id: 'gh-apikey', service: 'gatehouse', label: 'Gatehouse, API key (liveness cache warm)', url: `${GH}/members/items`, headers: keyed, d1: true },
    { id: 'bare-write', service: 'bare', label: 'bare pass-through, POST 2 KiB JSON', url: `${BARE}/content/item/posts`, headers: {}, bodyFile },
    { id: 'gh-write', service: 'gatehouse', label: 'Gatehouse, owner-bound create, Bearer, POST 2 KiB JSON', url: `${GH}/posts/content/item/posts`, headers: bearer, bodyFile, d1: true },
  ];

  if (PROFILE) {
    const c = cases.find((x) => x.id === PROFILE && x.service);
    if (!c) throw new Error(`--profile wants one of ${cases.filter((x) => x.service).map((x) => x.id).join(', ')}`);
    await profileCase(c, `127.0.0.1:${inspectorPort}`);
    await wd.stop();
    await up.stop();
    return;
  }

  const d1Count = async () => (await (await fetch(`${D1}/__count`)).json()).calls;
  const d1Reset = async () => (await fetch(`${D1}/__reset`, { method: 'POST' })).text();
  const measure = async (c, seconds) => {
    await d1Reset();
    const pidCpu = c.id === 'upstream' ? NaN : cpuMicros(wd.pid);
    const upCpu = cpuMicros(up.pid);
    const r = await runWrk(c.url, c.headers, seconds, c.bodyFile);
    r.workerdCpu = (cpuMicros(wd.pid) - pidCpu) / r.requests;
    r.upstreamCpu = (cpuMicros(up.pid) - upCpu) / r.requests;
    r.d1 = await d1Count();
    return r;
  };

  const total = cases.length * (WARMUP + ROUNDS * SECONDS);
  console.error(`${spawnSync(WORKERD, ['--version'], { encoding: 'utf8' }).stdout.trim()} ready in ${wd.readyMs.toFixed(0)} ms; upstream: ${up.kind}`);
  console.error(`${cases.length} cases, ${WARMUP} s warm-up each, then ${ROUNDS} interleaved rounds of ${SECONDS} s (about ${Math.round(total / 60 * 10) / 10} min)`);
  const warm = {};
  for (const c of cases) warm[c.id] = await measure(c, WARMUP);
  // How much of the machine other processes took during the timed rounds.
  const ours = () => selfAndReapedMicros() + cpuMicros(wd.pid) + (up.pid === process.pid ? 0 : cpuMicros(up.pid));
  const t0 = { wall: performance.now(), busy: machineBusyMicros(), ours: ours() };
  const results = Object.fromEntries(cases.map((c) => [c.id, []]));
  for (let round = 1; round <= ROUNDS; round++) {
    for (const c of cases) {
      const r = await measure(c, SECONDS);
      results[c.id].push(r);
      process.stderr.write(`  round ${round}: ${c.id.padEnd(12)} ${Math.round(r.rps).toString().padStart(6)} req/s  p50 ${(r.p50_us / 1000).toFixed(2)} ms\n`);
    }
  }

  // The first sight of a token in an isolate (one Ed25519 check, then the verify cache) against
  // a token seen before: sequential requests on one connection, alternating, medians.
  const FIRST_N = 300;
  const timeOne = async (headers) => {
    const start = performance.now();
    const r = await fetch(`${GH}/members/items`, { headers });
    const text = await r.text();
    if (!is200Body(r, text)) throw new Error(`first-token probe answered ${r.status} ${text.slice(0, 200)}`);
    return performance.now() - start;
  };
  const seenMs = [];
  const freshMs = [];
  for (let i = 0; i < FIRST_N; i++) {
    const fresh = await edSign(
      { alg: 'EdDSA', typ: 'JWT', kid: key.kid },
      { iss: 'gatehouse', aud: 'gatehouse', sub: 'usr_bench', jti: `first-${i}`, roles: ['user'], sid: 'fam_bench', iat: now, exp: now + 3600 },
      key.privateKey,
    );
    seenMs.push(await timeOne(bearer));
    freshMs.push(await timeOne({ authorization: `Bearer ${fresh}` }));
  }
  const firstToken = { seen: median(seenMs), fresh: median(freshMs) };

  // Login against its PBKDF2 alone (the same iterations and salt, through WebCrypto in a JS
  // worker), and refresh: sequential requests, alternating, medians; D1 calls counted.
  const timePost = async (url, body, want) => {
    const start = performance.now();
    const r = await fetch(url, { method: 'POST', headers: json, body: JSON.stringify(body) });
    const text = await r.text();
    if (r.status !== want) throw new Error(`POST ${url} answered ${r.status} ${text.slice(0, 300)}`);
    return { ms: performance.now() - start, body: text };
  };
  const LOGIN_N = 15;
  const loginMs = [];
  const pbkdf2Ms = [];
  await d1Reset();
  for (let i = 0; i < LOGIN_N; i++) {
    const login = await timePost(`${GH}/auth/login`, { email: 'bench@example.com', password: benchPassword, refresh_token_in_body: true }, 200);
    if (!JSON.parse(login.body).refresh_token) throw new Error(`login answered no refresh token: ${login.body.slice(0, 300)}`);
    loginMs.push(login.ms);
    pbkdf2Ms.push((await timePost(PBKDF2, { password: benchPassword }, 200)).ms);
  }
  const loginCalls = (await d1Count()) / LOGIN_N;
  const REFRESH_N = 200;
  const refreshMs = [];
  await d1Reset();
  for (let i = 0; i < REFRESH_N; i++) {
    const r = await timePost(`${GH}/auth/refresh`, { refresh_token: refreshToken }, 200);
    if (!JSON.parse(r.body).refresh_token) throw new Error(`refresh answered no refresh token: ${r.body.slice(0, 300)}`);
    refreshMs.push(r.ms);
  }
  const refreshCalls = (await d1Count()) / REFRESH_N;
  const auth = { login: median(loginMs), pbkdf2: median(pbkdf2Ms), loginCalls, refresh: median(refreshMs), refreshCalls };

  // Isolate start: workerd with one worker only, time from spawn to its first 200.
  let startup = null;
  if (STARTUP) {
    startup = {};
    const [p] = await freePorts(1);
    const only = {
      bare: { w: W.bare, url: `http://127.0.0.1:${p}/items`, headers: {} },
      gatehouse: { w: W.gatehouse, url: `http://127.0.0.1:${p}/cms/items`, headers: {} },
    };
    for (let i = 0; i < 3; i++) {
      for (const [name, o] of Object.entries(only)) {
        const workers = name === 'gatehouse' ? [o.w, W.d1] : [o.w];
        const s = await startWorkerd(
          tmp,
          workerdConfig({ workers, sockets: [{ service: o.w.name, port: p }] }),
          [{ url: o.url, ok: is200Body }],
        );
        (startup[name] ??= []).push(s.readyMs);
        await s.stop();
      }
    }
  }

  const cores = availableParallelism();
  const otherShare = (machineBusyMicros() - t0.busy - (ours() - t0.ours)) / ((performance.now() - t0.wall) * 1000 * cores);
  await wd.stop();
  await up.stop();
  const workerLog = readIf(wd.logFile);

  // -------------------------------------------------------------------------------------------
  // Report

  const wasm = readFileSync(path.join(tmp, 'gatehouse', 'index_bg.wasm'));
  const js = readFileSync(path.join(tmp, 'gatehouse', 'index.js'));
  const peerJs = readFileSync(peerOut);
  const kb = (n) => `${(n / 1000).toFixed(1)} KB`;
  const med = (id, f) => median(results[id].map(f));
  const rps = (id) => med(id, (r) => r.rps);
  const p50 = (id) => med(id, (r) => r.p50_us) / 1000;
  const p99 = (id) => med(id, (r) => r.p99_us) / 1000;
  const fmtInt = (n) => Math.round(n).toLocaleString('en-US');
  const ratio = (a, b) => (Number.isFinite(a / b) ? (a / b).toFixed(2) : '–');

  const lines = [];
  const out = (s = '') => lines.push(s);
  out();
  out(`Proxied GET, workerd ${require('workerd').version} started directly from one capnp config; upstream ${up.kind}`);
  out(`answering a ${BODY.length}-byte JSON; wrk -t${THREADS} -c${CONNECTIONS}, ${ROUNDS} interleaved rounds of ${SECONDS} s after a ${WARMUP} s warm-up, medians`);
  out();
  out('| case | req/s | rounds (req/s) | p50 ms | p99 ms | × bare | × peer | p50 ÷ bare | workerd CPU µs/req | D1 calls | non-2xx/errors |');
  out('|---|---|---|---|---|---|---|---|---|---|---|');
  for (const c of cases) {
    const rs = results[c.id];
    const d1 = c.d1 ? `${rs.reduce((a, r) => a + r.d1, 0)} (warm-up ${warm[c.id].d1})` : '–';
    const bad = rs.reduce((a, r) => a + r.status + r.errors, 0);
    const isWorker = c.id !== 'upstream';
    out(
      `| ${c.label} | ${fmtInt(rps(c.id))} | ${rs.map((r) => fmtInt(r.rps)).join(' · ')} | ${p50(c.id).toFixed(2)} | ${p99(c.id).toFixed(2)} | ` +
        `${isWorker ? ratio(rps(c.id), rps('bare')) : '–'} | ${isWorker ? ratio(rps(c.id), rps('peer')) : '–'} | ${isWorker ? ratio(p50(c.id), p50('bare')) : '–'} | ` +
        `${isWorker ? fmtInt(med(c.id, (r) => r.workerdCpu)) : '–'} | ${d1} | ${bad} |`,
    );
  }
  out();
  const gz = gzipSync(wasm, { level: 9 }).length;
  out(`Production wasm: ${wasm.length.toLocaleString('en-US')} bytes (${kb(wasm.length)}), ${gz.toLocaleString('en-US')} bytes gzipped -9 (${kb(gz)}); ` +
    `index.js ${kb(js.length)}. Peer bundle (Hono + jose, minified): ${kb(peerJs.length)}, ${kb(gzipSync(peerJs, { level: 9 }).length)} gzipped.`);
  out(`Upstream CPU per request (median over the bare rounds): ${fmtInt(med('bare', (r) => r.upstreamCpu))} µs. ` +
    `First request after workerd start: peer ${first.peer.toFixed(1)} ms, Gatehouse ${first.gatehouse.toFixed(1)} ms.`);
  out(`First sight of a token (${FIRST_N} sequential requests each, alternating, medians): a token seen before ` +
    `${firstToken.seen.toFixed(3)} ms, a new one ${firstToken.fresh.toFixed(3)} ms (+${(firstToken.fresh - firstToken.seen).toFixed(3)} ms).`);
  if (startup) {
    out(`Start (workerd with that worker alone, spawn → first 200, median of 3): bare ${median(startup.bare).toFixed(0)} ms, ` +
      `Gatehouse ${median(startup.gatehouse).toFixed(0)} ms (+${(median(startup.gatehouse) - median(startup.bare)).toFixed(0)} ms).`);
  }
  out(`Login (${LOGIN_N} sequential, alternating with the PBKDF2 alone, ${iterations} iterations, medians): ` +
    `login ${auth.login.toFixed(2)} ms, its PBKDF2 alone ${auth.pbkdf2.toFixed(2)} ms; ${auth.loginCalls} D1 calls per login (the D1 stand-in answers at once). ` +
    `Refresh (${REFRESH_N} sequential): ${auth.refresh.toFixed(3)} ms, ${auth.refreshCalls} D1 calls per refresh.`);
  const cpu = (id) => med(id, (r) => r.workerdCpu);
  out(`workerd CPU per request ÷ bare's (moves less than req/s when the machine is busy): peer ${ratio(cpu('peer'), cpu('bare'))}, ` +
    `Gatehouse anonymous ${ratio(cpu('gh-anon'), cpu('bare'))}, Bearer ${ratio(cpu('gh-bearer'), cpu('bare'))}, endpoint route ${ratio(cpu('gh-endpoint'), cpu('bare'))}, API key ${ratio(cpu('gh-apikey'), cpu('bare'))}.`);
  out(`Machine: ${cores} cores; processes other than the bench's used ${(100 * Math.max(0, otherShare)).toFixed(0)}% of their time during the timed rounds` +
    (otherShare > 0.1 ? ' (not a quiet machine: the req/s ratios are noisy, the CPU per request less so)' : '') + '.');
  const logLines = workerLog.split('\n').filter(Boolean).length;
  if (logLines) out(`workerd printed ${logLines} log lines during the run (console output costs too); last: ${workerLog.trim().split('\n').pop().slice(0, 200)}`);
  out();
  out('Speed targets measured here (ratio: target):');
  const tgt = (label, v, goal, ok) => out(`- ${label}: ${Number.isFinite(v) ? v.toFixed(2) : '–'} (${goal}) ${ok ? 'met' : 'NOT met'}`);
  for (const id of ['gh-bearer', 'gh-anon']) {
    const name = id === 'gh-bearer' ? 'Bearer' : 'anonymous';
    tgt(`${name} × bare`, rps(id) / rps('bare'), '≥ 0.85', rps(id) / rps('bare') >= 0.85);
    tgt(`${name} × peer`, rps(id) / rps('peer'), '≥ 1.6', rps(id) / rps('peer') >= 1.6);
    tgt(`${name} p50 ÷ bare p50`, p50(id) / p50('bare'), '≤ 1.15', p50(id) / p50('bare') <= 1.15);
  }
  tgt('API key × bare', rps('gh-apikey') / rps('bare'), '≥ 0.6', rps('gh-apikey') / rps('bare') >= 0.6);
  tgt('2 KiB owner-bound write × bare write', rps('gh-write') / rps('bare-write'), '≥ 0.7', rps('gh-write') / rps('bare-write') >= 0.7);
  tgt('first token seen by an isolate, ms extra', firstToken.fresh - firstToken.seen, '≤ 0.5', firstToken.fresh - firstToken.seen <= 0.5);
  tgt('login ÷ its PBKDF2 alone', auth.login / auth.pbkdf2, '≤ 1.1', auth.login / auth.pbkdf2 <= 1.1);
  tgt('D1 round trips per refresh', auth.refreshCalls, '= 1', auth.refreshCalls === 1);
  tgt('wasm gzipped, KB', gz / 1000, '≤ 250', gz / 1000 <= 250);
  if (startup) {
    const extra = median(startup.gatehouse) - median(startup.bare);
    tgt('start, ms over bare', extra, '≤ 20', extra <= 20);
  }
  const d1Total = ['gh-anon', 'gh-endpoint'].reduce((a, id) => a + results[id].reduce((b, r) => b + r.d1, 0), 0);
  out(`- D1 calls on the anonymous proxied GETs after warm-up: ${d1Total} (0) ${d1Total === 0 ? 'met' : 'NOT met'}`);
  // The Bearer case reads its session when the isolate's answer is older than
  // REVOCATION_DELAY_SECONDS (other cases run in between, so at each round's start too), once
  // per connection whose request arrives while that read is under way.
  const delay = Number(ghVars.REVOCATION_DELAY_SECONDS ?? 10);
  const bearerCalls = results['gh-bearer'].reduce((b, r) => b + r.d1, 0);
  const bearerMax = ROUNDS * CONNECTIONS * (1 + Math.ceil(SECONDS / delay));
  out(`- D1 calls on the Bearer GETs after warm-up: ${bearerCalls} (≤ ${bearerMax}: at most one per connection per ${delay} s) ${bearerCalls <= bearerMax ? 'met' : 'NOT met'}`);
  const keyCalls = results['gh-apikey'].reduce((b, r) => b + r.d1, 0);
  out(`- D1 calls on the API-key GETs after warm-up: ${keyCalls} (≤ ${bearerMax}: at most one per connection per ${delay} s) ${keyCalls <= bearerMax ? 'met' : 'NOT met'}`);
  console.log(lines.join('\n'));
}

try {
  await main();
  clearTimeout(hardLimit);
} catch (e) {
  console.error(`bench failed: ${e.stack ?? e}`);
  process.exitCode = 1;
} finally {
  killChildren('SIGTERM');
  await sleep(children.size ? 300 : 0);
  cleanupSync();
}
