// What lands in D1: refresh tokens only as SHA-256 hashes, and no secret anywhere.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import {
  PASSWORD,
  client,
  expectError,
  expectStatus,
  loginUser,
  openVars,
  refreshBody,
  registerUser,
  sha256hex,
  uniqueEmail,
} from '../support/http.mjs';
import { generateSigningKey, startWorker } from '../support/worker.mjs';

/** Every row of every user table: [{ table, row }]. */
async function dumpAll(db) {
  const { results: tables } = await db
    .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name NOT LIKE '_cf_%'")
    .all();
  const rows = [];
  for (const { name } of tables) {
    const { results } = await db.prepare(`SELECT * FROM "${name}"`).all();
    for (const row of results) rows.push({ table: name, row });
  }
  return { tables: tables.map((t) => t.name), rows };
}

/** The forms in which a token could hide in a column. */
function variants(secret) {
  const out = new Set([secret]);
  // Refresh tokens look like "ghr_" + base64url; also look for the random part and its bytes.
  const body = /^[a-z]{2,8}_([A-Za-z0-9_-]{20,})$/.exec(secret)?.[1];
  for (const s of [secret, body]) {
    if (!s || !/^[A-Za-z0-9_-]+$/.test(s)) continue;
    out.add(s);
    const bytes = Buffer.from(s, 'base64url');
    if (bytes.length >= 16) {
      out.add(bytes.toString('hex'));
      out.add(bytes.toString('hex').toUpperCase());
      out.add(bytes.toString('base64'));
    }
  }
  return [...out];
}

