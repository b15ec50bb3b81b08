// Throughput of a proxied GET through Gatehouse against a bare pass-through worker, both in
// workerd through the same Miniflare harness, in front of the same local upstream that answers a
// 40-byte JSON. Prints requests/s and latency percentiles; asserts nothing.
//
//   bash scripts/build.sh && node bench/proxy.mjs [--seconds 8] [--connections 4]
//
// Miniflare puts its own entry worker in front of workerd (a trivial worker tops out near 3,100
// requests/s on a 2-core machine), so compare the rows with each other, not with figures taken
// from workerd started directly. The load generator shares the machine's cores too.

import http from 'node:http';
import { randomBytes } from 'node:crypto';
import { Miniflare } from 'miniflare';
import { nowSeconds, signEdDSA } from '../tests/support/jwt.mjs';
import { generateSigningKey, startWorker } from '../tests/support/worker.mjs';

const args = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? Number(args[i + 1]) : dflt;
};
const SECONDS = opt('seconds', 8);
const CONNECTIONS = opt('connections', 4);

const BODY = JSON.stringify({ ok: true, items: [1, 2, 3], n: 'abcdef' }); // 40 bytes
const upstream = http.createServer((req, res) => {
  res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(BODY) });
  res.end(BODY);
});
await new Promise((r) => upstream.listen(0, '127.0.0.1', r));
const UP = `http://127.0.0.1:${upstream.address().port}`;

async function load(url, headers = {}) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: CONNECTIONS });
  const latencies = [];
  let errors = 0;
  const one = () =>
    new Promise((resolve) => {
      const t0 = process.hrtime.bigint();
      const req = http.get(url, { agent, headers }, (res) => {
        res.resume();
        res.on('end', () => {
          if (res.statusCode !== 200) errors += 1;
          latencies.push(Number(process.hrtime.bigint() - t0) / 1e6);
          resolve();
        });
      });
      req.on('error', () => {
        errors += 1;
        resolve();
      });
    });
  const run = async (until) => {
    while (Date.now() < until) await one();
  };
  await Promise.all(Array.from({ length: CONNECTIONS }, () => run(Date.now() + 1000))); // warm-up
  latencies.length = 0;
  errors = 0;
  const start = Date.now();
  await Promise.all(Array.from({ length: CONNECTIONS }, () => run(start + SECONDS * 1000)));
  const elapsed = (Date.now() - start) / 1000;
  agent.destroy();
  latencies.sort((a, b) => a - b);
  const pct = (p) => latencies[Math.min(latencies.length - 1, Math.floor((p / 100) * latencies.length))].toFixed(2);
  return { rps: Math.round(latencies.length / elapsed), p50: pct(50), p99: pct(99), errors };
}

const rows = [];
const bare = new Miniflare({
  modules: true,
  script: `export default { fetch(req, env) { const u = new URL(req.url); return fetch(env.UP + u.pathname + u.search, { method: req.method, headers: req.headers }); } }`,
  bindings: { UP },
  port: 0,
});
const bareUrl = (await bare.ready).href.replace(/\/$/, '');
rows.push(['bare pass-through (JS fetch)', await load(`${bareUrl}/items`)]);
rows.push(['bare pass-through, with an Authorization header', await load(`${bareUrl}/items`, { authorization: `Bearer ${'x'.repeat(400)}` })]);
await bare.dispose();

const key = generateSigningKey();
const w = await startWorker({
  vars: {
    JWT_SIGNING_KEY: key.d,
    UPSTREAM_SIGNING_SECRET: randomBytes(32).toString('base64url'),
    CMS_READ_KEY: 'read-key',
    ROUTES: {
      cms: { prefix: '/cms/', upstream: `${UP}/`, forward_all: true, inject: { header: 'api-key', value: '{secret}' }, read: { roles: ['anonymous'], secret: 'CMS_READ_KEY' } },
      members: { prefix: '/members/', upstream: `${UP}/`, forward_all: true, read: { roles: ['user'], secret: 'CMS_READ_KEY' }, inject: { header: 'api-key' } },
    },
  },
});
const now = nowSeconds();
const token = signEdDSA(
  { alg: 'EdDSA', typ: 'JWT', kid: key.kid },
  { iss: 'gatehouse', aud: 'gatehouse', sub: 'usr_bench', jti: 'j', roles: ['user'], iat: now, exp: now + 3600 },
  key.privateKey,
);
rows.push(['Gatehouse, Bearer token (verify cache hits)', await load(`${w.url}/members/items`, { authorization: `Bearer ${token}` })]);
rows.push(['Gatehouse, anonymous route', await load(`${w.url}/cms/items`)]);
rows.push(['Gatehouse, Bearer token again', await load(`${w.url}/members/items`, { authorization: `Bearer ${token}` })]);
await w.stop();
upstream.close();

console.log(`\nproxied GET, ${CONNECTIONS} connections, ${SECONDS} s after a 1 s warm-up\n`);
console.log('| worker | requests/s | p50 ms | p99 ms | errors |');
console.log('|---|---|---|---|---|');
for (const [name, r] of rows) console.log(`| ${name} | ${r.rps} | ${r.p50} | ${r.p99} | ${r.errors} |`);
