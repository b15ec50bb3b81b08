// Refresh token rotation: the grace window, reuse detection and concurrent refreshes.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import {
  client,
  expectError,
  expectStatus,
  openVars,
  refreshBody,
  registerUser,
  sha256hex,
  sleep,
} from '../support/http.mjs';
import { generateSigningKey, startWorker } from '../support/worker.mjs';

async function familyOf(db, token) {
  return db
    .prepare(
      'SELECT f.* FROM refresh_families f JOIN refresh_tokens t ON t.family_id = f.id WHERE t.token_hash = ?',
    )
    .bind(sha256hex(token))
    .first();
}

describe('grace window (default REFRESH_GRACE_SECONDS = 10)', () => {
  let w;
  let c;
  before(async () => {
    w = await startWorker({ vars: openVars(generateSigningKey()) });
    c = client(w.url);
  });
  after(() => w?.stop());

  test('the same token presented again at once gets the SAME successor (body mode)', async () => {
    const u = await registerUser(c);
    const first = await refreshBody(c, u.refresh);
    expectStatus(first, 200);
    const second = await refreshBody(c, u.refresh);
    expectStatus(second, 200);
    assert.equal(second.body.refresh_token, first.body.refresh_token, 'grace replay must yield the same successor');
    assert.notEqual(first.body.refresh_token, u.refresh);
    expectStatus(await c.get('/auth/me', { bearer: second.body.access_token }), 200);
    // The family stays alive and the successor still works.
    const fam = await familyOf(w.db, u.refresh);
    assert.equal(fam.revoked_at, null);
    const third = await refreshBody(c, first.body.refresh_token);
    expectStatus(third, 200);
    assert.notEqual(third.body.refresh_token, first.body.refresh_token);
  });

  test('the same in cookie mode: the replay gets the same successor cookie', async () => {
    const u = await registerUser(c, { inBody: false });
    const first = await c.request('POST', '/auth/refresh', { cookie: u.refresh, csrf: u.csrf });
    expectStatus(first, 200);
    const second = await c.request('POST', '/auth/refresh', { cookie: u.refresh, csrf: u.csrf });
    expectStatus(second, 200);
    assert.ok(first.cookie()?.value, first.describe());
    assert.equal(second.cookie()?.value, first.cookie().value);
    assert.equal(second.body.refresh_token, undefined);
  });

  test('exactly one live token per family after a grace replay', async () => {
    const u = await registerUser(c);
    expectStatus(await refreshBody(c, u.refresh), 200);
    expectStatus(await refreshBody(c, u.refresh), 200);
    const fam = await familyOf(w.db, u.refresh);
    const { results } = await w.db
      .prepare('SELECT generation FROM refresh_tokens WHERE family_id = ? AND rotated_at IS NULL')
      .bind(fam.id)
      .all();
    assert.deepEqual(results.map((r) => r.generation), [1]);
  });

  test('20 concurrent refreshes of one token all get the same new token', async () => {
    const u = await registerUser(c);
    const results = await Promise.all(Array.from({ length: 20 }, () => refreshBody(c, u.refresh)));
    for (const r of results) expectStatus(r, 200);
    const successors = new Set(results.map((r) => r.body.refresh_token));
    assert.equal(successors.size, 1, `expected one successor, got ${successors.size}: ${[...successors].join(', ')}`);
    const [successor] = successors;
    assert.notEqual(successor, u.refresh);
    for (const r of results) {
      assert.equal(r.body.user.id, u.user.id);
      expectStatus(await c.get('/auth/me', { bearer: r.body.access_token }), 200);
    }
    const fam = await familyOf(w.db, u.refresh);
    assert.equal(fam.revoked_at, null, 'family must not be revoked by a concurrent refresh');
    assert.equal(fam.revoke_reason, null);
    const live = await w.db
      .prepare('SELECT token_hash, generation FROM refresh_tokens WHERE family_id = ? AND rotated_at IS NULL')
      .bind(fam.id)
      .all();
    assert.deepEqual(live.results, [{ token_hash: sha256hex(successor), generation: 1 }]);
    const total = await w.db.prepare('SELECT count(*) AS n FROM refresh_tokens WHERE family_id = ?').bind(fam.id).first('n');
    assert.equal(total, 2, 'one rotation, so two tokens in the family');
    const reused = await w.db
      .prepare("SELECT count(*) AS n FROM audit_events WHERE kind = 'refresh_token_reused' AND family_id = ?")
      .bind(fam.id)
      .first('n');
    assert.equal(reused, 0);
    // The new token works once more.
    const next = await refreshBody(c, successor);
    expectStatus(next, 200);
    assert.notEqual(next.body.refresh_token, successor);
  });

  test('20 concurrent cookie-mode refreshes also agree', async () => {
    const u = await registerUser(c, { inBody: false });
    const results = await Promise.all(
      Array.from({ length: 20 }, () => c.request('POST', '/auth/refresh', { cookie: u.refresh, csrf: u.csrf })),
    );
    for (const r of results) expectStatus(r, 200);
    const successors = new Set(results.map((r) => r.cookie()?.value));
    assert.equal(successors.size, 1, [...successors].join(', '));
    assert.ok([...successors][0]);
  });
});