describe('storage', () => {
  const key = generateSigningKey();
  let w;
  let c;
  const held = []; // refresh tokens the client currently holds
  const secrets = []; // [label, value]

  before(async () => {
    w = await startWorker({ vars: openVars(key) });
    c = client(w.url);
  });
  after(() => w?.stop());

  test('refresh_tokens.token_hash is the hex SHA-256 of the token the client holds', async () => {
    const password = 'unique-password-' + Math.random().toString(36).slice(2);
    const reg = await registerUser(c, { password, name: 'Storage' });
    secrets.push(['password', password], ['access', reg.access], ['refresh(reg)', reg.refresh]);

    const cookieLogin = await loginUser(c, reg.email, password, { inBody: false });
    secrets.push(['access', cookieLogin.access], ['refresh(cookie login)', cookieLogin.refresh]);
    secrets.push(['csrf', cookieLogin.csrf]);
    held.push(cookieLogin.refresh);

    const r = await refreshBody(c, reg.refresh);
    expectStatus(r, 200);
    secrets.push(['access', r.body.access_token], ['refresh(rotated)', r.body.refresh_token]);
    held.push(r.body.refresh_token);

    const r2 = await c.request('POST', '/auth/refresh', { cookie: cookieLogin.refresh, csrf: cookieLogin.csrf });
    expectStatus(r2, 200);
    const cookieToken = r2.cookie().value;
    secrets.push(['access', r2.body.access_token], ['refresh(cookie rotated)', cookieToken]);
    held.push(cookieToken);

    for (const token of [reg.refresh, ...held]) {
      const row = await w.db.prepare('SELECT * FROM refresh_tokens WHERE token_hash = ?').bind(sha256hex(token)).first();
      assert.ok(row, `no refresh_tokens row for sha256(${token})`);
      assert.match(row.token_hash, /^[0-9a-f]{64}$/);
    }
    // Only hashes: every token_hash is 64 lowercase hex characters.
    const { results } = await w.db.prepare('SELECT token_hash, successor_hash, successor_sealed FROM refresh_tokens').all();
    assert.ok(results.length >= 4, `expected at least 4 token rows, got ${results.length}`);
    for (const row of results) {
      assert.match(row.token_hash, /^[0-9a-f]{64}$/);
      if (row.successor_hash !== null) assert.match(row.successor_hash, /^[0-9a-f]{64}$/);
      if (row.successor_sealed !== null) assert.match(row.successor_sealed, /^[0-9a-f]+$/);
    }
    // Rotated rows point at their successor by hash.
    const rotated = await w.db
      .prepare('SELECT successor_hash FROM refresh_tokens WHERE token_hash = ?')
      .bind(sha256hex(reg.refresh))
      .first('successor_hash');
    assert.equal(rotated, sha256hex(r.body.refresh_token));
  });

  test('password_hash is a PHC pbkdf2-sha256 string with the configured iterations', async () => {
    const { results } = await w.db.prepare('SELECT password_hash FROM users').all();
    assert.ok(results.length > 0);
    const salts = new Set();
    for (const { password_hash: h } of results) {
      const m = /^\$pbkdf2-sha256\$i=(\d+),l=32\$([^$]+)\$([^$]+)$/.exec(h);
      assert.ok(m, `not a PHC pbkdf2-sha256 string: ${h}`);
      assert.equal(m[1], '10000');
      salts.add(m[2]);
    }
    assert.equal(salts.size, results.length, 'salts must be unique');
  });

  test('same password, different users → different hashes', async () => {
    const a = await registerUser(c, { email: uniqueEmail(), password: PASSWORD });
    const b = await registerUser(c, { email: uniqueEmail(), password: PASSWORD });
    const q = 'SELECT password_hash FROM users WHERE id = ?';
    const ha = await w.db.prepare(q).bind(a.user.id).first('password_hash');
    const hb = await w.db.prepare(q).bind(b.user.id).first('password_hash');
    assert.notEqual(ha, hb);
    secrets.push(['password', PASSWORD], ['access', a.access], ['refresh', a.refresh], ['refresh', b.refresh]);
  });

  test('no column anywhere holds a plaintext refresh token, password, access token or the signing key', async () => {
    assert.ok(secrets.length > 0, 'the tests above must run first');
    // A failed login and a logout too, so their audit rows are in the dump.
    const failedPw = 'wrong-password-' + Math.random().toString(36).slice(2);
    const fail = await c.post('/auth/login', { email: uniqueEmail(), password: failedPw });
    assert.equal(fail.status, 401);
    secrets.push(['failed password', failedPw]);
    // A password typed into the email field (it looks like an address): counted and logged
    // only as a keyed hash, never readable.
    const typedIntoEmail = `Tr0ub4dor${Math.random().toString(36).slice(2, 8)}@3xyz!`;
    expectError(await c.post('/auth/login', { email: typedIntoEmail, password: 'x' }), 401, 'invalid_credentials');
    secrets.push(['password typed into the email field', typedIntoEmail.toLowerCase()]);
    const hashed = await w.db.prepare("SELECT detail FROM audit_events WHERE kind = 'login_failed' AND detail LIKE '%email_hash%'").all();
    assert.ok(hashed.results.some((r) => /"email_hash":"em_[A-Za-z0-9_-]{22}"/.test(r.detail)), JSON.stringify(hashed.results));
    const logoutUser = await registerUser(c);
    secrets.push(['refresh(logout)', logoutUser.refresh], ['access', logoutUser.access]);
    expectStatus(await c.post('/auth/logout', { refresh_token: logoutUser.refresh }), 204);
    secrets.push(['signing key', key.d]);

    const { tables, rows } = await dumpAll(w.db);
    for (const t of ['users', 'refresh_families', 'refresh_tokens', 'audit_events']) assert.ok(tables.includes(t), t);
    assert.ok(rows.some((r) => r.table === 'audit_events'), 'expected some audit events');
    const leaks = [];
    for (const { table, row } of rows) {
      for (const [column, value] of Object.entries(row)) {
        if (value === null || value === undefined) continue;
        const text = typeof value === 'string' ? value : JSON.stringify(value);
        for (const [label, secret] of secrets) {
          for (const v of variants(secret)) {
            if (text.includes(v)) leaks.push(`${table}.${column} holds the ${label} (${v.slice(0, 12)}…)`);
          }
        }
        // Access tokens by any piece: header.payload or signature.
        for (const [label, secret] of secrets.filter(([l]) => l === 'access')) {
          for (const part of secret.split('.').slice(1)) {
            if (part.length > 20 && text.includes(part)) leaks.push(`${table}.${column} holds part of an ${label} token`);
          }
        }
      }
    }
    assert.deepEqual(leaks, []);
  });

  test('the worker\'s own log output holds no secret either', () => {
    const logs = w.logs();
    const leaks = secrets.filter(([, s]) => logs.includes(s)).map(([l]) => l);
    assert.deepEqual(leaks, [], `secrets in the worker's logs:\n${logs.slice(0, 2000)}`);
  });
});
