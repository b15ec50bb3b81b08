// Browser mode over HTTP: CSRF on cookie-driven state changes, GET /auth/session, CORS on
// successes, errors (401, 403, 404, 405, 413, 429, 502), preflights and proxied answers, the served JS client.

import assert from 'node:assert/strict';
import http from 'node:http';
import { after, before, describe, test } from 'node:test';
import {
  SITE_ORIGIN,
  awayFromWindowEdge,
  client,
  expectError,
  expectStatus,
  openVars,
  registerUser,
  sha256hex,
} from '../support/http.mjs';
import { generateSigningKey, readWranglerConfig, startWorker } from '../support/worker.mjs';

const EVIL = 'https://evil.example';

function corsHeaders(res) {
  return [...res.headers.keys()].filter((k) => k.startsWith('access-control-'));
}

function expectCors(res, origin = SITE_ORIGIN) {
  assert.equal(res.headers.get('access-control-allow-origin'), origin, res.describe());
  assert.equal(res.headers.get('access-control-allow-credentials'), 'true', res.describe());
  assert.match(res.headers.get('vary') ?? '', /origin/i, res.describe());
}

function expectNoCors(res) {
  assert.deepEqual(corsHeaders(res), [], res.describe());
  assert.match(res.headers.get('vary') ?? '', /origin/i, res.describe());
}

