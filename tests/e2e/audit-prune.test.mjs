// The audit log holds a row for every event kind, with actor, subject, IP and user agent and no
// secret; the scheduled handler (the Cron Trigger, run through Miniflare) prunes ended sessions,
// old audit rows and passed rate-limit windows, and nothing else.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { PASSWORD, client, expectError, expectStatus, loginUser, openVars, refreshBody, registerUser, sleep } from '../support/http.mjs';
import { PEPPER, mintKey, userWithRoles } from '../support/admin.mjs';
import { generateSigningKey, startWorker } from '../support/worker.mjs';

const KINDS = [
  'registered',
  'login_succeeded',
  'login_failed',
  'refresh_token_reused',
  'logout',
  'session_revoked',
  'password_changed',
  'role_changed',
  'user_disabled',
  'user_enabled',
  'api_key_minted',
  'api_key_revoked',
  'token_minted',
];

describe('audit log', () => {
  let w;
  let c;
  before(async () => {
    w = await startWorker({ vars: openVars(generateSigningKey(), { API_KEY_PEPPER: PEPPER, REFRESH_GRACE_SECONDS: '1' }) });
    c = client(w.url);
  });
  after(() => w?.stop());

  test('every event kind is recorded, with who, whom, IP and user agent, and no secret', async () => {
    const ua = { 'user-agent': 'audit-e2e/1.0' };
    const admin = await userWithRoles(w, c, ['admin', 'user']);
    const u = await registerUser(c);
    expectError(await c.post('/auth/login', { email: u.email, password: 'wrong password' }, { headers: ua }), 401, 'invalid_credentials');
    // Reuse: rotate, wait out the grace window, present the old token.
    const rotated = await refreshBody(c, u.refresh);
    expectStatus(rotated, 200);
    await sleep(1200);
    expectError(await refreshBody(c, u.refresh), 401, 'refresh_token_reused');
    const s2 = await loginUser(c, u.email);
    expectStatus(await c.post('/auth/logout', { refresh_token: s2.refresh }), 204);
    const s3 = await loginUser(c, u.email);
    const families = await c.get('/auth/sessions', { bearer: s3.access });
    expectStatus(await c.request('DELETE', `/auth/sessions/${families.body.sessions[0].id}`, { bearer: s3.access }), 204);
    const s4 = await loginUser(c, u.email);
    expectStatus(await c.post('/auth/password', { current_password: PASSWORD, new_password: 'new secret pw!' }, { bearer: s4.access, headers: ua }), 200);
    expectStatus(await c.put(`/admin/users/${u.user.id}/roles`, { roles: ['user', 'editor'] }, { bearer: admin.access, headers: ua }), 200);
    expectStatus(await c.post(`/admin/users/${u.user.id}/disable`, undefined, { bearer: admin.access }), 200);
    expectStatus(await c.post(`/admin/users/${u.user.id}/enable`, undefined, { bearer: admin.access }), 200);
    const { key, api_key: view } = await mintKey(c, admin.access, { owner_user_id: u.user.id, label: 'k', role: 'user', scopes: ['cms'] });
    expectStatus(await c.request('DELETE', `/admin/api-keys/${view.id}`, { bearer: admin.access }), 204);
    const s5 = await loginUser(c, u.email, 'new secret pw!');
    const minted = await c.post('/auth/token', { ttl: 60 }, { bearer: s5.access, headers: ua });
    expectStatus(minted, 200);

    const { results } = await w.db.prepare('SELECT * FROM audit_events WHERE subject_user_id = ?1 ORDER BY id').bind(u.user.id).all();
    const kinds = new Set(results.map((r) => r.kind));
    for (const kind of KINDS) assert.ok(kinds.has(kind), `no ${kind} event: ${[...kinds].join(', ')}`);
    for (const r of results) {
      assert.ok(r.at > 0 && r.actor_user_id, `${r.kind}: no time or actor`);
      assert.equal(r.ip, '127.0.0.1', `${r.kind}: ip`);
    }
    const byKind = (k) => results.filter((r) => r.kind === k);
    assert.equal(JSON.parse(byKind('refresh_token_reused')[0].detail).cause, 'rotated_token_replayed_after_grace');
    assert.equal(byKind('login_failed')[0].user_agent, 'audit-e2e/1.0');
    for (const k of ['role_changed', 'user_disabled', 'user_enabled', 'api_key_minted', 'api_key_revoked']) {
      assert.equal(byKind(k)[0].actor_user_id, admin.id, `${k}: actor is the admin`);
    }
    assert.deepEqual(JSON.parse(byKind('role_changed')[0].detail), { from: ['user'], to: ['user', 'editor'] });
    assert.equal(byKind('token_minted')[0].actor_user_id, u.user.id);
    assert.equal(JSON.parse(byKind('token_minted')[0].detail).ttl, 60);
    const all = JSON.stringify((await w.db.prepare('SELECT * FROM audit_events').all()).results);
    for (const secret of [PASSWORD, 'new secret pw!', 'wrong password', u.refresh, s2.refresh, u.access, key, key.slice(3), minted.body.access_token]) {
      assert.ok(!all.includes(secret), 'a secret is in the audit log');
    }
  });
});

