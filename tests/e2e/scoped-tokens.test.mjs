// Scoped tokens (POST /auth/token) in workerd against D1 and a recording upstream: the answer
// and the JWT (verified with the JWKS by WebCrypto), each limit at its boundary where the wall
// clock cannot move it (SCOPED_TOKEN_MAX_TTL_SECONDS exactly, a parent's remaining lifetime
// from above, a key's expiry), roles and routes as subsets (403 insufficient_role /
// scope_violation), unknown routes and audiences (400), a foreign-audience token refused by
// Gatehouse itself, the proxy enforcing the token's routes and roles, minting from a scoped
// token, revocation with the parent session or key (REVOCATION_DELAY_SECONDS=0: at once), the
// endpoints that refuse scoped tokens, the per-credential rate limit and the audit row. The exact
// second-by-second boundaries of the remaining lifetime are shown natively with a controlled
// clock (tests/scoped_tokens.rs).

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { PEPPER, mintKey, userWithRoles } from '../support/admin.mjs';
import { awayFromWindowEdge, client, expectError, expectStatus, loginUser, openVars } from '../support/http.mjs';
import { decodeJwt, verifyWithJwk } from '../support/jwt.mjs';
import { startUpstream } from '../support/upstream.mjs';
import { generateSigningKey, readWranglerConfig, startWorker } from '../support/worker.mjs';

const MAX_TTL = 120;
// Above what any one test mints in one session (scoped tokens of a session count on it too).
const MINTS_PER_CREDENTIAL = 15;

