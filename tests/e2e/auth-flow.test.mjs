// Register, login, me, refresh and logout through the HTTP contract (docs/http-api.md).

import assert from 'node:assert/strict';
import { pbkdf2Sync, randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import {
  COOKIE_NAME,
  PASSWORD,
  SITE_ORIGIN,
  client,
  expectError,
  expectJson,
  expectStatus,
  loginUser,
  openVars,
  refreshBody,
  registerUser,
  sha256hex,
  uniqueEmail,
} from '../support/http.mjs';
import { decodeJwt } from '../support/jwt.mjs';
import { generateSigningKey, startWorker } from '../support/worker.mjs';

const USER_ID = /^usr_[0-9A-Za-z]{26}$/;
const DEFAULT_ACCESS_TTL = 900;
const DEFAULT_REFRESH_TTL = 2592000;

/** The login response shape, exactly. */
function expectLoginResponse(res, status, { email, name = null, inBody }) {
  expectStatus(res, status);
  expectJson(res);
  const b = res.body;
  const keys = ['access_token', 'csrf_token', 'expires_in', 'token_type', 'user'];
  if (inBody) keys.push('refresh_token');
  assert.deepEqual(Object.keys(b).sort(), keys.sort(), `login response members:\n${res.describe()}`);
  assert.equal(b.token_type, 'Bearer');
  assert.equal(b.expires_in, DEFAULT_ACCESS_TTL);
  assert.equal(decodeJwt(b.access_token).header.alg, 'EdDSA');
  assert.deepEqual(Object.keys(b.user).sort(), ['email', 'id', 'name', 'roles']);
  assert.match(b.user.id, USER_ID);
  assert.equal(b.user.email, email);
  assert.equal(b.user.name, name);
  assert.deepEqual(b.user.roles, ['user']);
  if (inBody) {
    assert.equal(typeof b.refresh_token, 'string');
    assert.ok(b.refresh_token.length >= 32, `refresh token too short: ${b.refresh_token}`);
    assert.deepEqual(res.setCookies, [], `body mode must set no cookie:\n${res.describe()}`);
  } else {
    assert.equal(b.refresh_token, undefined);
  }
  return b;
}

/** The refresh cookie: HttpOnly, Secure, SameSite=Lax, Path=/auth, Max-Age within the TTL. */
function expectRefreshCookie(res) {
  const c = res.cookie();
  assert.ok(c, `no ${COOKIE_NAME} cookie:\n${res.describe()}`);
  assert.ok(c.value.length >= 32, `cookie value too short: ${c.value}`);
  assert.equal(c.attrs.httponly, true, `HttpOnly missing: ${res.setCookies}`);
  assert.equal(c.attrs.secure, true, `Secure missing: ${res.setCookies}`);
  assert.equal(c.attrs.samesite?.toLowerCase(), 'lax', `SameSite=Lax missing: ${res.setCookies}`);
  assert.equal(c.attrs.path, '/auth', `Path=/auth missing: ${res.setCookies}`);
  assert.match(String(c.attrs['max-age']), /^\d+$/, `Max-Age missing: ${res.setCookies}`);
  const maxAge = Number(c.attrs['max-age']);
  assert.ok(maxAge > 0 && maxAge <= DEFAULT_REFRESH_TTL, `Max-Age ${maxAge}`);
  assert.equal(c.attrs.domain, undefined, 'no Domain attribute expected');
  return c.value;
}

function expectClearedCookie(res) {
  const c = res.cookie();
  assert.ok(c, `logout must clear the cookie:\n${res.describe()}`);
  assert.equal(c.attrs['max-age'], '0', `Max-Age=0 expected: ${res.setCookies}`);
  assert.equal(c.attrs.path, '/auth', `Path=/auth expected: ${res.setCookies}`);
}

describe('accounts and sessions', () => {
  let w;
  let c;
  const key = generateSigningKey();

  before(async () => {
    w = await startWorker({ vars: openVars(key) });
    c = client(w.url);
  });
  after(() => w?.stop());

  describe('register', () => {
    test('201 with the login response and an HttpOnly refresh cookie', async () => {
      const email = uniqueEmail('ada');
      const res = await c.post('/auth/register', { email, password: PASSWORD, name: 'Ada' });
      expectLoginResponse(res, 201, { email, name: 'Ada', inBody: false });
      const token = expectRefreshCookie(res);
      const row = await w.db
        .prepare('SELECT generation, rotated_at FROM refresh_tokens WHERE token_hash = ?')
        .bind(sha256hex(token))
        .first();
      assert.deepEqual(row, { generation: 0, rotated_at: null });
    });

    test('refresh_token_in_body: token in the body, no Set-Cookie', async () => {
      const email = uniqueEmail();
      const res = await c.post('/auth/register', { email, password: PASSWORD, refresh_token_in_body: true });
      expectLoginResponse(res, 201, { email, inBody: true });
    });

    test('name may be null', async () => {
      const email = uniqueEmail();
      const res = await c.post('/auth/register', { email, password: PASSWORD, name: null });
      expectLoginResponse(res, 201, { email, inBody: false });
    });

    test('email is trimmed and lower-cased', async () => {
      const local = uniqueEmail('MiXeD');
      const res = await c.post('/auth/register', { email: `  ${local.toUpperCase()}\t`, password: PASSWORD });
      expectLoginResponse(res, 201, { email: local.toLowerCase(), inBody: false });
    });

    test('duplicate email, also in another case and with whitespace → 409 email_taken', async () => {
      const email = uniqueEmail('dup');
      await registerUser(c, { email });
      expectError(await c.post('/auth/register', { email, password: PASSWORD }), 409, 'email_taken');
      expectError(
        await c.post('/auth/register', { email: ` ${email.toUpperCase()} `, password: 'another password' }),
        409,
        'email_taken',
      );
      const n = await w.db.prepare('SELECT count(*) AS n FROM users WHERE email = ?').bind(email).first('n');
      assert.equal(n, 1);
    });

    test('password length: 7 → 400 weak_password, 8 and 256 ok, 257 → 400 weak_password', async () => {
      expectError(await c.post('/auth/register', { email: uniqueEmail(), password: 'a'.repeat(7) }), 400, 'weak_password');
      expectError(await c.post('/auth/register', { email: uniqueEmail(), password: '' }), 400, 'weak_password');
      expectError(await c.post('/auth/register', { email: uniqueEmail(), password: 'b'.repeat(257) }), 400, 'weak_password');
      expectStatus(await c.post('/auth/register', { email: uniqueEmail(), password: 'c'.repeat(8) }), 201);
      expectStatus(await c.post('/auth/register', { email: uniqueEmail(), password: 'd'.repeat(256) }), 201);
    });

    test('password length counts characters, not bytes', async () => {
      // 7 characters, 14 bytes of UTF-8: too short. 8 characters of 2 bytes each: fine.
      expectError(await c.post('/auth/register', { email: uniqueEmail(), password: 'é'.repeat(7) }), 400, 'weak_password');
      const email = uniqueEmail();
      expectStatus(await c.post('/auth/register', { email, password: 'ü'.repeat(8) }), 201);
      await loginUser(c, email, 'ü'.repeat(8));
    });

    test('bad e-mail addresses → 400 bad_request', async () => {
      const bad = [
        'no-at-sign',
        'two@@example.com',
        '@example.com',
        'ada@',
        'ada lovelace@example.com',
        'ada@exa mple.com',
        '',
        '   ',
        `${'a'.repeat(245)}@example.com`, // 257 characters
      ];
      for (const email of bad) {
        const err = expectError(await c.post('/auth/register', { email, password: PASSWORD }), 400, 'bad_request');
        assert.match(err.message, /email/i, `message should name the field: ${err.message}`);
      }
    });

    test('e-mail length: 254 characters are fine, 255 → 400 bad_request', async () => {
      const domain = '@example.com';
      const ok = `${'a'.repeat(254 - domain.length)}${domain}`;
      assert.equal(ok.length, 254);
      const res = await c.post('/auth/register', { email: ok, password: PASSWORD });
      expectLoginResponse(res, 201, { email: ok, inBody: false });
      const long = `${'b'.repeat(255 - domain.length)}${domain}`;
      expectError(await c.post('/auth/register', { email: long, password: PASSWORD }), 400, 'bad_request');
    });

    test('limits count characters: 200-character name and 256-character password of 2-byte characters', async () => {
      const email = uniqueEmail();
      const res = await c.post('/auth/register', { email, password: 'ß'.repeat(256), name: 'é'.repeat(200) });
      expectLoginResponse(res, 201, { email, name: 'é'.repeat(200), inBody: false });
      await loginUser(c, email, 'ß'.repeat(256));
    });

    test('concurrent registrations of one e-mail: one 201, the rest 409 email_taken', async () => {
      const email = uniqueEmail('race');
      const results = await Promise.all(
        Array.from({ length: 6 }, (_, i) => c.post('/auth/register', { email, password: `${PASSWORD} ${i}` })),
      );
      const created = results.filter((r) => r.status === 201);
      assert.equal(created.length, 1, results.map((r) => r.describe()).join('\n'));
      for (const r of results.filter((x) => x.status !== 201)) expectError(r, 409, 'email_taken');
      const n = await w.db.prepare('SELECT count(*) AS n FROM users WHERE email = ?').bind(email).first('n');
      assert.equal(n, 1);
    });

    test('name longer than 200 characters → 400 bad_request; 200 is fine', async () => {
      const err = expectError(
        await c.post('/auth/register', { email: uniqueEmail(), password: PASSWORD, name: 'n'.repeat(201) }),
        400,
        'bad_request',
      );
      assert.match(err.message, /name/i);
      const email = uniqueEmail();
      const res = await c.post('/auth/register', { email, password: PASSWORD, name: 'n'.repeat(200) });
      expectLoginResponse(res, 201, { email, name: 'n'.repeat(200), inBody: false });
    });

    test('no user row is written for rejected registrations', async () => {
      const email = uniqueEmail('rejected');
      expectError(await c.post('/auth/register', { email, password: 'short' }), 400, 'weak_password');
      const n = await w.db.prepare('SELECT count(*) AS n FROM users WHERE email = ?').bind(email).first('n');
      assert.equal(n, 0);
    });
  });

  describe('login', () => {
    let email;
    before(async () => {
      email = uniqueEmail('login');
      await registerUser(c, { email, name: 'Grace' });
    });

    test('200 with the login response (cookie mode)', async () => {
      const res = await c.post('/auth/login', { email, password: PASSWORD });
      expectLoginResponse(res, 200, { email, name: 'Grace', inBody: false });
      expectRefreshCookie(res);
    });

    test('200 in body mode, e-mail in another case', async () => {
      const res = await c.post('/auth/login', {
        email: ` ${email.toUpperCase()}`,
        password: PASSWORD,
        refresh_token_in_body: true,
      });
      expectLoginResponse(res, 200, { email, name: 'Grace', inBody: true });
    });

    test('each login starts a new refresh family', async () => {
      const a = await loginUser(c, email);
      const b = await loginUser(c, email);
      assert.notEqual(a.refresh, b.refresh);
      const fam = async (t) =>
        w.db.prepare('SELECT family_id FROM refresh_tokens WHERE token_hash = ?').bind(sha256hex(t)).first('family_id');
      assert.notEqual(await fam(a.refresh), await fam(b.refresh));
    });

    test('the stored PBKDF2 hash verifies with Node\'s crypto', async () => {
      const stored = await w.db.prepare('SELECT password_hash FROM users WHERE email = ?').bind(email).first('password_hash');
      const m = /^\$pbkdf2-sha256\$i=(\d+),l=32\$([A-Za-z0-9+/]+)\$([A-Za-z0-9+/]+)$/.exec(stored);
      assert.ok(m, `not a PHC string with unpadded standard base64: ${stored}`);
      const derived = pbkdf2Sync(PASSWORD, Buffer.from(m[2], 'base64'), Number(m[1]), 32, 'sha256');
      assert.equal(derived.toString('base64').replace(/=+$/, ''), m[3]);
    });

    test('a hash made by Node (1,000 iterations) logs in and is upgraded to the configured count', async () => {
      const u = await registerUser(c);
      const salt = randomBytes(16);
      const hash = pbkdf2Sync(u.password, salt, 1000, 32, 'sha256');
      const b64 = (b) => b.toString('base64').replace(/=+$/, '');
      await w.db
        .prepare('UPDATE users SET password_hash = ? WHERE id = ?')
        .bind(`$pbkdf2-sha256$i=1000,l=32$${b64(salt)}$${b64(hash)}`, u.user.id)
        .run();
      await loginUser(c, u.email, u.password);
      const after = await w.db.prepare('SELECT password_hash FROM users WHERE id = ?').bind(u.user.id).first('password_hash');
      assert.match(after, /^\$pbkdf2-sha256\$i=10000,l=32\$/, `hash not upgraded: ${after}`);
      await loginUser(c, u.email, u.password);
      expectError(await c.post('/auth/login', { email: u.email, password: 'wrong password' }), 401, 'invalid_credentials');
    });

    test('wrong password and unknown e-mail → 401 invalid_credentials with the same body', async () => {
      const wrong = await c.post('/auth/login', { email, password: 'not the password' });
      expectError(wrong, 401, 'invalid_credentials');
      const unknown = await c.post('/auth/login', { email: uniqueEmail('nobody'), password: PASSWORD });
      expectError(unknown, 401, 'invalid_credentials');
      assert.deepEqual(unknown.body, wrong.body);
      assert.equal(wrong.setCookies.length, 0);
      assert.equal(unknown.setCookies.length, 0);
    });
  });

  describe('me', () => {
    test('200 { user } with the access token', async () => {
      const email = uniqueEmail('me');
      const u = await registerUser(c, { email, name: 'Me' });
      const res = await c.get('/auth/me', { bearer: u.access });
      expectStatus(res, 200);
      expectJson(res);
      assert.deepEqual(res.body, { user: u.user });
      assert.deepEqual(res.body.user, { id: u.user.id, email, name: 'Me', roles: ['user'] });
    });

    test('no Authorization → 401 no_auth with WWW-Authenticate: Bearer', async () => {
      expectError(await c.get('/auth/me'), 401, 'no_auth', { bearer: true });
    });
  });

  describe('refresh', () => {
    test('via cookie: new cookie, no token in the body, old token rotated', async () => {
      const u = await registerUser(c, { inBody: false });
      const old = u.refresh;
      const res = await c.request('POST', '/auth/refresh', { cookie: old, csrf: u.csrf });
      expectLoginResponse(res, 200, { email: u.email, inBody: false });
      const next = expectRefreshCookie(res);
      assert.notEqual(next, old);
      const oldRow = await w.db
        .prepare('SELECT rotated_at, successor_hash FROM refresh_tokens WHERE token_hash = ?')
        .bind(sha256hex(old))
        .first();
      assert.notEqual(oldRow.rotated_at, null, 'old token should be rotated');
      assert.equal(oldRow.successor_hash, sha256hex(next));
      const newRow = await w.db
        .prepare('SELECT generation, rotated_at FROM refresh_tokens WHERE token_hash = ?')
        .bind(sha256hex(next))
        .first();
      assert.deepEqual(newRow, { generation: 1, rotated_at: null });
      const me = await c.get('/auth/me', { bearer: res.body.access_token });
      expectStatus(me, 200);
    });

    test('via cookie with an empty JSON body', async () => {
      const u = await registerUser(c, { inBody: false });
      const res = await c.post('/auth/refresh', {}, { cookie: u.refresh, csrf: u.csrf });
      expectLoginResponse(res, 200, { email: u.email, inBody: false });
      expectRefreshCookie(res);
    });

    test('via body: new token in the body, no cookie', async () => {
      const u = await registerUser(c);
      const res = await refreshBody(c, u.refresh);
      const b = expectLoginResponse(res, 200, { email: u.email, inBody: true });
      assert.notEqual(b.refresh_token, u.refresh);
      assert.notEqual(b.access_token, u.access);
      const again = await refreshBody(c, b.refresh_token);
      const b2 = expectLoginResponse(again, 200, { email: u.email, inBody: true });
      assert.notEqual(b2.refresh_token, b.refresh_token);
      const gen = await w.db
        .prepare('SELECT generation FROM refresh_tokens WHERE token_hash = ?')
        .bind(sha256hex(b2.refresh_token))
        .first('generation');
      assert.equal(gen, 2);
    });

    test('body wins over cookie when both are present', async () => {
      const a = await registerUser(c);
      const b = await registerUser(c);
      const res = await c.post('/auth/refresh', { refresh_token: a.refresh }, { cookie: b.refresh });
      const body = expectLoginResponse(res, 200, { email: a.email, inBody: true });
      assert.equal(body.user.id, a.user.id);
      // b's token was not touched.
      const row = await w.db
        .prepare('SELECT rotated_at FROM refresh_tokens WHERE token_hash = ?')
        .bind(sha256hex(b.refresh))
        .first();
      assert.equal(row.rotated_at, null);
    });

    test('the refresh cookie is found among other cookies', async () => {
      const u = await registerUser(c, { inBody: false });
      const res = await c.request('POST', '/auth/refresh', {
        headers: {
          cookie: `theme=dark; ${COOKIE_NAME}=${u.refresh}; other=${'x'.repeat(40)}`,
          'content-type': 'application/json',
          origin: SITE_ORIGIN,
          'x-csrf-token': u.csrf,
        },
      });
      expectLoginResponse(res, 200, { email: u.email, inBody: false });
      expectRefreshCookie(res);
    });

    test('a cookie-driven refresh or logout without a JSON content type → 415, session untouched', async () => {
      const u = await registerUser(c, { inBody: false });
      for (const path of ['/auth/refresh', '/auth/logout']) {
        const bare = await c.request('POST', path, { cookie: u.refresh, csrf: u.csrf, contentType: null });
        expectError(bare, 415, 'unsupported_media_type');
      }
      const row = await w.db.prepare('SELECT rotated_at FROM refresh_tokens WHERE token_hash = ?').bind(sha256hex(u.refresh)).first();
      assert.equal(row.rotated_at, null);
      expectLoginResponse(await c.request('POST', '/auth/refresh', { cookie: u.refresh, csrf: u.csrf }), 200, { email: u.email, inBody: false });
    });

    test('two refresh cookies (one planted by a sibling subdomain) → 401 invalid_refresh_token', async () => {
      const u = await registerUser(c, { inBody: false });
      const planted = `ghr_${'A'.repeat(43)}`;
      const res = await c.request('POST', '/auth/refresh', {
        headers: { cookie: `${COOKIE_NAME}=${planted}; ${COOKIE_NAME}=${u.refresh}`, 'content-type': 'application/json', origin: SITE_ORIGIN, 'x-csrf-token': u.csrf },
      });
      expectError(res, 401, 'invalid_refresh_token');
    });

    test('a refresh family past its absolute expiry or idle timeout → 401 invalid_refresh_token', async () => {
      const a = await registerUser(c);
      const b = await registerUser(c);
      const q = (set) =>
        `UPDATE refresh_families SET ${set} WHERE id = (SELECT family_id FROM refresh_tokens WHERE token_hash = ?)`;
      const now = Date.now();
      await w.db.prepare(q('expires_at = ?')).bind(now - 1000, sha256hex(a.refresh)).run();
      // Idle: last used 8 days ago (default idle timeout 7 days), absolute end still far away.
      await w.db.prepare(q('last_used_at = ?')).bind(now - 8 * 86400 * 1000, sha256hex(b.refresh)).run();
      expectError(await refreshBody(c, a.refresh), 401, 'invalid_refresh_token');
      expectError(await refreshBody(c, b.refresh), 401, 'invalid_refresh_token');
      // A family used 6 days ago is still fine.
      const d = await registerUser(c);
      await w.db.prepare(q('last_used_at = ?')).bind(now - 6 * 86400 * 1000, sha256hex(d.refresh)).run();
      expectStatus(await refreshBody(c, d.refresh), 200);
    });

    test('a disabled user cannot refresh', async () => {
      const u = await registerUser(c);
      await w.db.prepare('UPDATE users SET disabled = 1 WHERE id = ?').bind(u.user.id).run();
      const res = await refreshBody(c, u.refresh);
      assert.equal(res.status, 401, res.describe());
    });

    test('nothing at all → 401 no_auth (empty body, {} and no content type)', async () => {
      expectError(await c.request('POST', '/auth/refresh'), 401, 'no_auth');
      expectError(await c.post('/auth/refresh', {}), 401, 'no_auth');
    });

    test('unknown token → 401 invalid_refresh_token (body and cookie)', async () => {
      const fake = Buffer.alloc(32, 7).toString('base64url');
      expectError(await refreshBody(c, fake), 401, 'invalid_refresh_token');
      expectError(await c.request('POST', '/auth/refresh', { cookie: fake }), 401, 'invalid_refresh_token');
      expectError(await refreshBody(c, 'x'), 401, 'invalid_refresh_token');
    });
  });

  describe('logout', () => {
    test('cookie mode: 204, cookie cleared, the family is revoked', async () => {
      const u = await registerUser(c, { inBody: false });
      const res = await c.request('POST', '/auth/logout', { cookie: u.refresh, csrf: u.csrf });
      expectStatus(res, 204);
      assert.equal(res.text, '');
      expectClearedCookie(res);
      expectError(await c.request('POST', '/auth/refresh', { cookie: u.refresh, csrf: u.csrf }), 401, 'invalid_refresh_token');
      expectError(await refreshBody(c, u.refresh), 401, 'invalid_refresh_token');
      const fam = await w.db
        .prepare(
          'SELECT f.revoked_at, f.revoke_reason FROM refresh_families f JOIN refresh_tokens t ON t.family_id = f.id WHERE t.token_hash = ?',
        )
        .bind(sha256hex(u.refresh))
        .first();
      assert.notEqual(fam.revoked_at, null);
      assert.equal(fam.revoke_reason, 'logout');
    });

    test('body mode: 204, the whole family (also older rotated tokens) is dead', async () => {
      const u = await registerUser(c);
      const r1 = await refreshBody(c, u.refresh);
      expectStatus(r1, 200);
      const newest = r1.body.refresh_token;
      const res = await c.post('/auth/logout', { refresh_token: newest });
      expectStatus(res, 204);
      expectClearedCookie(res);
      expectError(await refreshBody(c, newest), 401, 'invalid_refresh_token');
      const after = await refreshBody(c, u.refresh);
      assert.equal(after.status, 401, after.describe());
      // Other sessions of the same user are untouched.
      const other = await loginUser(c, u.email);
      expectStatus(await refreshBody(c, other.refresh), 200);
    });

    test('idempotent, and fine without any token', async () => {
      const u = await registerUser(c);
      expectStatus(await c.post('/auth/logout', { refresh_token: u.refresh }), 204);
      const again = await c.post('/auth/logout', { refresh_token: u.refresh });
      expectStatus(again, 204);
      expectClearedCookie(again);
      const none = await c.request('POST', '/auth/logout');
      expectStatus(none, 204);
      expectClearedCookie(none);
      expectStatus(await c.post('/auth/logout', {}), 204);
      expectStatus(await c.post('/auth/logout', { refresh_token: 'unknown-token' }), 204);
    });
  });
});

describe('registration closed by default', () => {
  let w;
  let c;
  const key = generateSigningKey();
  before(async () => {
    // No REGISTRATION var at all: the worker's default must be "closed".
    w = await startWorker({ vars: { JWT_SIGNING_KEY: key.d, PBKDF2_ITERATIONS: '10000' } });
    c = client(w.url);
  });
  after(() => w?.stop());

  test('POST /auth/register → 403 registration_closed, nothing written', async () => {
    const email = uniqueEmail('closed');
    expectError(await c.post('/auth/register', { email, password: PASSWORD }), 403, 'registration_closed');
    const n = await w.db.prepare('SELECT count(*) AS n FROM users').first('n');
    assert.equal(n, 0);
  });

  test('login still answers (invalid_credentials for an unknown user)', async () => {
    expectError(await c.post('/auth/login', { email: uniqueEmail(), password: PASSWORD }), 401, 'invalid_credentials');
  });
});

describe('registration closed via wrangler.toml [vars]', () => {
  let w;
  before(async () => {
    const key = generateSigningKey();
    w = await startWorker({ wranglerVars: true, vars: { JWT_SIGNING_KEY: key.d, PBKDF2_ITERATIONS: '10000' } });
  });
  after(() => w?.stop());

  test('REGISTRATION = "closed" → 403 registration_closed', async () => {
    const res = await client(w.url).post('/auth/register', { email: uniqueEmail(), password: PASSWORD });
    expectError(res, 403, 'registration_closed');
  });
});
