// Access tokens (EdDSA JWTs), the JWKS, and tokens forged by the test itself.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import {
  client,
  expectError,
  expectJson,
  expectStatus,
  openVars,
  registerUser,
} from '../support/http.mjs';
import { decodeJwt, encodeSegment, nowSeconds, signEdDSA, signHS256, unsigned, verifyWithJwk } from '../support/jwt.mjs';
import { generateSigningKey, jwkThumbprint, startWorker } from '../support/worker.mjs';

const ISSUER = 'https://auth.gatehouse.test';
const AUDIENCE = 'gatehouse-test-api';
const TTL = 600;

describe('access tokens and JWKS', () => {
  const key = generateSigningKey();
  let w;
  let c;
  let u; // a registered user: { user, access, refresh, ... }
  let token; // decoded u.access

  before(async () => {
    w = await startWorker({
      vars: openVars(key, { JWT_ISSUER: ISSUER, JWT_AUDIENCE: AUDIENCE, ACCESS_TOKEN_TTL: String(TTL) }),
    });
    c = client(w.url);
    u = await registerUser(c);
    token = decodeJwt(u.access);
  });
  after(() => w?.stop());

  /** Claims like the worker's own, for forging. */
  function claims(extra = {}) {
    const now = nowSeconds();
    return {
      iss: token.payload.iss,
      aud: token.payload.aud,
      sub: u.user.id,
      iat: now,
      exp: now + 300,
      jti: `test-${now}-${Math.random().toString(36).slice(2)}`,
      roles: ['user'],
      ...extra,
    };
  }
  const header = (extra = {}) => ({ alg: 'EdDSA', typ: 'JWT', kid: key.kid, ...extra });
  const me = (t) => c.get('/auth/me', { bearer: t });

  test('header and claims', () => {
    assert.deepEqual(token.header, { alg: 'EdDSA', typ: 'JWT', kid: key.kid });
    const p = token.payload;
    for (const claim of ['iss', 'aud', 'sub', 'iat', 'exp', 'jti', 'roles']) {
      assert.ok(claim in p, `claim ${claim} missing: ${JSON.stringify(p)}`);
    }
    assert.equal(p.iss, ISSUER);
    assert.ok(p.aud === AUDIENCE || (Array.isArray(p.aud) && p.aud.includes(AUDIENCE)), `aud: ${JSON.stringify(p.aud)}`);
    assert.equal(p.sub, u.user.id);
    assert.ok(Number.isInteger(p.iat) && Number.isInteger(p.exp), 'iat/exp are integer seconds');
    assert.ok(Math.abs(p.iat - nowSeconds()) < 60, `iat ${p.iat} is not now`);
    assert.equal(p.exp - p.iat, TTL);
    assert.equal(u.body.expires_in, TTL);
    assert.equal(typeof p.jti, 'string');
    assert.ok(p.jti.length >= 16, `jti too short: ${p.jti}`);
    assert.deepEqual(p.roles, ['user']);
    assert.equal(token.signature.length, 64);
  });

  test('jti differs between tokens', async () => {
    const r = await c.post('/auth/refresh', { refresh_token: u.refresh });
    expectStatus(r, 200);
    u.refresh = r.body.refresh_token;
    const other = decodeJwt(r.body.access_token);
    assert.notEqual(other.payload.jti, token.payload.jti);
    assert.equal(other.payload.sub, token.payload.sub);
  });

  test('GET /.well-known/jwks.json lists the key (RFC 7638 kid)', async () => {
    const res = await c.get('/.well-known/jwks.json');
    expectStatus(res, 200);
    expectJson(res);
    assert.deepEqual(Object.keys(res.body), ['keys']);
    assert.equal(res.body.keys.length, 1);
    const jwk = res.body.keys[0];
    assert.deepEqual(Object.keys(jwk).sort(), ['alg', 'crv', 'kid', 'kty', 'use', 'x']);
    assert.equal(jwk.kty, 'OKP');
    assert.equal(jwk.crv, 'Ed25519');
    assert.equal(jwk.alg, 'EdDSA');
    assert.equal(jwk.use, 'sig');
    assert.equal(jwk.x, key.x);
    assert.equal(jwk.kid, jwkThumbprint(jwk));
    assert.equal(jwk.kid, key.kid);
    assert.equal(jwk.d, undefined, 'the JWKS must not publish the private key');
  });

  test('an access token verifies against the JWKS with WebCrypto', async () => {
    const res = await c.get('/.well-known/jwks.json');
    const jwk = res.body.keys.find((k) => k.kid === token.header.kid);
    assert.ok(jwk, 'kid not in the JWKS');
    assert.equal(await verifyWithJwk(u.access, jwk), true);
    // A flipped bit must fail, so the check above means something.
    const sig = Buffer.from(token.signature);
    sig[0] ^= 1;
    assert.equal(await verifyWithJwk(`${token.signingInput}.${sig.toString('base64url')}`, jwk), false);
  });

  test('control: a token signed by the test with the real key is accepted', async () => {
    const t = signEdDSA(header(), claims(), key.privateKey);
    const res = await me(t);
    expectStatus(res, 200);
    assert.equal(res.body.user.id, u.user.id);
  });

  test('control: expired 10 s ago is still inside the 30 s leeway', async () => {
    const now = nowSeconds();
    const t = signEdDSA(header(), claims({ iat: now - 310, exp: now - 10 }), key.privateKey);
    expectStatus(await me(t), 200);
  });

  test('expired 10 minutes ago (real key) → 401 expired_token', async () => {
    const now = nowSeconds();
    const t = signEdDSA(header(), claims({ iat: now - 1500, exp: now - 600 }), key.privateKey);
    expectError(await me(t), 401, 'expired_token', { bearer: true });
  });

  test('expired 40 s ago (beyond the leeway) → 401 expired_token', async () => {
    const now = nowSeconds();
    const t = signEdDSA(header(), claims({ iat: now - 340, exp: now - 40 }), key.privateKey);
    expectError(await me(t), 401, 'expired_token', { bearer: true });
  });

  test('alg none → 401 invalid_token', async () => {
    expectError(await me(unsigned(header({ alg: 'none' }), claims())), 401, 'invalid_token', { bearer: true });
    // A "none" header with a real EdDSA signature attached.
    const body = `${encodeSegment(header({ alg: 'none' }))}.${encodeSegment(claims())}`;
    const t = signEdDSA(header(), claims(), key.privateKey);
    expectError(await me(`${body}.${t.split('.')[2]}`), 401, 'invalid_token', { bearer: true });
  });

  test('HS256 with the public key as the HMAC secret → 401 invalid_token', async () => {
    const raw = Buffer.from(key.x, 'base64url');
    const spki = key.publicKey.export({ format: 'der', type: 'spki' });
    const pem = key.publicKey.export({ format: 'pem', type: 'spki' });
    for (const secret of [raw, key.x, spki, pem]) {
      const t = signHS256(header({ alg: 'HS256' }), claims(), secret);
      expectError(await me(t), 401, 'invalid_token', { bearer: true });
    }
  });

  test('signed with another Ed25519 key under the right kid → 401 invalid_token', async () => {
    const other = generateSigningKey();
    const t = signEdDSA(header(), claims(), other.privateKey);
    expectError(await me(t), 401, 'invalid_token', { bearer: true });
  });

  test('unknown kid (real key) → 401 invalid_token', async () => {
    const t = signEdDSA(header({ kid: 'not-a-known-kid' }), claims(), key.privateKey);
    expectError(await me(t), 401, 'invalid_token', { bearer: true });
  });

  test('tampered payload (roles changed) → 401 invalid_token', async () => {
    const p = { ...token.payload, roles: ['admin'] };
    const t = `${token.parts[0]}.${encodeSegment(p)}.${token.parts[2]}`;
    expectError(await me(t), 401, 'invalid_token', { bearer: true });
    const p2 = { ...token.payload, exp: token.payload.exp + 86400 };
    expectError(await me(`${token.parts[0]}.${encodeSegment(p2)}.${token.parts[2]}`), 401, 'invalid_token', {
      bearer: true,
    });
  });

  test('truncated signature → 401 invalid_token', async () => {
    expectError(await me(u.access.slice(0, -4)), 401, 'invalid_token', { bearer: true });
    expectError(await me(`${token.signingInput}.`), 401, 'invalid_token', { bearer: true });
  });

  test('garbage → 401 invalid_token', async () => {
    for (const t of ['garbage', 'a.b.c', '...', `${u.access}.extra`, 'eyJhbGciOiJFZERTQSJ9.e30', '%%%.%%%.%%%']) {
      expectError(await me(t), 401, 'invalid_token', { bearer: true });
    }
  });

  test('wrong iss or aud (real key) → 401 invalid_token', async () => {
    const wrongIss = signEdDSA(header(), claims({ iss: 'https://evil.example' }), key.privateKey);
    expectError(await me(wrongIss), 401, 'invalid_token', { bearer: true });
    const wrongAud = signEdDSA(header(), claims({ aud: 'someone-else' }), key.privateKey);
    expectError(await me(wrongAud), 401, 'invalid_token', { bearer: true });
    const noIss = claims();
    delete noIss.iss;
    expectError(await me(signEdDSA(header(), noIss, key.privateKey)), 401, 'invalid_token', { bearer: true });
  });

  test('malformed claims (real key) → 401 invalid_token', async () => {
    const without = (name) => {
      const p = claims();
      delete p[name];
      return p;
    };
    const bad = {
      'no exp': without('exp'),
      'no sub': without('sub'),
      'exp as a string': claims({ exp: String(nowSeconds() + 300) }),
      'sub of an unknown user': claims({ sub: 'usr_aaaaaaaaaaaaaaaaaaaaaaaaaa' }),
    };
    for (const [name, p] of Object.entries(bad)) {
      const res = await me(signEdDSA(header(), p, key.privateKey));
      assert.equal(res.status, 401, `${name}: ${res.describe()}`);
      expectError(res, 401, 'invalid_token', { bearer: true });
    }
    const noKid = signEdDSA({ alg: 'EdDSA', typ: 'JWT' }, claims(), key.privateKey);
    expectError(await me(noKid), 401, 'invalid_token', { bearer: true });
  });

  test('no Authorization header → 401 no_auth', async () => {
    expectError(await c.get('/auth/me'), 401, 'no_auth', { bearer: true });
  });

  test('a refresh token is not an access token', async () => {
    expectError(await me(u.refresh), 401, 'invalid_token', { bearer: true });
  });
});

