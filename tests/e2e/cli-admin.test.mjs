// The operator commands of the `gatehouse` CLI against local D1 through wrangler, and the worker
// serving what they wrote: the first admin bootstrapped with add-user, keys minted, listed and
// revoked, roles set, users disabled and listed, a lost second factor reset.

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { client, expectError, expectStatus, loginUser } from '../support/http.mjs';
import { PEPPER, keyHash } from '../support/admin.mjs';
import { stepNow, totp } from '../support/totp.mjs';
import { generateSigningKey, startWorker } from '../support/worker.mjs';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const CLI = path.join(ROOT, 'target', 'release', 'gatehouse');

function cli(args, { input = '', env = {} } = {}) {
  return new Promise((resolve) => {
    const child = execFile(CLI, args, { cwd: ROOT, env: { ...process.env, WRANGLER_SEND_METRICS: 'false', ...env } }, (err, stdout, stderr) =>
      resolve({ code: err ? err.code : 0, stdout, stderr }),
    );
    // A command that never reads stdin may exit before the write: ignore the broken pipe.
    child.stdin.on('error', () => {});
    child.stdin.end(input);
  });
}

describe('gatehouse CLI: keys and users', () => {
  let w;
  let c;
  let local;
  const r = {};
  before(async () => {
    assert.ok(existsSync(CLI), 'build the CLI first: cargo build --release --bin gatehouse');
    w = await startWorker({
      vars: { JWT_SIGNING_KEY: generateSigningKey().d, API_KEY_PEPPER: PEPPER, PBKDF2_ITERATIONS: '10000', MFA_ENCRYPTION_KEY: Buffer.alloc(32, 5).toString('base64url') },
      beforeStart: async (dir) => {
        local = ['--local', '--persist-to', dir];
        const pw = ['--iterations', '10000', '--password-stdin'];
        r.admin = await cli(['add-user', '--email', 'root@example.com', '--roles', 'admin,user', ...pw, ...local], { input: 'root password\n' });
        r.bob = await cli(['add-user', '--email', 'bob@example.com', '--name', 'Bob', '--roles', 'user', ...pw, ...local], { input: 'bob password\n' });
        r.noPepper = await cli(['mint-key', '--owner', 'bob@example.com', '--label', 'ci', '--role', 'user', ...local], { env: { API_KEY_PEPPER: '' } });
        r.wrongRole = await cli(['mint-key', '--owner', 'bob@example.com', '--label', 'ci', '--role', 'admin', ...local], { env: { API_KEY_PEPPER: PEPPER } });
        r.mint = await cli(['mint-key', '--owner', 'bob@example.com', '--label', 'ci job', '--role', 'user', '--scopes', 'cms-read,cms-write', '--expires-days', '30', ...local], { env: { API_KEY_PEPPER: PEPPER } });
        r.mintAdmin = await cli(['mint-key', '--owner', 'root@example.com', '--label', 'ops', '--role', 'admin', ...local], { env: { API_KEY_PEPPER: PEPPER } });
        r.setRoles = await cli(['set-roles', '--email', 'bob@example.com', '--roles', 'user,editor', ...local]);
        r.setRolesMissing = await cli(['set-roles', '--email', 'nobody@example.com', '--roles', 'user', ...local]);
        r.badRole = await cli(['set-roles', '--email', 'bob@example.com', '--roles', 'Bad Role', ...local]);
        r.list = await cli(['list-users', ...local]);
        r.search = await cli(['list-users', '--search', 'BOB', '--json', ...local]);
        r.unknownOption = await cli(['list-users', '--colour', 'red', ...local]);
      },
    });
    c = client(w.url);
  });
  after(() => w?.stop());

  const mintedKey = (res) => /^(gk_[a-z2-7]{52})$/m.exec(res.stdout)?.[1];

  test('the first admin, bootstrapped with add-user, reaches the admin API', async () => {
    assert.equal(r.admin.code, 0, r.admin.stderr);
    const root = await loginUser(c, 'root@example.com', 'root password');
    expectStatus(await c.get('/admin/users', { bearer: root.access }), 200);
  });

  test('mint-key prints the key once, stores its HMAC, and the worker accepts it', async () => {
    assert.equal(r.mint.code, 0, r.mint.stderr);
    const key = mintedKey(r.mint);
    assert.ok(key, r.mint.stdout);
    assert.match(r.mint.stdout, /role user, scopes \[cms-read, cms-write\], expires /);
    const row = await w.db.prepare('SELECT * FROM api_keys WHERE key_hash = ?1').bind(keyHash(key)).first();
    assert.equal(row.label, 'ci job');
    assert.deepEqual(JSON.parse(row.scopes), ['cms-read', 'cms-write']);
    assert.equal(row.created_by, null);
    assert.ok(row.expires_at > Date.now() + 29 * 86_400_000);
    // A user-role key: authenticated (so not invalid_api_key), refused by role.
    expectError(await c.get('/admin/users', { bearer: key }), 403, 'insufficient_role');
    const admin = mintedKey(r.mintAdmin);
    expectStatus(await c.get('/admin/users', { bearer: admin }), 200);
    const ev = await w.db.prepare("SELECT count(*) AS n FROM audit_events WHERE kind = 'api_key_minted'").first();
    assert.equal(ev.n, 2);
  });

  test('mint-key refuses without the pepper or with a role the owner lacks', () => {
    assert.equal(r.noPepper.code, 2);
    assert.match(r.noPepper.stderr, /API_KEY_PEPPER/);
    assert.equal(r.wrongRole.code, 2);
    assert.match(r.wrongRole.stderr, /holding role "admin"/);
  });

  test('set-roles and list-users', async () => {
    assert.equal(r.setRoles.code, 0, r.setRoles.stderr);
    const bob = await loginUser(c, 'bob@example.com', 'bob password');
    assert.deepEqual(bob.body.user.roles, ['user', 'editor']);
    assert.equal(r.setRolesMissing.code, 2);
    assert.match(r.setRolesMissing.stderr, /no user nobody@example\.com/);
    assert.equal(r.badRole.code, 2);
    assert.equal(r.list.code, 0, r.list.stderr);
    assert.match(r.list.stdout, /bob@example\.com\s+"Bob"\s+roles \["user","editor"\]\s+enabled/);
    assert.match(r.list.stdout, /root@example\.com/);
    const found = JSON.parse(r.search.stdout);
    assert.deepEqual(found.map((u) => u.email), ['bob@example.com']);
    assert.equal(r.unknownOption.code, 2);
    assert.match(r.unknownOption.stderr, /unknown option --colour/);
  });

  test('list-keys, revoke-key (effective on the next request), disable-user', async () => {
    const key = mintedKey(r.mint);
    const list = await cli(['list-keys', '--owner', 'bob@example.com', ...local]);
    assert.equal(list.code, 0, list.stderr);
    const id = /^(key_[a-z2-7]{26})\s+ci job\s+owner bob@example\.com/m.exec(list.stdout)?.[1];
    assert.ok(id, list.stdout);
    assert.match(list.stdout, /active/);
    assert.ok(!list.stdout.includes(key.slice(3)), 'list-keys shows the key');
    expectError(await c.get('/admin/users', { bearer: key }), 403, 'insufficient_role');
    const revoke = await cli(['revoke-key', id, ...local]);
    assert.equal(revoke.code, 0, revoke.stderr);
    assert.match(revoke.stdout, /revoked key_/);
    expectError(await c.get('/admin/users', { bearer: key }), 401, 'invalid_api_key');
    const again = await cli(['revoke-key', id, ...local]);
    assert.match(again.stdout, /already revoked/);
    const missing = await cli(['revoke-key', 'key_nope', ...local]);
    assert.equal(missing.code, 2);
    const after = await cli(['list-keys', '--json', ...local]);
    assert.ok(JSON.parse(after.stdout).find((k) => k.id === id).revoked_at > 0);

    const bob = await loginUser(c, 'bob@example.com', 'bob password');
    const disable = await cli(['disable-user', '--email', 'bob@example.com', ...local]);
    assert.equal(disable.code, 0, disable.stderr);
    expectError(await c.post('/auth/refresh', { refresh_token: bob.refresh }), 401, 'invalid_refresh_token');
    expectError(await c.post('/auth/login', { email: 'bob@example.com', password: 'bob password' }), 401, 'invalid_credentials');
    const enable = await cli(['enable-user', '--email', 'bob@example.com', ...local]);
    assert.equal(enable.code, 0, enable.stderr);
    await loginUser(c, 'bob@example.com', 'bob password');
    const kinds = (await w.db.prepare("SELECT kind FROM audit_events WHERE json_extract(detail, '$.by') = 'cli' ORDER BY id").all()).results.map((e) => e.kind);
    assert.deepEqual(kinds, ['registered', 'registered', 'api_key_minted', 'api_key_minted', 'role_changed', 'api_key_revoked', 'user_disabled', 'user_enabled']);
  });

  test('add-user writes registered; --update writes password_changed and role_changed when roles differ', async () => {
    const pw = ['--iterations', '10000', '--password-stdin'];
    const events = async (email) => (await w.db
      .prepare('SELECT e.kind, e.actor_user_id, e.detail FROM audit_events e JOIN users u ON u.id = e.subject_user_id WHERE u.email = ?1 ORDER BY e.id')
      .bind(email).all()).results.map((e) => ({ kind: e.kind, actor: e.actor_user_id, detail: JSON.parse(e.detail) }));
    // The bootstrapped admin's row.
    assert.deepEqual((await events('root@example.com'))[0], { kind: 'registered', actor: null, detail: { by: 'cli', roles: ['admin', 'user'] } });

    const made = await cli(['add-user', '--email', 'carol@example.com', '--roles', 'user', ...pw, ...local], { input: 'carol password\n' });
    assert.equal(made.code, 0, made.stderr);
    assert.deepEqual(await events('carol@example.com'), [{ kind: 'registered', actor: null, detail: { by: 'cli', roles: ['user'] } }]);
    const session = await loginUser(c, 'carol@example.com', 'carol password');
    const updated = await cli(['add-user', '--update', '--email', 'carol@example.com', '--roles', 'user,editor', ...pw, ...local], { input: 'carol new password\n' });
    assert.equal(updated.code, 0, updated.stderr);
    expectError(await c.post('/auth/refresh', { refresh_token: session.refresh }), 401, 'invalid_refresh_token');
    const again = await cli(['add-user', '--update', '--email', 'carol@example.com', '--roles', 'user,editor', ...pw, ...local], { input: 'carol third password\n' });
    assert.equal(again.code, 0, again.stderr);
    const kinds = (await events('carol@example.com')).filter((e) => e.kind !== 'login_succeeded');
    assert.deepEqual(kinds, [
      { kind: 'registered', actor: null, detail: { by: 'cli', roles: ['user'] } },
      { kind: 'role_changed', actor: null, detail: { from: ['user'], to: ['user', 'editor'], by: 'cli' } },
      { kind: 'password_changed', actor: null, detail: { by: 'cli', revoked_sessions: 1 } },
      // The same roles again: no role_changed; no session was left to revoke.
      { kind: 'password_changed', actor: null, detail: { by: 'cli', revoked_sessions: 0 } },
    ]);
    await loginUser(c, 'carol@example.com', 'carol third password');
  });

  test('reset-mfa removes a lost second factor (audited); none to remove, or no such user, exits 2', async () => {
    const pw = ['--iterations', '10000', '--password-stdin'];
    const added = await cli(['add-user', '--email', 'dave@example.com', '--roles', 'user', ...pw, ...local], { input: 'dave password\n' });
    assert.equal(added.code, 0, added.stderr);
    const session = await loginUser(c, 'dave@example.com', 'dave password');
    const started = await c.post('/auth/mfa/totp/start', { password: 'dave password' }, { bearer: session.access });
    expectStatus(started, 200);
    expectStatus(await c.post('/auth/mfa/totp/confirm', { otp: totp(started.body.secret, stepNow()) }, { bearer: session.access }), 200);
    expectError(await c.post('/auth/login', { email: 'dave@example.com', password: 'dave password' }), 401, 'mfa_required');

    const reset = await cli(['reset-mfa', '--email', 'dave@example.com', ...local]);
    assert.equal(reset.code, 0, reset.stderr);
    assert.match(reset.stdout, /removed the TOTP second factor/);
    await loginUser(c, 'dave@example.com', 'dave password');
    const event = await w.db.prepare("SELECT e.actor_user_id, e.detail FROM audit_events e JOIN users u ON u.id = e.subject_user_id WHERE u.email = 'dave@example.com' AND e.kind = 'totp_removed'").first();
    assert.equal(event.actor_user_id, null);
    assert.deepEqual(JSON.parse(event.detail), { by: 'cli' });

    const again = await cli(['reset-mfa', '--email', 'dave@example.com', ...local]);
    assert.equal(again.code, 2);
    assert.match(again.stderr, /no TOTP second factor/);
    const nobody = await cli(['reset-mfa', '--email', 'nobody@example.com', ...local]);
    assert.equal(nobody.code, 2);
    assert.match(nobody.stderr, /no user nobody@example.com/);
  });
});
