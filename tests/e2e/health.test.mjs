// /healthz and /readyz, and what happens when D1 has no schema.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { PASSWORD, client, expectError, expectJson, expectStatus, openVars, uniqueEmail } from '../support/http.mjs';
import { nowSeconds, signEdDSA } from '../support/jwt.mjs';
import { generateSigningKey, startWorker } from '../support/worker.mjs';

const SQL_WORDS = /select|insert|update|delete from|table|sqlite|d1_|no such|constraint|refresh_tokens|refresh_families|audit_events|users|SQL/i;

describe('health on a migrated worker', () => {
  let w;
  before(async () => {
    w = await startWorker({ vars: openVars(generateSigningKey()) });
  });
  after(() => w?.stop());

  test('GET /healthz → 200 {status:"ok"}', async () => {
    const res = await client(w.url).get('/healthz');
    expectStatus(res, 200);
    expectJson(res);
    assert.deepEqual(res.body, { status: 'ok' });
  });

  test('GET /readyz → 200 {status:"ready"}', async () => {
    const res = await client(w.url).get('/readyz');
    expectStatus(res, 200);
    expectJson(res);
    assert.deepEqual(res.body, { status: 'ready' });
  });

  test('the harness applied the schema: the tables exist in the worker\'s D1', async () => {
    const { results } = await w.db.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").all();
    const names = results.map((r) => r.name);
    for (const t of ['users', 'refresh_families', 'refresh_tokens', 'audit_events', 'd1_migrations']) {
      assert.ok(names.includes(t), `table ${t} missing: ${names}`);
    }
  });
});

describe('a worker whose D1 has no schema (migrate: false)', () => {
  let w;
  let c;
  const key = generateSigningKey();
  before(async () => {
    w = await startWorker({ vars: openVars(key), migrate: false });
    c = client(w.url);
  });
  after(() => w?.stop());

  test('the harness really left D1 empty', async () => {
    const { results } = await w.db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'users'").all();
    assert.deepEqual(results, []);
  });

  test('GET /healthz still → 200 (never touches storage)', async () => {
    const res = await c.get('/healthz');
    expectStatus(res, 200);
    assert.deepEqual(res.body, { status: 'ok' });
  });

  test('GET /readyz → 503 unavailable', async () => {
    const res = await c.get('/readyz');
    const err = expectError(res, 503, 'unavailable');
    assert.doesNotMatch(err.message, SQL_WORDS, `message reveals SQL: ${err.message}`);
  });

  test('POST /auth/login → 500 internal without SQL in the message', async () => {
    const res = await c.post('/auth/login', { email: uniqueEmail(), password: PASSWORD });
    const err = expectError(res, 500, 'internal');
    assert.doesNotMatch(err.message, SQL_WORDS, `message reveals SQL: ${err.message}`);
    assert.doesNotMatch(res.text, /no such table/i);
  });

  test('POST /auth/register and /auth/refresh → 500 internal without SQL', async () => {
    for (const [path, json] of [
      ['/auth/register', { email: uniqueEmail(), password: PASSWORD }],
      // Shaped like a real refresh token ("ghr_" + 43 base64url characters), so that only the
      // lookup can fail.
      ['/auth/refresh', { refresh_token: `ghr_${'A'.repeat(43)}` }],
    ]) {
      const res = await c.post(path, json);
      const err = expectError(res, 500, 'internal');
      assert.doesNotMatch(err.message, SQL_WORDS, `${path}: message reveals SQL: ${err.message}`);
    }
  });

  test('GET /auth/me with a valid token → 500 internal (the user cannot be read)', async () => {
    const now = nowSeconds();
    // iss and aud are the worker's defaults ("gatehouse"), as in tokens it issues itself.
    const t = signEdDSA(
      { alg: 'EdDSA', typ: 'JWT', kid: key.kid },
      {
        iss: 'gatehouse',
        aud: 'gatehouse',
        sub: 'usr_aaaaaaaaaaaaaaaaaaaaaaaaaa',
        iat: now,
        exp: now + 60,
        jti: 'j'.repeat(26),
        roles: ['user'],
      },
      key.privateKey,
    );
    const err = expectError(await c.get('/auth/me', { bearer: t }), 500, 'internal');
    assert.doesNotMatch(err.message, SQL_WORDS);
  });
});
