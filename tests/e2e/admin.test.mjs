// The admin API and self-service sessions in workerd with local D1: every endpoint, every
// refusal, and changes to an admin taking effect on the next request.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { PASSWORD, client, expectError, expectStatus, loginUser, openVars, refreshBody, registerUser, uniqueEmail } from '../support/http.mjs';
import { PEPPER, userWithRoles } from '../support/admin.mjs';
import { generateSigningKey, startWorker } from '../support/worker.mjs';

describe('admin API', () => {
  let w;
  let c;
  let admin;
  before(async () => {
    w = await startWorker({ vars: openVars(generateSigningKey(), { API_KEY_PEPPER: PEPPER }) });
    c = client(w.url);
    admin = await userWithRoles(w, c, ['admin', 'user']);
  });
  after(() => w?.stop());
  const as = (who) => ({ bearer: who.access });

  test('every admin endpoint refuses a non-admin, and anonymous callers', async () => {
    const plain = await userWithRoles(w, c, ['user']);
    const u = plain.id;
    const calls = [
      ['GET', '/admin/users'],
      ['POST', '/admin/users', { email: uniqueEmail(), password: PASSWORD }],
      ['GET', `/admin/users/${u}`],
      ['POST', `/admin/users/${u}/disable`],
      ['POST', `/admin/users/${u}/enable`],
      ['PUT', `/admin/users/${u}/roles`, { roles: ['admin'] }],
      ['POST', `/admin/users/${u}/password`, { new_password: 'something new' }],
      ['GET', `/admin/users/${u}/sessions`],
      ['DELETE', `/admin/users/${u}/sessions`],
      ['DELETE', `/admin/users/${u}/sessions/fam_x`],
      ['GET', '/admin/api-keys'],
      ['POST', '/admin/api-keys', { label: 'x', role: 'user', scopes: [] }],
      ['DELETE', '/admin/api-keys/key_x'],
      ['GET', '/admin/audit'],
    ];
    const count = async (table) => (await w.db.prepare(`SELECT count(*) AS n FROM ${table}`).first()).n;
    const before = { users: await count('users'), keys: await count('api_keys'), hash: (await w.db.prepare('SELECT password_hash FROM users WHERE id = ?1').bind(u).first()).password_hash };
    for (const [method, path, json] of calls) {
      expectError(await c.request(method, path, { json, bearer: plain.access }), 403, 'insufficient_role');
      expectError(await c.request(method, path, { json }), 401, 'no_auth');
    }
    // The refused POSTs created no user and no key, and changed no password.
    const createdEmail = calls[1][2].email;
    assert.equal(await w.db.prepare('SELECT id FROM users WHERE email = ?1').bind(createdEmail).first(), null);
    assert.equal(await count('users'), before.users);
    assert.equal(await count('api_keys'), before.keys);
    assert.equal((await w.db.prepare('SELECT password_hash FROM users WHERE id = ?1').bind(u).first()).password_hash, before.hash);
    const row = await w.db.prepare('SELECT roles, disabled FROM users WHERE id = ?1').bind(u).first();
    assert.deepEqual(JSON.parse(row.roles), ['user']);
    assert.equal(row.disabled, 0);
    expectError(await c.request('PATCH', '/admin/users', as(admin)), 405, 'method_not_allowed');
    expectError(await c.get('/admin/teapot', as(admin)), 404, 'not_found');
  });

  test('users: create, list with paging and search, get, roles, disable and enable', async () => {
    const tag = `t${Date.now().toString(36)}`;
    const made = [];
    for (const n of ['a', 'b', 'c']) {
      const res = await c.post('/admin/users', { email: `${n}.${tag}@example.org`, password: PASSWORD, name: `Person ${n.toUpperCase()} ${tag}`, roles: ['user'] }, as(admin));
      expectStatus(res, 201);
      assert.equal(res.body.user.disabled, false);
      made.push(res.body.user);
    }
    expectError(await c.post('/admin/users', { email: made[0].email, password: PASSWORD }, as(admin)), 409, 'email_taken');
    expectError(await c.post('/admin/users', { email: 'x@example.org', password: 'short' }, as(admin)), 400, 'weak_password');
    const page1 = await c.get(`/admin/users?q=${tag}&limit=2`, as(admin));
    expectStatus(page1, 200);
    assert.deepEqual(page1.body.users.map((x) => x.email), [made[0].email, made[1].email]);
    assert.ok(!page1.text.includes('pbkdf2'), 'password hashes are never listed');
    const page2 = await c.get(`/admin/users?q=${tag}&limit=2&cursor=${encodeURIComponent(page1.body.next_cursor)}`, as(admin));
    assert.deepEqual(page2.body.users.map((x) => x.email), [made[2].email]);
    assert.equal(page2.body.next_cursor, null);
    const byName = await c.get(`/admin/users?q=${encodeURIComponent(`person b ${tag}`)}`, as(admin));
    assert.deepEqual(byName.body.users.map((x) => x.id), [made[1].id]);
    expectError(await c.get('/admin/users?limit=500', as(admin)), 400, 'bad_request');

    const one = await c.get(`/admin/users/${made[0].id}`, as(admin));
    expectStatus(one, 200);
    assert.equal(one.body.user.email, made[0].email);
    expectError(await c.get('/admin/users/usr_nobody', as(admin)), 404, 'not_found');

    const roles = await c.put(`/admin/users/${made[0].id}/roles`, { roles: ['editor', 'user'] }, as(admin));
    expectStatus(roles, 200);
    assert.deepEqual(roles.body.user.roles, ['editor', 'user']);
    expectError(await c.put(`/admin/users/${made[0].id}/roles`, { roles: ['Not Valid'] }, as(admin)), 400, 'bad_request');
    const login = await loginUser(c, made[0].email);
    assert.deepEqual(login.body.user.roles, ['editor', 'user']);

    const disabled = await c.post(`/admin/users/${made[0].id}/disable`, undefined, as(admin));
    expectStatus(disabled, 200);
    assert.equal(disabled.body.user.disabled, true);
    assert.equal(disabled.body.revoked_sessions, 1);
    expectError(await refreshBody(c, login.refresh), 401, 'invalid_refresh_token');
    expectError(await c.post('/auth/login', { email: made[0].email, password: PASSWORD }), 401, 'invalid_credentials');
    expectStatus(await c.post(`/admin/users/${made[0].id}/enable`, undefined, as(admin)), 200);
    await loginUser(c, made[0].email);
  });

  test('an admin who loses the role or is disabled is refused on the next request', async () => {
    const other = await userWithRoles(w, c, ['admin']);
    expectStatus(await c.get('/admin/users', as(other)), 200);
    expectStatus(await c.put(`/admin/users/${other.id}/roles`, { roles: ['user'] }, as(admin)), 200);
    expectError(await c.get('/admin/users', as(other)), 403, 'insufficient_role');
    expectStatus(await c.put(`/admin/users/${other.id}/roles`, { roles: ['admin'] }, as(admin)), 200);
    expectStatus(await c.post(`/admin/users/${other.id}/disable`, undefined, as(admin)), 200);
    expectError(await c.get('/admin/users', as(other)), 401, 'invalid_token');
    expectError(await c.post(`/admin/users/${admin.id}/disable`, undefined, as(admin)), 400, 'bad_request');
  });

  test('password reset revokes every session of the user', async () => {
    const u = await userWithRoles(w, c, ['user']);
    const res = await c.post(`/admin/users/${u.id}/password`, { new_password: 'reset by admin' }, as(admin));
    expectStatus(res, 200);
    assert.equal(res.body.revoked_sessions, 2);
    expectError(await refreshBody(c, u.refresh), 401, 'invalid_refresh_token');
    expectError(await c.post('/auth/login', { email: u.email, password: PASSWORD }), 401, 'invalid_credentials');
    await loginUser(c, u.email, 'reset by admin');
  });

  test('sessions of a user: list, revoke one, revoke all', async () => {
    const u = await userWithRoles(w, c, ['user']);
    const list = await c.get(`/admin/users/${u.id}/sessions`, as(admin));
    expectStatus(list, 200);
    assert.equal(list.body.sessions.length, 2);
    for (const s of list.body.sessions) assert.equal(s.status, 'active');
    const [newest, oldest] = list.body.sessions;
    expectError(await c.request('DELETE', `/admin/users/${admin.id}/sessions/${newest.id}`, as(admin)), 404, 'not_found');
    expectStatus(await c.request('DELETE', `/admin/users/${u.id}/sessions/${newest.id}`, as(admin)), 204);
    expectError(await refreshBody(c, u.refresh), 401, 'invalid_refresh_token');
    expectStatus(await refreshBody(c, u.firstRefresh), 200);
    const all = await c.request('DELETE', `/admin/users/${u.id}/sessions`, as(admin));
    expectStatus(all, 200);
    assert.equal(all.body.revoked_sessions, 1);
    const after = await c.get(`/admin/users/${u.id}/sessions`, as(admin));
    assert.deepEqual(after.body.sessions.map((s) => [s.id, s.status, s.revoke_reason]), [
      [newest.id, 'revoked', 'admin'],
      [oldest.id, 'revoked', 'admin'],
    ]);
  });

  test('audit log: filters and paging', async () => {
    const u = await userWithRoles(w, c, ['user']);
    await c.post('/auth/login', { email: u.email, password: 'wrong password' });
    const mine = await c.get(`/admin/audit?user=${u.id}&limit=2`, as(admin));
    expectStatus(mine, 200);
    assert.deepEqual(mine.body.events.map((e) => e.kind), ['login_failed', 'login_succeeded']);
    assert.ok(mine.body.next_cursor);
    const rest = await c.get(`/admin/audit?user=${u.id}&cursor=${mine.body.next_cursor}`, as(admin));
    assert.deepEqual(rest.body.events.map((e) => e.kind), ['registered']);
    assert.equal(rest.body.next_cursor, null);
    const failed = await c.get(`/admin/audit?kind=login_failed&subject=${u.id}`, as(admin));
    assert.equal(failed.body.events.length, 1);
    assert.deepEqual(failed.body.events[0].detail, { cause: 'wrong_password' });
    assert.equal(failed.body.events[0].ip, '127.0.0.1');
    const byActor = await c.get(`/admin/audit?actor=${admin.id}&kind=role_changed`, as(admin));
    assert.ok(byActor.body.events.length >= 1);
    const future = await c.get(`/admin/audit?since=${Date.now() + 60_000}`, as(admin));
    assert.deepEqual(future.body.events, []);
    expectError(await c.get('/admin/audit?since=yesterday', as(admin)), 400, 'bad_request');
    expectError(await c.get('/admin/audit?color=red', as(admin)), 400, 'bad_request');
  });
});

