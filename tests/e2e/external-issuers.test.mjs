// Trusted external issuers (TRUSTED_ISSUERS), end to end: a real OpenID provider
// (oidc-provider, tests/support/oidc.mjs) signs users in and issues RS256 and ES256 ID tokens;
// the built worker takes them on its proxy (Bearer and cookie) and on /auth/me, fetching the
// provider's JWKS over http://127.0.0.1 (allowed only with DEV_ALLOW_HTTP_LOOPBACK_JWKS).
// Caching (per isolate, and in the Cache API: a fresh worker on the same cache storage verifies
// with the stored JWKS while the provider is down), a kid rotation at the provider, the provider
// down, bad JWKS documents, forgeries and an issuer of known users only.

import assert from 'node:assert/strict';
import { randomBytes, sign } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import http from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { verifyGatehouseRequest } from '../../examples/verify-signature/verify.mjs';
import { client, expectError, expectStatus, openVars, registerUser, SITE_ORIGIN } from '../support/http.mjs';
import { decodeJwt, encodeSegment, nowSeconds, signHS256, unsigned } from '../support/jwt.mjs';
import { signingKey, startProvider } from '../support/oidc.mjs';
import { startUpstream } from '../support/upstream.mjs';
import { generateSigningKey, startWorker } from '../support/worker.mjs';

const SIGNING_SECRET = randomBytes(32).toString('base64url');
const COOKIE = 'site_id_token';
const CLIENTS = [{ id: 'site-rs', alg: 'RS256' }, { id: 'site-es', alg: 'ES256' }];

/** A JWT signed with `key` (from `signingKey`): RS256, ES256 (r||s) or EdDSA. */
function signWith(key, payload, header = {}) {
  const input = `${encodeSegment({ alg: key.alg, kid: key.kid, typ: 'JWT', ...header })}.${encodeSegment(payload)}`;
  const data = Buffer.from(input, 'ascii');
  const sig = key.alg === 'RS256'
    ? sign('sha256', data, key.privateKey)
    : key.alg === 'ES256'
      ? sign('sha256', data, { key: key.privateKey, dsaEncoding: 'ieee-p1363' })
      : sign(null, data, key.privateKey);
  return `${input}.${sig.toString('base64url')}`;
}