describe('reuse after the grace window (REFRESH_GRACE_SECONDS = 1)', () => {
  let w;
  let c;
  before(async () => {
    w = await startWorker({ vars: openVars(generateSigningKey(), { REFRESH_GRACE_SECONDS: '1' }) });
    c = client(w.url);
  });
  after(() => w?.stop());

  test('an already-rotated token after 1.5 s → 401 refresh_token_reused, family revoked', async () => {
    const u = await registerUser(c);
    const r1 = await refreshBody(c, u.refresh);
    expectStatus(r1, 200);
    const r2 = await refreshBody(c, r1.body.refresh_token);
    expectStatus(r2, 200);
    const newest = r2.body.refresh_token;
    await sleep(1500);

    expectError(await refreshBody(c, u.refresh), 401, 'refresh_token_reused');
    // The newest token of that family is dead as well.
    expectError(await refreshBody(c, newest), 401, 'invalid_refresh_token');
    expectError(await c.request('POST', '/auth/refresh', { cookie: newest, csrf: u.csrf }), 401, 'invalid_refresh_token');

    const fam = await familyOf(w.db, u.refresh);
    assert.notEqual(fam.revoked_at, null);
    assert.equal(fam.revoke_reason, 'reuse');
    const events = await w.db
      .prepare("SELECT * FROM audit_events WHERE kind = 'refresh_token_reused' AND family_id = ?")
      .bind(fam.id)
      .all();
    assert.equal(events.results.length, 1, JSON.stringify(events.results));
    assert.equal(events.results[0].subject_user_id, u.user.id);
  });

  test('a replay inside the 1 s window still gets the same successor', async () => {
    const u = await registerUser(c);
    const a = await refreshBody(c, u.refresh);
    const b = await refreshBody(c, u.refresh);
    expectStatus(a, 200);
    expectStatus(b, 200);
    assert.equal(a.body.refresh_token, b.body.refresh_token);
  });

  test('a successor that is never used lives on after the grace window', async () => {
    const u = await registerUser(c);
    const a = await refreshBody(c, u.refresh);
    expectStatus(a, 200);
    await sleep(1500);
    const b = await refreshBody(c, a.body.refresh_token);
    expectStatus(b, 200);
  });

  test('reuse of a middle generation also revokes the family', async () => {
    const u = await registerUser(c);
    const r1 = await refreshBody(c, u.refresh);
    const r2 = await refreshBody(c, r1.body.refresh_token);
    expectStatus(r2, 200);
    await sleep(1500);
    expectError(await refreshBody(c, r1.body.refresh_token), 401, 'refresh_token_reused');
    expectError(await refreshBody(c, r2.body.refresh_token), 401, 'invalid_refresh_token');
    const fam = await familyOf(w.db, u.refresh);
    assert.equal(fam.revoke_reason, 'reuse');
  });

  test('reuse in one family leaves the user\'s other families alone', async () => {
    const u = await registerUser(c);
    const other = await c.post('/auth/login', { email: u.email, password: u.password, refresh_token_in_body: true });
    expectStatus(other, 200);
    expectStatus(await refreshBody(c, u.refresh), 200);
    await sleep(1500);
    expectError(await refreshBody(c, u.refresh), 401, 'refresh_token_reused');
    expectStatus(await refreshBody(c, other.body.refresh_token), 200);
  });
});