describe('self-service sessions', () => {
  let w;
  let c;
  before(async () => {
    w = await startWorker({ vars: openVars(generateSigningKey()) });
    c = client(w.url);
  });
  after(() => w?.stop());

  test('GET /auth/sessions lists the caller\'s live sessions; DELETE revokes only their own', async () => {
    const ann = await registerUser(c);
    const second = await c.post('/auth/login', { email: ann.email, password: PASSWORD, refresh_token_in_body: true }, { headers: { 'user-agent': 'e2e-agent/2' } });
    expectStatus(second, 200);
    const bob = await registerUser(c);
    const list = await c.get('/auth/sessions', { bearer: ann.access });
    expectStatus(list, 200);
    assert.equal(list.body.sessions.length, 2);
    const other = list.body.sessions.find((s) => !s.current);
    assert.equal(other.user_agent, 'e2e-agent/2');
    assert.ok(other.created_at > 0 && other.last_used_at >= other.created_at);
    expectError(await c.request('DELETE', `/auth/sessions/${other.id}`, { bearer: bob.access }), 404, 'not_found');
    expectStatus(await refreshBody(c, second.body.refresh_token), 200);
    expectStatus(await c.request('DELETE', `/auth/sessions/${other.id}`, { bearer: ann.access }), 204);
    const after = await c.get('/auth/sessions', { bearer: ann.access });
    assert.equal(after.body.sessions.length, 1);
    assert.equal(after.body.sessions[0].current, true);
    expectError(await c.get('/auth/sessions'), 401, 'no_auth');
    expectError(await c.post('/auth/sessions', {}, { bearer: ann.access }), 405, 'method_not_allowed');
    const row = await w.db.prepare('SELECT revoke_reason FROM refresh_families WHERE id = ?1').bind(other.id).first();
    assert.equal(row.revoke_reason, 'logout');
  });
});