/** Polls `fn` until it returns a truthy value, failing after `ms` with `what`. */
async function eventually(what, fn, ms = 15_000) {
  const deadline = Date.now() + ms;
  let last;
  while (Date.now() < deadline) {
    last = await fn();
    if (last.ok) return last.value;
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.fail(`${what} did not happen within ${ms} ms; last: ${last?.detail}`);
}

/** A JWKS host that answers badly: not JSON, or far more than Gatehouse reads. */
async function startBadHost() {
  const server = http.createServer((req, res) => {
    if (req.url === '/not-json') {
      res.writeHead(200, { 'content-type': 'text/html' });
      return res.end('<html><body>502 Bad Gateway</body></html>');
    }
    res.writeHead(200, { 'content-type': 'application/json' });
    // 2 MB: a JWKS is a few KB; the worker stops reading at its limit.
    res.end(`{"keys":[${'{"kty":"oct"},'.repeat(150_000)}{"kty":"oct"}]}`);
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${server.address().port}`,
    close: () => new Promise((r) => { server.closeAllConnections?.(); server.close(r); }),
  };
}

describe('trusted external issuers', () => {
  let provider;
  let keys;
  let up;
  let bad;
  let w;
  let c;
  const inhouse = signingKey('EdDSA', 'inhouse-1');

  const issuers = (p) => ({
    oidc: {
      iss: p.issuer,
      jwks_uri: p.jwksUrl,
      audience: CLIENTS.map((x) => x.id),
      algorithms: ['RS256', 'ES256'],
      cookie: COOKIE,
      default_roles: ['user'],
      roles_claim: 'groups',
      role_map: { 'cms-editors': 'editor' },
      jwks_refetch_seconds: 1,
    },
    inhouse: {
      iss: 'https://auth.site.example',
      jwks: { keys: [inhouse.publicJwk] },
      audience: 'site',
      algorithms: ['EdDSA'],
      known_users_only: true,
      email_claim: 'email',
    },
    broken: { iss: 'https://broken.example', jwks_uri: `${bad.url}/not-json`, audience: 'site' },
    huge: { iss: 'https://huge.example', jwks_uri: `${bad.url}/huge`, audience: 'site' },
  });
  const vars = (p, extra = {}) => openVars(generateSigningKey(), {
    TRUSTED_ISSUERS: issuers(p),
    DEV_ALLOW_HTTP_LOOPBACK_JWKS: 'true',
    UPSTREAM_SIGNING_SECRET: SIGNING_SECRET,
    ROUTES: {
      cms: {
        prefix: '/cms/',
        upstream: `${up.url}/base/`,
        forward_all: true,
        read: { roles: ['anonymous'] },
        write: { roles: ['user'] },
      },
    },
    ...extra,
  });
  const claims = (extra = {}) => {
    const now = nowSeconds();
    return { iss: provider.issuer, aud: 'site-rs', sub: 'mallory', iat: now, exp: now + 600, ...extra };
  };
  const upstreamCount = () => up.requests.length;

  before(async () => {
    keys = [signingKey('RS256', 'rsa-1'), signingKey('ES256', 'ec-1')];
    provider = await startProvider({ keys, clients: CLIENTS });
    up = await startUpstream();
    bad = await startBadHost();
    w = await startWorker({ vars: vars(provider) });
    c = client(w.url);
  });
  after(async () => {
    await w?.stop();
    await provider?.stop();
    await up?.close();
    await bad?.close();
  });

  test('an RS256 ID token from a sign-in at the provider works as a Bearer on the proxy and /auth/me', async () => {
    const idToken = await provider.signIn('site-rs', 'alice');
    assert.deepEqual(
      { alg: decodeJwt(idToken).header.alg, kid: decodeJwt(idToken).header.kid },
      { alg: 'RS256', kid: 'rsa-1' },
    );
    const res = await c.get('/cms/articles?limit=2', { bearer: idToken });
    expectStatus(res, 200);
    const seen = up.last();
    assert.equal(seen.headers['x-gatehouse-auth'], 'external_token');
    assert.equal(seen.headers['x-gatehouse-user'], 'oidc:alice');
    assert.equal(seen.headers['x-gatehouse-issuer'], 'oidc');
    assert.equal(seen.headers['x-gatehouse-roles'], 'user,editor');
    assert.equal(seen.headers.authorization, undefined, 'the ID token never reaches the CMS');
    const verified = await verifyGatehouseRequest({
      method: seen.method,
      url: `${up.url}${seen.url}`,
      headers: seen.headers,
      body: seen.body,
      secret: SIGNING_SECRET,
    });
    assert.deepEqual(verified, { ok: true, auth: 'external_token', user: 'oidc:alice', issuer: 'oidc', roles: ['user', 'editor'] });
    // The issuer is signed: changing it breaks the signature.
    const tampered = await verifyGatehouseRequest({
      method: seen.method,
      url: `${up.url}${seen.url}`,
      headers: { ...seen.headers, 'x-gatehouse-issuer': 'inhouse' },
      body: seen.body,
      secret: SIGNING_SECRET,
    });
    assert.equal(tampered.ok, false);

    const me = await c.get('/auth/me', { bearer: idToken });
    expectStatus(me, 200);
    assert.deepEqual(me.body, {
      user: { id: 'oidc:alice', email: null, name: null, roles: ['user', 'editor'] },
      issuer: 'oidc',
    });
    // No Gatehouse session for it: the session endpoints do not take it.
    expectError(await c.get('/auth/sessions', { bearer: idToken }), 401, 'invalid_token');
  });

  test('an ES256 ID token works as the cookie; a change by cookie needs an allowed Origin', async () => {
    const idToken = await provider.signIn('site-es', 'bob');
    assert.equal(decodeJwt(idToken).header.alg, 'ES256');
    const cookie = `${COOKIE}=${idToken}`;
    expectStatus(await c.get('/cms/articles', { headers: { cookie } }), 200);
    assert.equal(up.last().headers['x-gatehouse-user'], 'oidc:bob');
    assert.equal(up.last().headers['x-gatehouse-issuer'], 'oidc');
    assert.equal(up.last().headers.cookie, undefined, 'the cookie never reaches the CMS');

    const before = upstreamCount();
    const forged = await c.post('/cms/articles', { title: 'x' }, { headers: { cookie, origin: 'https://evil.example' } });
    expectError(forged, 403, 'csrf_validation_failed');
    const noOrigin = await c.post('/cms/articles', { title: 'x' }, { headers: { cookie } });
    expectError(noOrigin, 403, 'csrf_validation_failed');
    assert.equal(upstreamCount(), before, 'nothing reached the CMS');
    const ok = await c.post('/cms/articles', { title: 'x' }, { headers: { cookie, origin: SITE_ORIGIN } });
    expectStatus(ok, 200);
    assert.equal(up.last().headers['x-gatehouse-user'], 'oidc:bob');
  });

  test('the JWKS is fetched once for both keys and then served from the isolate cache', async () => {
    assert.equal(provider.jwksRequests(), 1);
    for (let i = 0; i < 5; i++) {
      expectStatus(await c.get('/auth/me', { bearer: signWith(keys[0], claims({ jti: String(i) })) }), 200);
      expectStatus(await c.get('/auth/me', { bearer: signWith(keys[1], claims({ aud: 'site-es', jti: String(i) })) }), 200);
    }
    assert.equal(provider.jwksRequests(), 1);
  });

  test('forgeries against the external issuer are refused', async () => {
    const rsa = keys[0];
    const before = upstreamCount();
    // Algorithm confusion: HS256 keyed with the issuer's RSA public key, under its kid.
    const pem = rsa.publicKey.export({ format: 'pem', type: 'spki' });
    const confused = signHS256({ alg: 'HS256', kid: rsa.kid, typ: 'JWT' }, claims(), pem);
    expectError(await c.get('/cms/articles', { bearer: confused }), 401, 'invalid_token');
    const confusedJwk = signHS256({ alg: 'HS256', kid: rsa.kid, typ: 'JWT' }, claims(), JSON.stringify(rsa.publicJwk));
    expectError(await c.get('/cms/articles', { bearer: confusedJwk }), 401, 'invalid_token');
    // `none`.
    expectError(await c.get('/cms/articles', { bearer: unsigned({ alg: 'none', kid: rsa.kid }, claims()) }), 401, 'invalid_token');
    // A token of an issuer that is not trusted, signed with the trusted issuer's key and kid.
    const foreign = signWith(rsa, claims({ iss: 'https://evil.example' }));
    expectError(await c.get('/cms/articles', { bearer: foreign }), 401, 'untrusted_issuer');
    // Signed by the issuer, for another audience.
    expectError(await c.get('/cms/articles', { bearer: signWith(rsa, claims({ aud: 'another-app' })) }), 401, 'invalid_token');
    // Expired.
    expectError(await c.get('/cms/articles', { bearer: signWith(rsa, claims({ exp: nowSeconds() - 3600 })) }), 401, 'expired_token');
    // An RSA signature presented as ES256 under the EC key's kid.
    const swapped = signWith(rsa, claims(), { alg: 'ES256', kid: keys[1].kid });
    expectError(await c.get('/cms/articles', { bearer: swapped }), 401, 'invalid_token');
    // Another key's signature under the issuer's kid.
    const impostor = { ...signingKey('RS256', rsa.kid) };
    expectError(await c.get('/cms/articles', { bearer: signWith(impostor, claims()) }), 401, 'invalid_token');
    // The issuer's cookie holding another trusted issuer's token.
    const inhouseToken = signWith(inhouse, { iss: 'https://auth.site.example', aud: 'site', sub: 'x', email: 'x@example.com', exp: nowSeconds() + 60 });
    expectError(await c.get('/cms/articles', { headers: { cookie: `${COOKIE}=${inhouseToken}` } }), 401, 'untrusted_issuer');
    assert.equal(upstreamCount(), before, 'no forgery reached the CMS');
    assert.match(w.logs(), /untrusted_issuer \(401\): iss "https:\/\/evil\.example" is not a trusted issuer/);
  });

  test('a JWKS that is not JSON, or too large, is 401 issuer_unavailable with a log line', async () => {
    const rsa = signingKey('RS256', 'k');
    const notJson = signWith(rsa, { iss: 'https://broken.example', aud: 'site', sub: 'a', exp: nowSeconds() + 60 });
    expectError(await c.get('/cms/articles', { bearer: notJson }), 401, 'issuer_unavailable');
    const huge = signWith(rsa, { iss: 'https://huge.example', aud: 'site', sub: 'a', exp: nowSeconds() + 60 });
    expectError(await c.get('/auth/me', { bearer: huge }), 401, 'issuer_unavailable');
    const logs = w.logs();
    assert.match(logs, /issuer_unavailable \(401\): issuer "broken": JWKS http:\/\/127\.0\.0\.1:\d+\/not-json: the JWKS is not JSON/);
    assert.match(logs, /issuer_unavailable \(401\): issuer "huge": JWKS http:\/\/127\.0\.0\.1:\d+\/huge: the answer is larger than 65536 bytes/);
  });

  test('an issuer of known users only maps to the local, enabled user and its roles', async () => {
    const user = await registerUser(c);
    const token = (email, extra = {}) => signWith(inhouse, {
      iss: 'https://auth.site.example', aud: 'site', sub: 'inhouse-42', email, roles: ['admin'], exp: nowSeconds() + 600, ...extra,
    });
    const me = await c.get('/auth/me', { bearer: token(user.email.toUpperCase()) });
    expectStatus(me, 200);
    assert.equal(me.body.issuer, 'inhouse');
    assert.equal(me.body.user.id, user.body.user.id);
    assert.deepEqual(me.body.user.roles, ['user'], 'local roles; the token\'s "admin" counts for nothing');
    expectStatus(await c.get('/cms/articles', { bearer: token(user.email) }), 200);
    assert.equal(up.last().headers['x-gatehouse-user'], user.body.user.id);
    assert.equal(up.last().headers['x-gatehouse-issuer'], 'inhouse');
    assert.equal(up.last().headers['x-gatehouse-roles'], 'user');
    expectError(await c.get('/auth/me', { bearer: token('nobody@example.com') }), 401, 'invalid_token');
    expectError(await c.get('/auth/me', { bearer: token(user.email, { email_verified: false }) }), 401, 'invalid_token');
  });

  test('a kid rotation at the provider: the new key is fetched once, the old one stops working', async () => {
    const oldKeys = keys;
    await provider.stop();
    keys = [signingKey('RS256', 'rsa-2'), signingKey('ES256', 'ec-2')];
    provider = await startProvider({ port: provider.port, keys, clients: CLIENTS });
    const idToken = await provider.signIn('site-rs', 'carol');
    assert.equal(decodeJwt(idToken).header.kid, 'rsa-2');
    // Refetched for the unknown kid once the issuer's interval (1 s here) since the last fetch
    // has passed; refused as an unknown key before that.
    await eventually('the rotated key accepted', async () => {
      const res = await c.get('/auth/me', { bearer: idToken });
      return { ok: res.status === 200, detail: res.describe() };
    });
    assert.equal(provider.jwksRequests(), 1, 'one fetch of the new JWKS');
    const es = await provider.signIn('site-es', 'carol');
    expectStatus(await c.get('/cms/articles', { bearer: es }), 200);
    assert.equal(provider.jwksRequests(), 1);
    // A new token under the retired key: its kid is gone from the JWKS.
    const retired = signWith(oldKeys[0], claims({ aud: 'site-rs', jti: 'retired' }));
    expectError(await c.get('/cms/articles', { bearer: retired }), 401, 'invalid_token');
  });

  test('the provider down: cached keys keep working; without them 401 issuer_unavailable', async () => {
    await provider.stop();
    // Signed with the current key, which this isolate has cached.
    expectStatus(await c.get('/cms/articles', { bearer: signWith(keys[0], claims({ jti: 'down-1' })) }), 200);
    // An unknown kid needs a fetch, which fails once the refetch interval allows one.
    const unknown = signWith(signingKey('RS256', 'rsa-9'), claims());
    await eventually('issuer_unavailable for an unknown kid', async () => {
      const res = await c.get('/cms/articles', { bearer: unknown });
      if (res.status === 401 && res.body?.error?.code === 'invalid_token') return { ok: false, detail: res.describe() };
      return { ok: true, value: res };
    }).then((res) => expectError(res, 401, 'issuer_unavailable'));
    expectStatus(await c.get('/cms/articles', { bearer: signWith(keys[1], claims({ aud: 'site-es', jti: 'down-2' })) }), 200);

    // A fresh worker has nothing cached: 401 issuer_unavailable, never a 5xx.
    const fresh = await startWorker({ vars: vars(provider) });
    try {
      const fc = client(fresh.url);
      expectError(await fc.get('/cms/articles', { bearer: signWith(keys[0], claims()) }), 401, 'issuer_unavailable');
      expectError(await fc.get('/auth/me', { bearer: signWith(keys[0], claims()) }), 401, 'issuer_unavailable');
      assert.match(fresh.logs(), /issuer_unavailable \(401\): issuer "oidc": JWKS http:\/\/127\.0\.0\.1:\d+\/jwks: /);
      // The provider back: accepted once the refetch interval has passed.
      provider = await startProvider({ port: provider.port, keys, clients: CLIENTS });
      await eventually('accepted once the provider is back', async () => {
        const res = await fc.get('/cms/articles', { bearer: signWith(keys[0], claims()) });
        return { ok: res.status === 200, detail: res.describe() };
      });
      assert.equal(provider.jwksRequests(), 1);
    } finally {
      await fresh.stop();
    }
  });

  test('the Cache API: a fresh worker on the same cache verifies from the stored JWKS while the provider is down', async () => {
    // Workers started one after the other on one cache directory are isolates of one data
    // centre; one without it has an empty cache.
    const cacheDir = await mkdtemp(path.join(tmpdir(), 'gatehouse-e2e-cache-'));
    const rotated = [signingKey('RS256', 'rsa-3'), signingKey('ES256', 'ec-3')];
    try {
      const a = await startWorker({ vars: vars(provider), cachePersist: cacheDir });
      try {
        const ac = client(a.url);
        const before = provider.jwksRequests();
        expectStatus(await ac.get('/auth/me', { bearer: signWith(keys[0], claims({ jti: 'cache-1' })) }), 200);
        assert.equal(provider.jwksRequests(), before + 1, 'fetched once, and stored (max-age=600)');
        // The provider rotates its keys. The refetch for the unknown kid goes past the stored
        // copy (which holds the old set) to the provider, and replaces the copy.
        await provider.stop();
        provider = await startProvider({ port: provider.port, keys: rotated, clients: CLIENTS });
        await eventually('the rotated key accepted', async () => {
          const res = await ac.get('/auth/me', { bearer: signWith(rotated[0], claims({ jti: 'cache-2' })) });
          return { ok: res.status === 200, detail: res.describe() };
        });
        assert.equal(provider.jwksRequests(), 1);
      } finally {
        await a.stop();
      }
      await provider.stop();

      // A fresh worker on the same cache, the provider down: the stored set, the rotated one.
      const b = await startWorker({ vars: vars(provider), cachePersist: cacheDir });
      try {
        const bc = client(b.url);
        expectStatus(await bc.get('/auth/me', { bearer: signWith(rotated[0], claims({ jti: 'cache-3' })) }), 200);
        expectStatus(await bc.get('/cms/articles', { bearer: signWith(rotated[1], claims({ aud: 'site-es', jti: 'cache-4' })) }), 200);
        assert.equal(up.last().headers['x-gatehouse-issuer'], 'oidc');
        // A key of the old set is not in it: its kid needs the provider, which is down.
        expectError(await bc.get('/auth/me', { bearer: signWith(keys[0], claims({ jti: 'cache-5' })) }), 401, 'issuer_unavailable');
      } finally {
        await b.stop();
      }

      // A fresh worker with an empty cache, the provider down: 401 issuer_unavailable.
      const empty = await startWorker({ vars: vars(provider) });
      try {
        expectError(await client(empty.url).get('/auth/me', { bearer: signWith(rotated[0], claims({ jti: 'cache-6' })) }), 401, 'issuer_unavailable');
      } finally {
        await empty.stop();
      }
    } finally {
      await rm(cacheDir, { recursive: true, force: true });
      keys = rotated;
      await provider.stop(); // already stopped unless the test failed early
      provider = await startProvider({ port: provider.port, keys, clients: CLIENTS });
    }
  });

  test('a jwks_uri over http is refused unless the development flag is set', async () => {
    const strict = await startWorker({ vars: vars(provider, { DEV_ALLOW_HTTP_LOOPBACK_JWKS: undefined }) });
    try {
      expectError(await client(strict.url).get('/healthz'), 500, 'misconfigured');
      assert.match(strict.logs(), /TRUSTED_ISSUERS: issuer "broken": jwks_uri: http:\/\/ only with DEV_ALLOW_HTTP_LOOPBACK_JWKS=true/);
    } finally {
      await strict.stop();
    }
  });

  test('no token appears in the logs', () => {
    assert.ok(w.logs().includes('untrusted_issuer'), 'the worker logged its refusals');
    assert.doesNotMatch(w.logs(), /eyJ[\w-]+\.eyJ[\w-]+\.[\w-]+/);
  });
});