describe('browser mode', () => {
  let w;
  let c;
  let upstream;
  const seen = [];

  before(async () => {
    // A tiny upstream behind a proxied route; it answers with CORS headers of its own (like
    // Cockpit's default `*`), which must not reach the browser.
    upstream = http.createServer((req, res) => {
      seen.push(req.url);
      res.writeHead(200, {
        'content-type': 'application/json',
        'access-control-allow-origin': '*',
        'access-control-allow-credentials': 'true',
      });
      res.end(JSON.stringify([{ _id: '1', title: 'streamed' }]));
    });
    await new Promise((r) => upstream.listen(0, '127.0.0.1', r));
    const probe = http.createServer();
    await new Promise((r) => probe.listen(0, '127.0.0.1', r));
    const closedPort = probe.address().port;
    await new Promise((r) => probe.close(r));
    const routes = {
      cms: {
        prefix: '/cms/',
        upstream: `http://127.0.0.1:${upstream.address().port}/api/`,
        inject: { header: 'api-key', value: '{secret}' },
        forward_all: true,
        read: { roles: ['anonymous'], secret: 'CMS_READ_KEY' },
      },
      // An upstream nobody listens on: the 502 a page must still be able to read.
      down: { prefix: '/down/', upstream: `http://127.0.0.1:${closedPort}/`, forward_all: true, read: { roles: ['anonymous'] } },
    };
    w = await startWorker({
      vars: openVars(generateSigningKey(), {
        MAX_BODY_BYTES: '1024',
        ROUTES: JSON.stringify(routes),
        CMS_READ_KEY: 'read-key-0123456789',
        UPSTREAM_SIGNING_SECRET: 'x'.repeat(40),
      }),
    });
    c = client(w.url);
  });

  after(async () => {
    await w?.stop();
    upstream?.close();
  });

  describe('CSRF on cookie-driven state changes', () => {
    test('refresh and logout by cookie without the CSRF token or from another origin → 403 csrf_validation_failed', async () => {
      const u = await registerUser(c, { inBody: false });
      // The token names its session (the access token's `sid`) and carries its mac.
      assert.match(u.csrf, /^ghc_fam_[a-z2-7]{26}\.[A-Za-z0-9_-]{43}$/);
      const sid = JSON.parse(Buffer.from(u.access.split('.')[1], 'base64url')).sid;
      assert.equal(u.csrf.slice('ghc_'.length, u.csrf.indexOf('.')), sid);
      for (const path of ['/auth/refresh', '/auth/logout']) {
        expectError(await c.request('POST', path, { cookie: u.refresh }), 403, 'csrf_validation_failed');
        expectError(await c.request('POST', path, { cookie: u.refresh, csrf: 'ghc_wrong' }), 403, 'csrf_validation_failed');
        expectError(await c.request('POST', path, { cookie: u.refresh, csrf: u.csrf, origin: EVIL }), 403, 'csrf_validation_failed');
        expectError(await c.request('POST', path, { cookie: u.refresh, csrf: u.csrf, origin: null }), 403, 'csrf_validation_failed');
        expectError(await c.request('POST', path, { cookie: u.refresh, csrf: u.csrf, origin: 'null' }), 403, 'csrf_validation_failed');
      }
      // Another session's token does not fit.
      const other = await registerUser(c, { inBody: false });
      expectError(await c.request('POST', '/auth/refresh', { cookie: u.refresh, csrf: other.csrf }), 403, 'csrf_validation_failed');
      const row = await w.db.prepare('SELECT rotated_at FROM refresh_tokens WHERE token_hash = ?').bind(sha256hex(u.refresh)).first();
      assert.equal(row.rotated_at, null, 'refused requests change nothing');
      const counted = await w.db.prepare('SELECT count(*) AS n FROM rate_limits WHERE key LIKE ?').bind(`refresh_family:${sid}`).first();
      assert.equal(counted.n, 0, 'refused requests count nothing');
      // Same origin as the browser reports it, without Origin: fine.
      const res = await c.request('POST', '/auth/refresh', {
        cookie: u.refresh,
        csrf: u.csrf,
        origin: null,
        headers: { 'sec-fetch-site': 'same-origin' },
      });
      expectStatus(res, 200);
      assert.equal(res.body.csrf_token, u.csrf, 'one CSRF token for the whole session');
    });

    test('Bearer and body-token requests need no CSRF token', async () => {
      const u = await registerUser(c);
      expectStatus(await c.get('/auth/me', { bearer: u.access }), 200);
      expectStatus(await c.post('/auth/refresh', { refresh_token: u.refresh }), 200);
    });
  });

  describe('GET /auth/session', () => {
    test('gives an allowed page the CSRF token of its cookie, changes nothing', async () => {
      const u = await registerUser(c, { inBody: false });
      const res = await c.request('GET', '/auth/session', { cookie: u.refresh });
      expectStatus(res, 200);
      assert.equal(res.body.csrf_token, u.csrf);
      expectCors(res);
      const row = await w.db.prepare('SELECT rotated_at FROM refresh_tokens WHERE token_hash = ?').bind(sha256hex(u.refresh)).first();
      assert.equal(row.rotated_at, null);
      const evil = await c.request('GET', '/auth/session', { cookie: u.refresh, origin: EVIL });
      expectError(evil, 403, 'csrf_validation_failed');
      expectNoCors(evil);
      expectError(await c.request('GET', '/auth/session', { headers: { origin: SITE_ORIGIN } }), 401, 'no_auth');
      // After logout the cookie is worth nothing.
      expectStatus(await c.request('POST', '/auth/logout', { cookie: u.refresh, csrf: u.csrf }), 204);
      expectError(await c.request('GET', '/auth/session', { cookie: u.refresh }), 401, 'invalid_refresh_token');
    });
  });

  describe('CORS', () => {
    test('preflight from a listed origin: methods, headers, max-age, credentials', async () => {
      const res = await c.request('OPTIONS', '/auth/refresh', {
        headers: { origin: SITE_ORIGIN, 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type, x-csrf-token' },
      });
      expectStatus(res, 204);
      expectCors(res);
      assert.match(res.headers.get('access-control-allow-methods'), /POST/);
      assert.equal(res.headers.get('access-control-allow-headers'), 'Authorization, Content-Type, X-CSRF-Token');
      assert.equal(res.headers.get('access-control-max-age'), '600');
    });

    test('preflight from an unlisted origin gets no CORS headers', async () => {
      const res = await c.request('OPTIONS', '/auth/login', {
        headers: { origin: EVIL, 'access-control-request-method': 'POST' },
      });
      expectNoCors(res);
    });

    test('errors carry the CORS headers: 401, 403, 404, 405, 413', async () => {
      const h = { origin: SITE_ORIGIN };
      const r401 = await c.request('GET', '/auth/me', { headers: h });
      expectError(r401, 401, 'no_auth', { bearer: true });
      expectCors(r401);
      assert.match(r401.headers.get('access-control-expose-headers'), /WWW-Authenticate/i);
      const u = await registerUser(c, { inBody: false });
      const r403 = await c.request('POST', '/auth/refresh', { cookie: u.refresh, csrf: 'nope' });
      expectError(r403, 403, 'csrf_validation_failed');
      expectCors(r403);
      const r404 = await c.request('GET', '/nowhere', { headers: h });
      expectCors(r404);
      const r405 = await c.request('GET', '/auth/login', { headers: h });
      expectCors(r405);
      const r413 = await c.request('POST', '/auth/login', { headers: { ...h, 'content-type': 'application/json' }, body: 'x'.repeat(5000) });
      expectError(r413, 413, 'payload_too_large');
      expectCors(r413);
    });

    test('errors carry the CORS headers: 429 and 502', async () => {
      const h = { origin: SITE_ORIGIN };
      const email = `cors-429-${Date.now()}@example.com`;
      let last;
      await awayFromWindowEdge(Number(readWranglerConfig().vars.RATE_LIMIT_WINDOW_SECONDS));
      for (let i = 0; i < 11; i += 1) {
        last = await c.post('/auth/login', { email, password: 'wrong-password-1' }, { headers: h });
      }
      expectError(last, 429, 'auth_rate_limited');
      expectCors(last);
      assert.match(last.headers.get('access-control-expose-headers') ?? '', /Retry-After/i);
      const r502 = await c.request('GET', '/down/anything', { headers: h });
      expectError(r502, 502, 'upstream_unavailable');
      expectCors(r502);
      expectNoCors(await c.request('GET', '/down/anything', { headers: { origin: EVIL } }));
    });

    test('unlisted origins get no CORS headers on successes or errors', async () => {
      expectNoCors(await c.request('GET', '/healthz', { headers: { origin: EVIL } }));
      expectNoCors(await c.request('GET', '/auth/me', { headers: { origin: EVIL } }));
      expectNoCors(await c.request('POST', '/auth/login', { headers: { origin: EVIL, 'content-type': 'application/json' }, body: 'x'.repeat(5000) }));
    });

    test("proxied answers get Gatehouse's CORS headers, never the upstream's", async () => {
      const ok = await c.request('GET', '/cms/content/items/posts', { headers: { origin: SITE_ORIGIN } });
      expectStatus(ok, 200);
      expectCors(ok);
      assert.equal(ok.body[0].title, 'streamed');
      const foreign = await c.request('GET', '/cms/content/items/posts', { headers: { origin: EVIL } });
      expectStatus(foreign, 200);
      expectNoCors(foreign);
      const pre = await c.request('OPTIONS', '/cms/content/item/posts', {
        headers: { origin: SITE_ORIGIN, 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization, content-type' },
      });
      expectStatus(pre, 204);
      expectCors(pre);
      assert.ok(!seen.some((u) => u.includes('item/posts')), 'a preflight is answered by Gatehouse, not forwarded');
    });
  });

  describe('the JS client asset', () => {
    test('GET /client/gatehouse.js: an ES module any page may import', async () => {
      const res = await c.request('GET', '/client/gatehouse.js', { headers: { origin: EVIL } });
      expectStatus(res, 200);
      assert.match(res.headers.get('content-type'), /^text\/javascript/);
      assert.equal(res.headers.get('access-control-allow-origin'), '*');
      assert.equal(res.headers.get('access-control-allow-credentials'), null);
      assert.match(res.text, /export function createClient/);
      const types = await c.request('GET', '/client/gatehouse.d.ts');
      expectStatus(types, 200);
      assert.match(types.text, /createClient\(options: ClientOptions\)/);
    });
  });
});
