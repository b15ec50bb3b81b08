// Malformed requests: every one gets a precise 4xx, never a 5xx.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { PASSWORD, client, expectError, expectStatus, openVars, registerUser, uniqueEmail } from '../support/http.mjs';
import { generateSigningKey, startWorker } from '../support/worker.mjs';

describe('bad input', () => {
  let w;
  let c;
  before(async () => {
    w = await startWorker({ vars: openVars(generateSigningKey()) });
    c = client(w.url);
  });
  after(() => w?.stop());

  const json = { 'content-type': 'application/json' };
  const raw = (path, body, headers = json) => c.request('POST', path, { body, headers });

  test('malformed JSON → 400 invalid_json', async () => {
    for (const path of ['/auth/register', '/auth/login', '/auth/refresh', '/auth/logout']) {
      expectError(await raw(path, '{"email": "a@b.c", '), 400, 'invalid_json');
      expectError(await raw(path, 'not json at all'), 400, 'invalid_json');
    }
    expectError(await raw('/auth/login', '{"email":"a@b.c","password":"x"}}'), 400, 'invalid_json');
  });

  test('text/plain and form bodies → 415 unsupported_media_type', async () => {
    const body = JSON.stringify({ email: uniqueEmail(), password: PASSWORD });
    for (const path of ['/auth/register', '/auth/login', '/auth/refresh', '/auth/logout']) {
      expectError(await raw(path, body, { 'content-type': 'text/plain' }), 415, 'unsupported_media_type');
    }
    expectError(
      await raw('/auth/login', 'email=a%40b.c&password=x', { 'content-type': 'application/x-www-form-urlencoded' }),
      415,
      'unsupported_media_type',
    );
    // fetch adds text/plain;charset=UTF-8 to a string body without a content type.
    expectError(await c.request('POST', '/auth/login', { body }), 415, 'unsupported_media_type');
  });

  test('application/json with a charset parameter is fine', async () => {
    const email = uniqueEmail();
    const res = await raw('/auth/register', JSON.stringify({ email, password: PASSWORD }), {
      'content-type': 'application/json; charset=utf-8',
    });
    expectStatus(res, 201);
  });

  test('a JSON array, string, number or null → 400 bad_request', async () => {
    for (const body of ['[]', '[{"email":"a@b.c","password":"password1"}]', '"text"', '42', 'null', 'true']) {
      expectError(await raw('/auth/login', body), 400, 'bad_request');
      expectError(await raw('/auth/register', body), 400, 'bad_request');
    }
  });

  test('missing fields → 400 bad_request naming the field', async () => {
    let err = expectError(await c.post('/auth/login', { password: PASSWORD }), 400, 'bad_request');
    assert.match(err.message, /email/);
    err = expectError(await c.post('/auth/login', { email: uniqueEmail() }), 400, 'bad_request');
    assert.match(err.message, /password/);
    err = expectError(await c.post('/auth/register', { email: uniqueEmail() }), 400, 'bad_request');
    assert.match(err.message, /password/);
    err = expectError(await c.post('/auth/register', { password: PASSWORD }), 400, 'bad_request');
    assert.match(err.message, /email/);
    expectError(await c.post('/auth/register', {}), 400, 'bad_request');
  });

  test('wrong types → 400 bad_request naming the field', async () => {
    const cases = [
      ['/auth/login', { email: 42, password: PASSWORD }, /email/],
      ['/auth/login', { email: uniqueEmail(), password: 12345678 }, /password/],
      ['/auth/login', { email: ['a@b.c'], password: PASSWORD }, /email/],
      ['/auth/login', { email: null, password: PASSWORD }, /email/],
      ['/auth/login', { email: uniqueEmail(), password: PASSWORD, refresh_token_in_body: 'yes' }, /refresh_token_in_body/],
      ['/auth/register', { email: uniqueEmail(), password: PASSWORD, name: 7 }, /name/],
      ['/auth/register', { email: uniqueEmail(), password: { p: 1 } }, /password/],
      ['/auth/register', { email: uniqueEmail(), password: PASSWORD, refresh_token_in_body: 1 }, /refresh_token_in_body/],
      ['/auth/refresh', { refresh_token: 12345 }, /refresh_token/],
      ['/auth/logout', { refresh_token: true }, /refresh_token/],
      ['/auth/login', { email: uniqueEmail(), password: PASSWORD, otp: 123456 }, /otp/],
    ];
    for (const [path, body, field] of cases) {
      const err = expectError(await c.post(path, body), 400, 'bad_request');
      assert.match(err.message, field, `${path} ${JSON.stringify(body)}: ${err.message}`);
    }
    for (const body of ['[]', '"tok"']) {
      expectError(await raw('/auth/refresh', body), 400, 'bad_request');
    }
  });

  test('the second-factor endpoints: wrong bodies → 400 naming the field, never 5xx', async () => {
    const u = await registerUser(c);
    const cases = [
      ['POST', '/auth/mfa/totp/start', {}, /password/],
      ['POST', '/auth/mfa/totp/start', { password: 7 }, /password/],
      ['POST', '/auth/mfa/totp/confirm', { otp: null }, /otp/],
      ['POST', '/auth/mfa/totp/confirm', { otp: ['123456'] }, /otp/],
      ['DELETE', '/auth/mfa/totp', { password: false }, /password/],
      ['POST', '/auth/mfa/recovery-codes', { pw: PASSWORD }, /password/],
    ];
    for (const [method, path, json, field] of cases) {
      const err = expectError(await c.request(method, path, { json, bearer: u.access }), 400, 'bad_request');
      assert.match(err.message, field, `${method} ${path} ${JSON.stringify(json)}: ${err.message}`);
    }
    expectError(await c.request('POST', '/auth/mfa/totp/start', { body: 'password=x', bearer: u.access, headers: { 'content-type': 'application/x-www-form-urlencoded' } }), 415, 'unsupported_media_type');
    expectError(await c.request('POST', '/auth/mfa/totp/confirm', { body: '{', bearer: u.access, headers: { 'content-type': 'application/json' } }), 400, 'invalid_json');
  });

  test('70 KiB body → 413 payload_too_large', async () => {
    const big = JSON.stringify({ email: uniqueEmail(), password: PASSWORD, name: 'x'.repeat(70 * 1024) });
    for (const path of ['/auth/register', '/auth/login', '/auth/refresh', '/auth/logout']) {
      expectError(await raw(path, big), 413, 'payload_too_large');
    }
  });

  test('70 KiB body without Content-Length (chunked) → 413 payload_too_large', async () => {
    const chunk = new TextEncoder().encode(`{"email":"a@b.c","password":"${'p'.repeat(8 * 1024)}`);
    let sent = 0;
    const stream = new ReadableStream({
      pull(ctrl) {
        if (sent >= 9) {
          ctrl.enqueue(new TextEncoder().encode('"}'));
          ctrl.close();
          return;
        }
        ctrl.enqueue(sent === 0 ? chunk : new TextEncoder().encode('p'.repeat(8 * 1024)));
        sent += 1;
      },
    });
    const res = await c.request('POST', '/auth/login', { body: stream, headers: json });
    expectError(res, 413, 'payload_too_large');
  });

  test('a body just under the limit is not rejected for its size', async () => {
    const u = await registerUser(c);
    // 60 KiB of padding in an unknown member: not a size error.
    const body = JSON.stringify({ email: u.email, password: PASSWORD, padding: 'x'.repeat(60 * 1024) });
    const res = await raw('/auth/login', body);
    assert.notEqual(res.status, 413, res.describe());
    assert.ok(res.status < 500, res.describe());
  });

  test('odd refresh tokens → 401 invalid_refresh_token, never 5xx', async () => {
    for (const token of ['', ' ', 'ghr_', `ghr_${'A'.repeat(5000)}`, 'ghr_%00%ff', '\u0000', 'é'.repeat(50)]) {
      const res = await c.post('/auth/refresh', { refresh_token: token });
      assert.ok(res.status === 401 || res.status === 400, `${JSON.stringify(token.slice(0, 20))}: ${res.describe()}`);
      if (res.status === 401) expectError(res, 401, res.body.error.code === 'no_auth' ? 'no_auth' : 'invalid_refresh_token');
    }
    expectError(await c.post('/auth/refresh', { refresh_token: `ghr_${'B'.repeat(43)}` }), 401, 'invalid_refresh_token');
  });

  test('unknown path → 404 not_found', async () => {
    for (const [method, path] of [
      ['GET', '/'],
      ['GET', '/nope'],
      ['POST', '/auth/unknown'],
      ['GET', '/auth'],
      ['GET', '/auth/me/extra'],
      ['GET', '/.well-known/openid-configuration'],
      ['GET', '/__selftest/contract'],
      ['POST', '/__selftest/contract'],
    ]) {
      expectError(await c.request(method, path), 404, 'not_found');
    }
  });

  test('wrong method → 405 method_not_allowed with an Allow header', async () => {
    const cases = [
      ['GET', '/auth/login', 'POST'],
      ['PUT', '/auth/register', 'POST'],
      ['GET', '/auth/refresh', 'POST'],
      ['DELETE', '/auth/logout', 'POST'],
      ['POST', '/auth/me', 'GET'],
      ['POST', '/.well-known/jwks.json', 'GET'],
      ['POST', '/healthz', 'GET'],
      ['DELETE', '/readyz', 'GET'],
      ['POST', '/auth/mfa', 'GET'],
      ['GET', '/auth/mfa/totp', 'DELETE'],
      ['GET', '/auth/mfa/totp/start', 'POST'],
      ['PUT', '/auth/mfa/recovery-codes', 'POST'],
    ];
    for (const [method, path, allowed] of cases) {
      const res = await c.request(method, path);
      expectError(res, 405, 'method_not_allowed');
      const allow = (res.headers.get('allow') ?? '').split(',').map((s) => s.trim().toUpperCase());
      assert.ok(allow.includes(allowed), `${method} ${path}: Allow should list ${allowed}: ${res.describe()}`);
      assert.ok(!allow.includes(method), `${method} ${path}: Allow lists ${method}`);
    }
  });

  test('bearer scheme edge cases on /auth/me never 5xx', async () => {
    for (const value of ['Bearer', 'Bearer ', 'Basic dXNlcjpwYXNz', 'Bearer a b', `Bearer ${'A'.repeat(10000)}`]) {
      const res = await c.get('/auth/me', { headers: { authorization: value } });
      assert.equal(res.status, 401, `${value.slice(0, 30)}: ${res.describe()}`);
      assert.ok(['no_auth', 'invalid_token'].includes(res.body?.error?.code), res.describe());
    }
  });
});

describe('MAX_BODY_BYTES', () => {
  let w;
  let c;
  before(async () => {
    w = await startWorker({ vars: openVars(generateSigningKey(), { MAX_BODY_BYTES: '2048' }) });
    c = client(w.url);
  });
  after(() => w?.stop());

  test('a 3 KiB body → 413 payload_too_large; 1.5 KiB is fine', async () => {
    const big = { email: uniqueEmail(), password: PASSWORD, name: 'x'.repeat(3 * 1024) };
    expectError(await c.post('/auth/register', big), 413, 'payload_too_large');
    const email = uniqueEmail();
    const small = { email, password: PASSWORD, name: 'y'.repeat(150) , pad: 'z'.repeat(1300) };
    const res = await c.post('/auth/register', small);
    assert.notEqual(res.status, 413, res.describe());
    assert.ok(res.status < 500, res.describe());
  });
});
