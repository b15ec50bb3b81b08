import { client, openVars, loginUser } from './support/http.mjs';
import { PEPPER, mintKey, userWithRoles } from './support/admin.mjs';
import { generateSigningKey, startWorker } from './support/worker.mjs';

const w = await startWorker({ vars: openVars(generateSigningKey(), { API_KEY_PEPPER: PEPPER, RATE_LIMIT_LOGIN_PER_ACCOUNT: '0' }) });
const c = client(w.url);
const admin = await userWithRoles(w, c, ['admin', 'user']);
const { key } = await mintKey(c, admin.access, { label: 'b', role: 'admin', scopes: [] });
async function time(label, n, fn) {
  for (let i = 0; i < 20; i++) await fn();
  const t = [];
  for (let i = 0; i < n; i++) { const s = performance.now(); const r = await fn(); if (r.status >= 300) throw new Error(r.describe()); t.push(performance.now() - s); }
  t.sort((a, b) => a - b);
  console.log(`${label}: p50 ${t[n >> 1].toFixed(2)} ms, p90 ${t[Math.floor(n * 0.9)].toFixed(2)} ms (n=${n})`);
}
await time('GET /admin/users?limit=1 with access token (user + session re-read)', 300, () => c.get('/admin/users?limit=1', { bearer: admin.access }));
await time('GET /admin/users?limit=1 with API key (key lookup + user re-read)', 300, () => c.get('/admin/users?limit=1', { bearer: key }));
await time('GET /healthz (no D1)', 300, () => c.get('/healthz'));
await time('POST /auth/refresh, refresh limit on (1 read + 1 upsert + rotation batch)', 100, (() => { let tok = admin.refresh; return async () => { const r = await c.post('/auth/refresh', { refresh_token: tok }); tok = r.body.refresh_token; return r; }; })());
await w.stop();
const w2 = await startWorker({ vars: openVars(generateSigningKey(), { RATE_LIMIT_REFRESH_PER_FAMILY: '0' }) });
const c2 = client(w2.url);
const u = await userWithRoles(w2, c2, ['user']);
await time('POST /auth/refresh, refresh limit off', 100, (() => { let tok = u.refresh; return async () => { const r = await c2.post('/auth/refresh', { refresh_token: tok }); tok = r.body.refresh_token; return r; }; })());
await w2.stop();