describe('scheduled prune', () => {
  let w;
  let c;
  before(async () => {
    w = await startWorker({ vars: openVars(generateSigningKey(), { SESSION_RETENTION_DAYS: '7', AUDIT_RETENTION_DAYS: '30' }) });
    c = client(w.url);
  });
  after(() => w?.stop());

  const DAY = 86_400_000;
  const count = async (sql, ...args) => (await w.db.prepare(sql).bind(...args).first()).n;

  test('the Cron Trigger deletes ended sessions, old audit rows and passed windows, nothing else', async () => {
    const u = await registerUser(c); // a live session, created now
    const now = Date.now();
    const uid = u.user.id;
    const liveId = (await w.db.prepare('SELECT id FROM refresh_families WHERE user_id = ?1').bind(uid).first()).id;
    // Rows that ended long ago, written straight into D1.
    const fam = async (id, { created, expires, revoked = null }) => {
      await w.db.prepare('INSERT INTO refresh_families (id, user_id, created_at, last_used_at, expires_at, revoked_at) VALUES (?1, ?2, ?3, ?3, ?4, ?5)').bind(id, uid, created, expires, revoked).run();
      await w.db.prepare('INSERT INTO refresh_tokens (token_hash, family_id, generation, created_at) VALUES (?1, ?2, 0, ?3)').bind(`hash-${id}`, id, created).run();
    };
    await fam('fam_expired_long_ago', { created: now - 60 * DAY, expires: now - 30 * DAY });
    await fam('fam_revoked_long_ago', { created: now - 3 * DAY, expires: now + 27 * DAY, revoked: now - 8 * DAY });
    await fam('fam_revoked_yesterday', { created: now - 2 * DAY, expires: now + 28 * DAY, revoked: now - DAY });
    await fam('fam_idle_long_ago', { created: now - 20 * DAY, expires: now + 10 * DAY });
    await w.db.prepare("INSERT INTO audit_events (at, kind) VALUES (?1, 'old_event'), (?2, 'recent_event')").bind(now - 31 * DAY, now - 29 * DAY).run();
    await w.db.prepare("INSERT INTO rate_limits (key, window_start, count, expires_at) VALUES ('old', ?1, 3, ?2), ('current', ?3, 1, ?4)").bind(now - 10_000, now - 5_000, now, now + 600_000).run();
    // API keys (active, revoked, expired; all made 60 days ago) and a disabled user: never pruned.
    const key = (id, { expires = null, revoked = null }) => w.db
      .prepare("INSERT INTO api_keys (id, key_hash, label, owner_user_id, role, scopes, created_at, expires_at, last_used_at, revoked_at) VALUES (?1, ?2, 'k', ?3, 'user', '[]', ?4, ?5, ?4, ?6)")
      .bind(id, `hash-${id}`, uid, now - 60 * DAY, expires, revoked).run();
    await key('key_active', {});
    await key('key_revoked', { revoked: now - 59 * DAY });
    await key('key_expired', { expires: now - 59 * DAY });
    await w.db.prepare("INSERT INTO users (id, email, password_hash, roles, disabled, created_at, updated_at) VALUES ('usr_disabled', 'disabled@example.test', 'x', '[\"user\"]', 1, ?1, ?1)").bind(now - 60 * DAY).run();
    const keysAndUsersSurvive = async () => {
      const kept = (await w.db.prepare('SELECT id FROM api_keys ORDER BY id').all()).results.map((r) => r.id);
      assert.deepEqual(kept, ['key_active', 'key_expired', 'key_revoked']);
      const users = (await w.db.prepare('SELECT id, disabled FROM users ORDER BY disabled').all()).results;
      assert.deepEqual(users, [{ id: uid, disabled: 0 }, { id: 'usr_disabled', disabled: 1 }], 'users are never pruned');
    };
    const liveFamilies = await count('SELECT count(*) AS n FROM refresh_families WHERE user_id = ?1', uid);
    assert.equal(liveFamilies, 5);

    const worker = await w.mf.getWorker();
    const result = await worker.scheduled({ cron: '17 * * * *', scheduledTime: new Date(now) });
    assert.equal(result.outcome, 'ok');
    assert.match(w.logs(), /prune at \d+: 3 families, 3 refresh tokens, 1 audit events, 1 rate-limit counters deleted/);

    const ids = (await w.db.prepare('SELECT id FROM refresh_families ORDER BY id').all()).results.map((r) => r.id);
    assert.ok(ids.includes('fam_revoked_yesterday') && !ids.includes('fam_expired_long_ago') && !ids.includes('fam_revoked_long_ago') && !ids.includes('fam_idle_long_ago'), ids.join(','));
    assert.equal(await count("SELECT count(*) AS n FROM refresh_tokens WHERE token_hash LIKE 'hash-fam_%'"), 1);
    // The live family keeps its own token row, and no other token went.
    assert.ok(ids.includes(liveId), ids.join(','));
    assert.equal(await count('SELECT count(*) AS n FROM refresh_tokens WHERE family_id = ?1', liveId), 1);
    assert.equal(await count('SELECT count(*) AS n FROM refresh_tokens'), 2);
    await keysAndUsersSurvive();
    assert.deepEqual((await w.db.prepare('SELECT kind FROM audit_events WHERE kind LIKE ?1').bind('%_event').all()).results.map((r) => r.kind), ['recent_event']);
    const keys = (await w.db.prepare('SELECT key FROM rate_limits').all()).results.map((r) => r.key);
    assert.ok(keys.includes('current') && !keys.includes('old'), keys.join(','));
    // The live session still refreshes; its registration event is still there.
    expectStatus(await refreshBody(c, u.refresh), 200);
    assert.equal(await count("SELECT count(*) AS n FROM audit_events WHERE kind = 'registered'"), 1);

    // A run 40 days on: the session has idled out and its events are past retention.
    const later = await worker.scheduled({ cron: '17 * * * *', scheduledTime: new Date(now + 40 * DAY) });
    assert.equal(later.outcome, 'ok');
    assert.equal(await count('SELECT count(*) AS n FROM refresh_families'), 0);
    assert.equal(await count('SELECT count(*) AS n FROM refresh_tokens'), 0);
    assert.equal(await count('SELECT count(*) AS n FROM audit_events'), 0);
    await keysAndUsersSurvive();
  });
});
