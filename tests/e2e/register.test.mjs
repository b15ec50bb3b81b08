// Registration in the built worker: emails folded to one spelling and mixed-script look-alikes
// refused (the wasm build's Unicode tables), and REGISTRATION_ENUMERATION=hide answering a new
// and a taken email alike.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { PASSWORD, client, expectError, expectStatus, openVars, uniqueEmail } from '../support/http.mjs';
import { generateSigningKey, startWorker } from '../support/worker.mjs';

describe('look-alike emails', () => {
  let w;
  let c;
  before(async () => {
    w = await startWorker({ vars: openVars(generateSigningKey()) });
    c = client(w.url);
  });
  after(() => w?.stop());

  test('invisible characters, full-width forms and case are one account; login finds it', async () => {
    const local = uniqueEmail('lock').split('@')[0];
    const email = `${local}@example.com`;
    const first = await c.post('/auth/register', { email, password: PASSWORD, refresh_token_in_body: true });
    expectStatus(first, 201);
    const id = first.body.user.id;
    const fullWidth = [...local].map((ch) => (/[a-z0-9.]/.test(ch) ? String.fromCodePoint(ch.codePointAt(0) + 0xfee0) : ch)).join('');
    for (const lookAlike of [`${local.slice(0, 2)}\u200b${local.slice(2)}@example.com`, `\ufeff${email.toUpperCase()}\u00ad`, `${fullWidth}@example.com`]) {
      expectError(await c.post('/auth/register', { email: lookAlike, password: PASSWORD }), 409, 'email_taken');
      const login = await c.post('/auth/login', { email: lookAlike, password: PASSWORD, refresh_token_in_body: true });
      expectStatus(login, 200);
      assert.equal(login.body.user.id, id);
      assert.equal(login.body.user.email, email);
    }
  });

  test('a Cyrillic letter among Latin ones → 400 bad_request; one script throughout is fine', async () => {
    for (const lookAlike of ['l\u043eck@example.com', 'lock@\u0435xample.com']) {
      const res = await c.post('/auth/register', { email: lookAlike, password: PASSWORD });
      expectError(res, 400, 'bad_request');
      assert.match(res.body.error.message, /^email: mixes scripts/);
    }
    const cyrillic = `иван${Date.now()}@пример.рф`;
    const res = await c.post('/auth/register', { email: cyrillic, password: PASSWORD, refresh_token_in_body: true });
    expectStatus(res, 201);
    assert.equal(res.body.user.email, cyrillic);
  });
});

describe('REGISTRATION_ENUMERATION=hide', () => {
  let w;
  let c;
  before(async () => {
    w = await startWorker({ vars: openVars(generateSigningKey(), { REGISTRATION_ENUMERATION: 'hide' }) });
    c = client(w.url);
  });
  after(() => w?.stop());

  test('a new and a taken email get the same 202, no session; the new user logs in next', async () => {
    const email = uniqueEmail();
    const fresh = await c.post('/auth/register', { email, password: PASSWORD });
    const taken = await c.post('/auth/register', { email, password: 'another long password' });
    for (const res of [fresh, taken]) {
      expectStatus(res, 202);
      assert.deepEqual(res.body, { status: 'accepted' });
      assert.deepEqual(res.setCookies, []);
    }
    assert.equal(fresh.text, taken.text);
    expectStatus(await c.post('/auth/login', { email, password: PASSWORD }), 200);
    expectError(await c.post('/auth/login', { email, password: 'another long password' }), 401, 'invalid_credentials');
    const row = await w.db.prepare('SELECT count(*) AS n FROM users WHERE email = ?').bind(email).first();
    assert.equal(row.n, 1);
    expectError(await c.post('/auth/register', { email, password: 'short' }), 400, 'weak_password');
  });
});