describe('scoped tokens', () => {
  let up;
  let w;
  let c;
  let admin;

  before(async () => {
    up = await startUpstream();
    const routes = {
      cms: { prefix: '/cms/', upstream: `${up.url}/cms/`, forward_all: true, read: { roles: ['user'] }, write: { roles: ['editor'] } },
      files: { prefix: '/files/', upstream: `${up.url}/files/`, forward_all: true, read: { roles: ['user'] } },
    };
    w = await startWorker({
      vars: openVars(generateSigningKey(), {
        API_KEY_PEPPER: PEPPER,
        ROUTES: JSON.stringify(routes),
        UPSTREAM_SIGNING_SECRET: 'upstream-signing-secret-0123456789abcdef',
        REVOCATION_DELAY_SECONDS: '0',
        ACCESS_TOKEN_TTL: '600',
        SCOPED_TOKEN_MAX_TTL_SECONDS: String(MAX_TTL),
        SCOPED_TOKEN_AUDIENCES: 'billing.example, search',
        RATE_LIMIT_TOKEN_MINT_PER_CREDENTIAL: String(MINTS_PER_CREDENTIAL),
      }),
    });
    c = client(w.url);
    admin = await userWithRoles(w, c, ['admin', 'editor', 'user']);
  });
  after(async () => {
    await w?.stop();
    await up?.close();
  });

  const mint = (bearer, body) => c.post('/auth/token', body, { bearer });
  async function token(bearer, body) {
    const res = await mint(bearer, body);
    expectStatus(res, 200);
    return res.body;
  }
  const read = (bearer, path = '/cms/items/1') => c.get(path, { bearer });
  const write = (bearer) => c.request('POST', '/cms/items', { json: { title: 't' }, bearer });

  test('the answer, and a JWT with act, scope, routes and sid that the JWKS verifies', async () => {
    const ada = await userWithRoles(w, c, ['user', 'editor']);
    const res = await mint(ada.access, { roles: ['user'], routes: ['cms'], ttl: 60 });
    expectStatus(res, 200);
    assert.equal(res.headers.get('cache-control'), 'no-store');
    const body = res.body;
    assert.deepEqual(Object.keys(body).sort(), ['access_token', 'aud', 'expires_at', 'expires_in', 'issued_token_type', 'roles', 'routes', 'scope', 'token_type']);
    assert.equal(body.issued_token_type, 'urn:ietf:params:oauth:token-type:jwt');
    assert.equal(body.token_type, 'Bearer');
    assert.equal(body.expires_in, 60);
    assert.equal(body.scope, 'role:user route:cms');
    assert.deepEqual(body.routes, ['cms']);
    assert.equal(body.aud, null);
    const jwt = decodeJwt(body.access_token);
    const parent = decodeJwt(ada.access).payload;
    assert.deepEqual(jwt.header.alg, 'EdDSA');
    assert.equal(jwt.payload.sub, ada.id);
    assert.deepEqual(jwt.payload.act, { sub: ada.id });
    assert.equal(jwt.payload.sid, parent.sid);
    assert.equal(jwt.payload.aud, parent.aud);
    assert.deepEqual(jwt.payload.roles, ['user']);
    assert.deepEqual(jwt.payload.routes, ['cms']);
    assert.equal(jwt.payload.scope, 'role:user route:cms');
    assert.equal(jwt.payload.exp - jwt.payload.iat, 60);
    assert.equal(jwt.payload.exp, body.expires_at);
    const jwks = await c.get('/.well-known/jwks.json');
    const jwk = jwks.body.keys.find((k) => k.kid === jwt.header.kid);
    assert.equal(await verifyWithJwk(body.access_token, jwk), true);
    // Whoami knows it for what it is.
    const who = await c.get('/auth/whoami', { bearer: body.access_token });
    expectStatus(who, 200);
    assert.equal(who.body.credential, 'scoped_token');
    assert.deepEqual(who.body.scopes, ['cms']);
    assert.deepEqual(who.body.roles, ['user']);
    // Audited with its jti, never the token.
    const row = await w.db.prepare("SELECT * FROM audit_events WHERE kind = 'token_minted' AND subject_user_id = ?1").bind(ada.id).first();
    assert.equal(row.actor_user_id, ada.id);
    assert.equal(row.family_id, parent.sid);
    const detail = JSON.parse(row.detail);
    assert.equal(detail.jti, jwt.payload.jti);
    assert.equal(detail.via, 'access_token');
    assert.ok(!row.detail.includes(body.access_token.split('.')[2]));
  });

  test('ttl: SCOPED_TOKEN_MAX_TTL_SECONDS exactly, never beyond the parent, never zero', async () => {
    const ada = await userWithRoles(w, c, ['user']);
    // The access token has 600 s left: the maximum is the bound.
    assert.equal((await token(ada.access, { ttl: MAX_TTL })).expires_in, MAX_TTL);
    expectError(await mint(ada.access, { ttl: MAX_TTL + 1 }), 400, 'bad_request');
    assert.equal((await token(ada.access, {})).expires_in, MAX_TTL, 'the default is the longest');
    for (const ttl of [0, -5, 2.5, '30', null]) {
      const res = await mint(ada.access, { ttl });
      if (ttl === null) expectStatus(res, 200); // null is "not given"
      else expectError(res, 400, 'bad_request');
    }
    // A 30 s token: its children never outlive it.
    const parent = await token(ada.access, { ttl: 30 });
    expectError(await mint(parent.access_token, { ttl: 31 }), 400, 'bad_request');
    const child = await token(parent.access_token, {});
    assert.ok(child.expires_in <= 30 && child.expires_at <= parent.expires_at, JSON.stringify(child));
  });

  test("an API key: the maximum without expiry, and never past the key's expires_at", async () => {
    const ada = await userWithRoles(w, c, ['user']);
    const { key, api_key: view } = await mintKey(c, admin.access, { owner_user_id: ada.id, label: 'forever', role: 'user', scopes: ['cms'] });
    assert.equal((await token(key, { ttl: MAX_TTL })).expires_in, MAX_TTL);
    expectError(await mint(key, { ttl: MAX_TTL + 1 }), 400, 'bad_request');
    const fromKey = await token(key, {});
    assert.deepEqual(fromKey.routes, ['cms'], "the key's scope by default");
    assert.deepEqual(decodeJwt(fromKey.access_token).payload.act, { sub: ada.id, key_id: view.id });
    assert.equal(decodeJwt(fromKey.access_token).payload.sid, undefined);
    const brief = await mintKey(c, admin.access, { owner_user_id: ada.id, label: 'brief', role: 'user', scopes: ['cms'], expires_at: Date.now() + 30_000 });
    expectError(await mint(brief.key, { ttl: 31 }), 400, 'bad_request');
    const short = await token(brief.key, {});
    assert.ok(short.expires_in <= 30, JSON.stringify(short));
    assert.ok(short.expires_at * 1000 <= brief.api_key.expires_at);
  });

  test('roles, routes and aud: subsets of the caller or a clear refusal', async () => {
    const ada = await userWithRoles(w, c, ['user', 'editor']);
    await token(ada.access, { roles: ['editor', 'user'], routes: ['cms', 'files'] });
    expectError(await mint(ada.access, { roles: ['user', 'admin'] }), 403, 'insufficient_role');
    expectError(await mint(ada.access, { roles: ['Not A Role'] }), 400, 'bad_request');
    expectError(await mint(ada.access, { routes: ['shop'] }), 400, 'bad_request');
    expectError(await mint(ada.access, { routes: 'cms' }), 400, 'bad_request');
    const { key } = await mintKey(c, admin.access, { owner_user_id: ada.id, label: 'cms', role: 'editor', scopes: ['cms'] });
    expectError(await mint(key, { routes: ['files'] }), 403, 'scope_violation');
    expectError(await mint(key, { roles: ['user'] }), 403, 'insufficient_role');
    // Another service's audience: listed ones only; such a token is not Gatehouse's.
    expectError(await mint(ada.access, { aud: 'shop.example' }), 400, 'bad_request');
    const billing = await token(ada.access, { aud: 'billing.example', roles: ['user'] });
    assert.equal(billing.aud, 'billing.example');
    assert.equal(decodeJwt(billing.access_token).payload.aud, 'billing.example');
    const before = up.requests.length;
    expectError(await read(billing.access_token), 401, 'invalid_token', { bearer: true });
    expectError(await c.get('/auth/me', { bearer: billing.access_token }), 401, 'invalid_token', { bearer: true });
    expectError(await mint(billing.access_token, {}), 401, 'invalid_token', { bearer: true });
    assert.equal(up.requests.length, before, 'a foreign token reached the upstream');
    // No credential, a body of the wrong kind.
    expectError(await c.post('/auth/token', {}), 401, 'no_auth', { bearer: true });
    expectError(await c.request('POST', '/auth/token', { body: 'ttl=60', headers: { 'content-type': 'application/x-www-form-urlencoded' }, bearer: ada.access }), 415, 'unsupported_media_type');
    expectError(await c.request('POST', '/auth/token', { body: '{"ttl":', headers: { 'content-type': 'application/json' }, bearer: ada.access }), 400, 'invalid_json');
    expectError(await c.get('/auth/token', { bearer: ada.access }), 405, 'method_not_allowed');
  });

  test("the proxy enforces the token's routes and roles; a scoped token mints only within them", async () => {
    const ada = await userWithRoles(w, c, ['user', 'editor']);
    const reader = (await token(ada.access, { roles: ['user'], routes: ['cms'] })).access_token;
    expectStatus(await read(reader), 200);
    const before = up.requests.length;
    expectError(await read(reader, '/files/a.txt'), 403, 'scope_violation');
    expectError(await write(reader), 403, 'insufficient_role');
    assert.equal(up.requests.length, before, 'a refused request reached the upstream');
    assert.equal(up.requests.at(-1).headers['x-gatehouse-auth'], 'scoped_token');
    expectStatus(await write(ada.access), 200);
    // Minting from it: its own scope or less.
    const child = await token(reader, {});
    assert.deepEqual(child.routes, ['cms']);
    assert.deepEqual(child.roles, ['user']);
    expectError(await mint(reader, { roles: ['editor'] }), 403, 'insufficient_role');
    expectError(await mint(reader, { routes: ['files'] }), 403, 'scope_violation');
    // It never manages the account.
    expectError(await c.get('/auth/sessions', { bearer: reader }), 403, 'scope_violation');
    expectError(await c.post('/auth/password', { current_password: ada.password, new_password: 'another long one' }, { bearer: reader }), 403, 'scope_violation');
    const adminScoped = (await token(admin.access, { roles: ['admin'] })).access_token;
    expectError(await c.get('/admin/users', { bearer: adminScoped }), 403, 'scope_violation');
    expectStatus(await c.get('/auth/me', { bearer: reader }), 200);
  });

  test('revocation: a scoped token ends with its session or key, and loses a removed role', async () => {
    const ada = await userWithRoles(w, c, ['user', 'editor']);
    const fromSession = (await token(ada.access, { roles: ['user'] })).access_token;
    const grandchild = (await token(fromSession, {})).access_token;
    expectStatus(await read(fromSession), 200);
    expectStatus(await c.post('/auth/logout', { refresh_token: ada.refresh }), 204);
    for (const t of [fromSession, grandchild]) {
      expectError(await read(t), 401, 'invalid_token', { bearer: true });
      expectError(await mint(t, {}), 401, 'invalid_token', { bearer: true });
    }

    const { key, api_key: view } = await mintKey(c, admin.access, { owner_user_id: ada.id, label: 'job', role: 'editor', scopes: ['cms'] });
    const fromKey = (await token(key, {})).access_token;
    expectStatus(await write(fromKey), 200);
    expectStatus(await c.del(`/admin/api-keys/${view.id}`, { bearer: admin.access }), 204);
    expectError(await write(fromKey), 401, 'invalid_token', { bearer: true });

    const bob = await userWithRoles(w, c, ['user', 'editor']);
    const writer = (await token(bob.access, { roles: ['editor', 'user'] })).access_token;
    expectStatus(await write(writer), 200);
    expectStatus(await c.put(`/admin/users/${bob.id}/roles`, { roles: ['user'] }, { bearer: admin.access }), 200);
    expectError(await write(writer), 403, 'insufficient_role');
    expectStatus(await read(writer), 200);
    expectStatus(await c.post(`/admin/users/${bob.id}/disable`, undefined, { bearer: admin.access }), 200);
    expectError(await read(writer), 401, 'invalid_token', { bearer: true });
  });

  test('minting is rate-limited per credential, exactly at RATE_LIMIT_TOKEN_MINT_PER_CREDENTIAL', async () => {
    const ada = await userWithRoles(w, c, ['user']);
    const other = await loginUser(c, ada.email, ada.password);
    await awayFromWindowEdge(Number(readWranglerConfig().vars.RATE_LIMIT_WINDOW_SECONDS));
    for (let i = 0; i < MINTS_PER_CREDENTIAL; i += 1) await token(ada.access, { ttl: 10 });
    const refused = await mint(ada.access, { ttl: 10 });
    expectError(refused, 429, 'auth_rate_limited');
    assert.match(refused.headers.get('retry-after') ?? '', /^\d+$/);
    // Another session of the same user counts on its own.
    await token(other.access, { ttl: 10 });
  });
});