describe('key rotation (JWT_PREVIOUS_PUBLIC_KEYS)', () => {
  const previous = generateSigningKey();
  const older = generateSigningKey();
  const current = generateSigningKey();
  let w;
  let c;
  let u;
  before(async () => {
    w = await startWorker({
      vars: openVars(current, { JWT_PREVIOUS_PUBLIC_KEYS: `${previous.x}, ${older.x}` }),
    });
    c = client(w.url);
    u = await registerUser(c);
  });
  after(() => w?.stop());

  const claimsFor = (sub, extra = {}) => {
    const now = nowSeconds();
    return { iss: 'gatehouse', aud: 'gatehouse', sub, iat: now, exp: now + 300, jti: `rot-${now}-${Math.random()}`, roles: ['user'], ...extra };
  };

  test('the JWKS lists the current key first, then the previous ones', async () => {
    const res = await c.get('/.well-known/jwks.json');
    expectStatus(res, 200);
    assert.deepEqual(
      res.body.keys.map((k) => [k.kid, k.x]),
      [
        [current.kid, current.x],
        [previous.kid, previous.x],
        [older.kid, older.x],
      ],
    );
    for (const k of res.body.keys) {
      assert.deepEqual({ kty: k.kty, crv: k.crv, alg: k.alg, use: k.use }, { kty: 'OKP', crv: 'Ed25519', alg: 'EdDSA', use: 'sig' });
      assert.equal(k.kid, jwkThumbprint(k));
      assert.equal(k.d, undefined);
    }
  });

  test('new tokens are signed with the current key', () => {
    assert.equal(decodeJwt(u.access).header.kid, current.kid);
  });

  test('a token signed by a previous key under its own kid is accepted', async () => {
    for (const k of [previous, older]) {
      const t = signEdDSA({ alg: 'EdDSA', typ: 'JWT', kid: k.kid }, claimsFor(u.user.id), k.privateKey);
      const res = await c.get('/auth/me', { bearer: t });
      expectStatus(res, 200);
      assert.equal(res.body.user.id, u.user.id);
    }
  });

  test('a previous key under the current kid, or the reverse, → 401 invalid_token', async () => {
    const a = signEdDSA({ alg: 'EdDSA', typ: 'JWT', kid: current.kid }, claimsFor(u.user.id), previous.privateKey);
    expectError(await c.get('/auth/me', { bearer: a }), 401, 'invalid_token', { bearer: true });
    const b = signEdDSA({ alg: 'EdDSA', typ: 'JWT', kid: previous.kid }, claimsFor(u.user.id), current.privateKey);
    expectError(await c.get('/auth/me', { bearer: b }), 401, 'invalid_token', { bearer: true });
  });

  test('an expired token from a previous key → 401 expired_token', async () => {
    const now = nowSeconds();
    const t = signEdDSA(
      { alg: 'EdDSA', typ: 'JWT', kid: previous.kid },
      claimsFor(u.user.id, { iat: now - 1500, exp: now - 600 }),
      previous.privateKey,
    );
    expectError(await c.get('/auth/me', { bearer: t }), 401, 'expired_token', { bearer: true });
  });
});
