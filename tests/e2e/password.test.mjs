// POST /auth/password: a password change revokes the user's other sessions in D1.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { client, expectError, expectStatus, loginUser, openVars, refreshBody, registerUser, sha256hex } from '../support/http.mjs';
import { decodeJwt } from '../support/jwt.mjs';
import { generateSigningKey, startWorker } from '../support/worker.mjs';

describe('password change', () => {
  let w;
  let c;
  before(async () => {
    w = await startWorker({ vars: openVars(generateSigningKey()) });
    c = client(w.url);
  });
  after(() => w?.stop());

  const change = (access, json) => c.post('/auth/password', json, { headers: { authorization: `Bearer ${access}` } });

  test('revokes the other sessions, keeps the caller\'s, and only the new password works', async () => {
    const u = await registerUser(c);
    const other = await loginUser(c, u.email);
    const sid = decodeJwt(u.access).payload.sid;
    assert.match(sid, /^fam_[a-z2-7]{26}$/);

    expectError(await change(u.access, { current_password: 'wrong password', new_password: 'new password!' }), 401, 'invalid_credentials');
    const res = await change(u.access, { current_password: u.password, new_password: 'new password!' });
    expectStatus(res, 200);
    assert.deepEqual(res.body, { revoked_sessions: 1 });

    expectStatus(await refreshBody(c, u.refresh), 200);
    expectError(await refreshBody(c, other.refresh), 401, 'invalid_refresh_token');
    const row = await w.db
      .prepare('SELECT f.revoke_reason FROM refresh_tokens t JOIN refresh_families f ON f.id = t.family_id WHERE t.token_hash = ?1')
      .bind(sha256hex(other.refresh))
      .first();
    assert.equal(row.revoke_reason, 'password_change');
    expectError(await c.post('/auth/login', { email: u.email, password: u.password }), 401, 'invalid_credentials');
    await loginUser(c, u.email, 'new password!');
    const ev = await w.db.prepare("SELECT count(*) AS n FROM audit_events WHERE kind = 'password_changed'").first();
    assert.equal(ev.n, 1);
  });
});
