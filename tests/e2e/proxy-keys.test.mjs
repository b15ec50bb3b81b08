// API keys on the CMS proxy: a key reaches the routes in its scope (403 scope_violation
// elsewhere), its role decides the rule, its revocation stops the next proxied request (with
// REVOCATION_DELAY_SECONDS=0), and the key itself never reaches the upstream.

import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { after, before, describe, test } from 'node:test';
import { client, expectError, expectStatus, openVars } from '../support/http.mjs';
import { PEPPER, mintKey, userWithRoles } from '../support/admin.mjs';
import { generateSigningKey, startWorker } from '../support/worker.mjs';

describe('API keys on the proxy', () => {
  let w;
  let c;
  let upstream;
  let admin;
  const seen = [];
  before(async () => {
    upstream = createServer((req, res) => {
      seen.push({ url: req.url, headers: req.headers });
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ ok: true, path: req.url }));
    });
    await new Promise((r) => upstream.listen(0, '127.0.0.1', r));
    const base = `http://127.0.0.1:${upstream.address().port}`;
    const routes = {
      cms: { prefix: '/cms/', upstream: `${base}/cms/`, forward_all: true, read: { roles: ['user'] }, write: { roles: ['editor'] } },
      files: { prefix: '/files/', upstream: `${base}/files/`, forward_all: true, read: { roles: ['user'] } },
    };
    w = await startWorker({
      vars: openVars(generateSigningKey(), {
        API_KEY_PEPPER: PEPPER,
        ROUTES: JSON.stringify(routes),
        UPSTREAM_SIGNING_SECRET: 'upstream-signing-secret-0123456789abcdef',
        // Every request reads its key: "the next request" below (revocation.test.mjs covers a delay).
        REVOCATION_DELAY_SECONDS: '0',
      }),
    });
    c = client(w.url);
    admin = await userWithRoles(w, c, ['admin', 'editor', 'user']);
  });
  after(async () => {
    await w?.stop();
    upstream?.close();
  });

  test('in scope passes with the key stripped; out of scope is 403 scope_violation', async () => {
    const { key } = await mintKey(c, admin.access, { label: 'reader', role: 'user', scopes: ['cms'] });
    const ok = await c.get('/cms/items/1', { bearer: key });
    expectStatus(ok, 200);
    assert.equal(ok.body.path, '/cms/items/1');
    const last = seen.at(-1);
    assert.ok(!JSON.stringify(last.headers).includes(key.slice(3)), 'the key reached the upstream');
    const before = seen.length;
    expectError(await c.get('/files/a.txt', { bearer: key }), 403, 'scope_violation');
    assert.equal(seen.length, before, 'an out-of-scope request reached the upstream');
    // Its role is `user`: writing needs `editor`.
    expectError(await c.request('POST', '/cms/items', { json: {}, bearer: key }), 403, 'insufficient_role');
    // An access token has no scope limit.
    expectStatus(await c.get('/files/a.txt', { bearer: admin.access }), 200);
  });

  test('a revoked or expired key stops on the next proxied request', async () => {
    const { key, api_key: view } = await mintKey(c, admin.access, { label: 'writer', role: 'editor', scopes: ['cms'] });
    expectStatus(await c.request('POST', '/cms/items', { json: { a: 1 }, bearer: key }), 200);
    expectStatus(await c.request('DELETE', `/admin/api-keys/${view.id}`, { bearer: admin.access }), 204);
    const before = seen.length;
    expectError(await c.get('/cms/items/1', { bearer: key }), 401, 'invalid_api_key');
    const short = await mintKey(c, admin.access, { label: 'short', role: 'user', scopes: ['cms'], expires_at: Date.now() + 1200 });
    expectStatus(await c.get('/cms/items/2', { bearer: short.key }), 200);
    await new Promise((r) => setTimeout(r, 1400));
    expectError(await c.get('/cms/items/2', { bearer: short.key }), 401, 'invalid_api_key');
    assert.equal(seen.length, before + 1, 'a refused key reached the upstream');
  });
});
