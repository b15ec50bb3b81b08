// API keys in workerd with local D1: minting, authentication, scope, revocation on the next
// request, expiry, owner checks, and D1 holding only HMAC hashes.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { client, expectError, expectStatus, openVars, sleep } from '../support/http.mjs';
import { PEPPER, keyHash, mintKey, userWithRoles } from '../support/admin.mjs';
import { generateSigningKey, startWorker } from '../support/worker.mjs';

describe('API keys', () => {
  let w;
  let c;
  let admin;
  let editor;
  before(async () => {
    w = await startWorker({ vars: openVars(generateSigningKey(), { API_KEY_PEPPER: PEPPER }) });
    c = client(w.url);
    admin = await userWithRoles(w, c, ['admin', 'editor', 'user']);
    editor = await userWithRoles(w, c, ['editor', 'user']);
  });
  after(() => w?.stop());

  test('a minted key is shown once, stored only as its HMAC, and authenticates as its owner', async () => {
    const { key, api_key: view } = await mintKey(c, admin.access, {
      owner_user_id: editor.id,
      label: 'deploy bot',
      role: 'editor',
      scopes: ['cms-read'],
    });
    assert.match(key, /^gk_[a-z2-7]{52}$/);
    assert.equal(view.owner_user_id, editor.id);
    assert.equal(view.created_by, admin.id);
    assert.equal(view.role, 'editor');
    assert.deepEqual(view.scopes, ['cms-read']);
    assert.ok(!('key_hash' in view) && !JSON.stringify(view).includes(key.slice(3)));

    const row = await w.db.prepare('SELECT * FROM api_keys WHERE id = ?1').bind(view.id).first();
    assert.equal(row.key_hash, keyHash(key));
    for (const value of Object.values(row)) {
      assert.ok(!String(value).includes(key.slice(3, 20)), 'the key is stored in plaintext');
    }
    // Nowhere else either: not in the audit log, not in any table.
    for (const table of ['users', 'refresh_families', 'refresh_tokens', 'audit_events', 'api_keys', 'rate_limits']) {
      const { results } = await w.db.prepare(`SELECT * FROM ${table}`).all();
      assert.ok(!JSON.stringify(results).includes(key.slice(3)), `the key appears in ${table}`);
    }
    assert.ok(!w.logs().includes(key.slice(3)), 'the key appears in the log');

    // Listing never shows it again.
    const list = await c.get(`/admin/api-keys?owner_user_id=${editor.id}`, { bearer: admin.access });
    expectStatus(list, 200);
    assert.deepEqual(list.body.api_keys.map((k) => k.id), [view.id]);
    assert.ok(!list.text.includes(key.slice(3)) && !list.text.includes(row.key_hash));

    // A non-admin role: the admin API refuses it by role, sessions refuse it by scope.
    expectError(await c.get('/admin/users', { bearer: key }), 403, 'insufficient_role');
    expectError(await c.get('/auth/sessions', { bearer: key }), 403, 'scope_violation');
    const used = await w.db.prepare('SELECT last_used_at FROM api_keys WHERE id = ?1').bind(view.id).first();
    assert.ok(used.last_used_at > 0, 'last_used_at not written');
    // Written at most once a minute: a second use right away leaves it.
    await c.get('/admin/users', { bearer: key });
    const again = await w.db.prepare('SELECT last_used_at FROM api_keys WHERE id = ?1').bind(view.id).first();
    assert.equal(again.last_used_at, used.last_used_at);
  });

  test('an admin key reaches the admin API until it is revoked: the next request fails', async () => {
    const { key, api_key: view } = await mintKey(c, admin.access, { label: 'ops', role: 'admin', scopes: [] });
    expectStatus(await c.get('/admin/users', { bearer: key }), 200);
    const revoke = await c.request('DELETE', `/admin/api-keys/${view.id}`, { bearer: admin.access });
    expectStatus(revoke, 204);
    expectError(await c.get('/admin/users', { bearer: key }), 401, 'invalid_api_key');
    const listed = await c.get('/admin/api-keys', { bearer: admin.access });
    assert.ok(listed.body.api_keys.find((k) => k.id === view.id).revoked_at > 0);
    expectError(await c.request('DELETE', '/admin/api-keys/key_unknown', { bearer: admin.access }), 404, 'not_found');
  });

  test('an expired key, an unknown key and a malformed key are refused', async () => {
    const { key } = await mintKey(c, admin.access, { label: 'short', role: 'admin', scopes: [], expires_at: Date.now() + 1500 });
    expectStatus(await c.get('/admin/users', { bearer: key }), 200);
    await sleep(1700);
    expectError(await c.get('/admin/users', { bearer: key }), 401, 'invalid_api_key');
    expectError(await c.get('/admin/users', { bearer: `gk_${'a'.repeat(52)}` }), 401, 'invalid_api_key');
    expectError(await c.get('/admin/users', { bearer: 'gk_tooshort' }), 401, 'invalid_api_key');
  });

  test('an expiry past ten years ahead is refused and stores nothing, so listing keys still works', async () => {
    const before = await w.db.prepare('SELECT COUNT(*) AS n FROM api_keys').first();
    const now = Date.now();
    const raw = (expires) => c.request('POST', '/admin/api-keys', {
      bearer: admin.access,
      headers: { 'content-type': 'application/json' },
      body: `{"label":"far","role":"admin","scopes":[],"expires_at":${expires}}`,
    });
    // Above 2^53 (would not round-trip through D1), i64::MAX, and just past the ten-year cap.
    for (const expires of ['18014398509481984', '9223372036854775807', String(now + 3651 * 86_400_000)]) {
      const res = await raw(expires);
      expectError(res, 400, 'bad_request');
      assert.match(res.body.error.message, /expires_at/);
    }
    const after = await w.db.prepare('SELECT COUNT(*) AS n FROM api_keys').first();
    assert.equal(after.n, before.n);
    expectStatus(await c.get('/admin/api-keys', { bearer: admin.access }), 200);
    // Nine years ahead is fine.
    const { api_key: view } = await mintKey(c, admin.access, { label: 'long', role: 'admin', scopes: [], expires_at: now + 9 * 365 * 86_400_000 });
    const listed = await c.get('/admin/api-keys', { bearer: admin.access });
    expectStatus(listed, 200);
    assert.ok(listed.body.api_keys.some((k) => k.id === view.id));
    // The audit filters and cursor are bounded the same way.
    for (const q of ['since=9007199254740992', 'until=9223372036854775807', 'cursor=9007199254740992']) {
      expectError(await c.get(`/admin/audit?${q}`, { bearer: admin.access }), 400, 'bad_request');
    }
    expectStatus(await c.get('/admin/audit?since=0&until=9007199254740991&cursor=9007199254740991', { bearer: admin.access }), 200);
  });

  test('a key never carries a role its minter or owner lacks; a disabled owner stops it', async () => {
    const plain = await userWithRoles(w, c, ['user']);
    expectError(await c.post('/admin/api-keys', { owner_user_id: plain.id, label: 'x', role: 'editor', scopes: [] }, { bearer: admin.access }), 400, 'bad_request');
    expectError(await c.post('/admin/api-keys', { label: 'x', role: 'superuser', scopes: [] }, { bearer: admin.access }), 400, 'bad_request');
    expectError(await c.post('/admin/api-keys', { label: 'x', role: 'user', scopes: [] }, { bearer: plain.access }), 403, 'insufficient_role');
    const { key } = await mintKey(c, admin.access, { owner_user_id: plain.id, label: 'p', role: 'user', scopes: [] });
    expectError(await c.get('/auth/sessions', { bearer: key }), 403, 'scope_violation');
    expectStatus(await c.post(`/admin/users/${plain.id}/disable`, undefined, { bearer: admin.access }), 200);
    // The admin API re-reads the owner at once (the proxy within REVOCATION_DELAY_SECONDS:
    // revocation.test.mjs).
    expectError(await c.get('/admin/users', { bearer: key }), 401, 'invalid_api_key');
  });
});

describe('API keys without API_KEY_PEPPER', () => {
  test('minting is misconfigured and every key is refused', async () => {
    const w = await startWorker({ vars: openVars(generateSigningKey()) });
    try {
      const c = client(w.url);
      const admin = await userWithRoles(w, c, ['admin']);
      expectError(await c.post('/admin/api-keys', { label: 'x', role: 'admin', scopes: [] }, { bearer: admin.access }), 500, 'misconfigured');
      expectError(await c.get('/admin/users', { bearer: `gk_${'a'.repeat(52)}` }), 401, 'invalid_api_key');
      expectStatus(await c.get('/admin/users', { bearer: admin.access }), 200);
    } finally {
      await w.stop();
    }
  });
});
