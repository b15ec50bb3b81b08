// The TOTP second factor in workerd with local D1: enrollment (start, confirm), login answering
// 401 mfa_required and taking codes computed here by an independent implementation (Node's
// crypto HMAC-SHA1, RFC 6238), replays refused (also under concurrency), recovery codes used
// once, rate limits, removal, the admin view and reset, the key missing, browser mode (CORS),
// and what D1 holds: sealed secrets and hashed codes only.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { PASSWORD, SITE_ORIGIN, awayFromWindowEdge, client, expectError, expectJson, expectStatus, openVars, registerUser } from '../support/http.mjs';
import { PEPPER, userWithRoles } from '../support/admin.mjs';
import { base32Decode, stepNow, totp, wrongCode } from '../support/totp.mjs';
import { generateSigningKey, startWorker } from '../support/worker.mjs';

const MFA_KEY = Buffer.alloc(32, 7).toString('base64url');

test('the independent TOTP implementation gives RFC 6238 appendix B (SHA-1), last six digits', () => {
  const seed = Buffer.from('12345678901234567890').toString('hex');
  // base32 of the ASCII seed, as an authenticator would be given it
  const b32 = 'GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ';
  assert.equal(base32Decode(b32).toString('hex'), seed);
  for (const [time, code] of [[59, '287082'], [1111111109, '081804'], [1111111111, '050471'], [1234567890, '005924'], [2000000000, '279037']]) {
    assert.equal(totp(b32, Math.floor(time / 30)), code, `T=${time}`);
  }
});

describe('TOTP', () => {
  let w;
  let c;
  let admin;
  before(async () => {
    w = await startWorker({
      vars: openVars(generateSigningKey(), {
        API_KEY_PEPPER: PEPPER,
        MFA_ENCRYPTION_KEY: MFA_KEY,
        TOTP_ISSUER: 'Example Site',
        RATE_LIMIT_LOGIN_PER_ACCOUNT: '1000',
        RATE_LIMIT_LOGIN_PER_ACCOUNT_TOTAL: '1000',
      }),
    });
    c = client(w.url);
    admin = await userWithRoles(w, c, ['admin', 'user']);
  });
  after(() => w?.stop());

  const login = (email, password, otp) => {
    const json = { email, password, refresh_token_in_body: true };
    if (otp !== undefined) json.otp = otp;
    return c.post('/auth/login', json);
  };

  /** Registers a user and enrolls TOTP: { u, secret, codes, step } (step: the confirming code's). */
  async function enrolled() {
    const u = await registerUser(c);
    const started = await c.post('/auth/mfa/totp/start', { password: PASSWORD }, { bearer: u.access });
    expectStatus(started, 200);
    const step = stepNow();
    const confirmed = await c.post('/auth/mfa/totp/confirm', { otp: totp(started.body.secret, step) }, { bearer: u.access });
    expectStatus(confirmed, 200);
    return { u, secret: started.body.secret, codes: confirmed.body.recovery_codes, step };
  }

  test('enrollment: start shows the secret, URI and QR code; confirm takes a code and answers 10 recovery codes once', async () => {
    const u = await registerUser(c);
    let res = await c.get('/auth/mfa', { bearer: u.access });
    expectStatus(res, 200);
    assert.deepEqual(res.body, { totp: { available: true, enrolled: false, enrolled_at: null, pending: false, recovery_codes_left: 0 } });

    expectError(await c.post('/auth/mfa/totp/start', { password: 'not the password' }, { bearer: u.access }), 401, 'invalid_credentials');
    expectError(await c.post('/auth/mfa/totp/confirm', { otp: '123456' }, { bearer: u.access }), 409, 'mfa_not_enrolled');
    expectError(await c.post('/auth/mfa/totp/start', { password: PASSWORD }), 401, 'no_auth');

    res = await c.post('/auth/mfa/totp/start', { password: PASSWORD }, { bearer: u.access });
    expectStatus(res, 200);
    expectJson(res);
    assert.equal(res.headers.get('cache-control'), 'no-store');
    const { secret, otpauth_uri: uri, qr_svg: svg, expires_in: expiresIn } = res.body;
    assert.match(secret, /^[A-Z2-7]{32}$/);
    assert.equal(base32Decode(secret).length, 20);
    const parsed = new URL(uri);
    assert.equal(parsed.protocol, 'otpauth:');
    assert.equal(decodeURIComponent(parsed.pathname), `/Example Site:${u.email}`);
    assert.equal(parsed.searchParams.get('secret'), secret);
    assert.equal(parsed.searchParams.get('issuer'), 'Example Site');
    assert.match(svg, /^<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg" viewBox="0 0 \d+ \d+"/);
    assert.ok(svg.endsWith('</svg>'));
    assert.equal(expiresIn, 900);

    // Pending, stored sealed: the secret is in no column.
    const row = await w.db.prepare('SELECT * FROM mfa_totp WHERE user_id = ?1').bind(u.user.id).first();
    assert.equal(row.secret_sealed, null);
    assert.match(row.pending_sealed, /^v1\.[A-Za-z0-9_-]+$/);
    const b32lower = secret.toLowerCase();
    const hex = base32Decode(secret).toString('hex');
    for (const value of Object.values(row)) {
      const text = String(value).toLowerCase();
      assert.ok(!text.includes(b32lower) && !text.includes(hex), `secret in mfa_totp: ${JSON.stringify(row)}`);
    }
    // Still no second factor at login until confirmed.
    expectStatus(await login(u.email, PASSWORD), 200);
    res = await c.get('/auth/mfa', { bearer: u.access });
    assert.equal(res.body.totp.pending, true);

    expectError(await c.post('/auth/mfa/totp/confirm', { otp: wrongCode(secret) }, { bearer: u.access }), 401, 'invalid_otp');
    expectError(await c.post('/auth/mfa/totp/confirm', { otp: totp(secret, stepNow() + 3) }, { bearer: u.access }), 401, 'invalid_otp');
    expectError(await c.post('/auth/mfa/totp/confirm', { otp: 123456 }, { bearer: u.access }), 400, 'bad_request');
    res = await c.post('/auth/mfa/totp/confirm', { otp: totp(secret, stepNow()) }, { bearer: u.access });
    expectStatus(res, 200);
    assert.equal(res.headers.get('cache-control'), 'no-store');
    const codes = res.body.recovery_codes;
    assert.equal(codes.length, 10);
    assert.equal(new Set(codes).size, 10);
    for (const code of codes) assert.match(code, /^[a-z2-7]{5}-[a-z2-7]{5}$/);
    // Confirmed once: nothing pending any more.
    expectError(await c.post('/auth/mfa/totp/confirm', { otp: totp(secret, stepNow()) }, { bearer: u.access }), 409, 'mfa_not_enrolled');

    // D1: the secret sealed, the codes only as 64-hex hashes none of which is a code.
    const enrolledRow = await w.db.prepare('SELECT * FROM mfa_totp WHERE user_id = ?1').bind(u.user.id).first();
    assert.match(enrolledRow.secret_sealed, /^v1\./);
    assert.equal(enrolledRow.pending_sealed, null);
    const { results } = await w.db.prepare('SELECT code_hash FROM mfa_recovery_codes WHERE user_id = ?1').bind(u.user.id).all();
    assert.equal(results.length, 10);
    const stored = JSON.stringify(results) + JSON.stringify(enrolledRow);
    for (const r of results) assert.match(r.code_hash, /^[0-9a-f]{64}$/);
    for (const code of codes) {
      assert.ok(!stored.includes(code) && !stored.includes(code.replace('-', '')), 'a recovery code stored readable');
    }
    assert.ok(!stored.toLowerCase().includes(b32lower) && !stored.includes(hex));
    // Nor in the audit log, nor in the worker's log.
    const audit = JSON.stringify((await w.db.prepare('SELECT * FROM audit_events WHERE subject_user_id = ?1').bind(u.user.id).all()).results);
    const logs = w.logs();
    for (const text of [audit, logs]) {
      assert.ok(!text.includes(secret) && !codes.some((code) => text.includes(code)), 'a secret in the audit or worker log');
    }
    const kinds = JSON.parse(audit).map((e) => e.kind);
    for (const kind of ['totp_enrollment_started', 'totp_enrollment_failed', 'totp_enrolled']) assert.ok(kinds.includes(kind), `${kind} not in ${kinds}`);
  });

  test('login: mfa_required only after the right password; codes within ±1 step, each once; recovery codes once', async () => {
    const { u, secret, codes, step } = await enrolled();
    expectError(await login(u.email, 'wrong password'), 401, 'invalid_credentials');
    expectError(await login(u.email, 'wrong password', totp(secret, stepNow())), 401, 'invalid_credentials');
    const required = await login(u.email, PASSWORD);
    expectError(required, 401, 'mfa_required');
    assert.equal(required.setCookies.length, 0, 'mfa_required sets no cookie');
    // The confirming code was used by the confirmation.
    expectError(await login(u.email, PASSWORD, totp(secret, step)), 401, 'invalid_otp');
    expectError(await login(u.email, PASSWORD, wrongCode(secret)), 401, 'invalid_otp');
    expectError(await login(u.email, PASSWORD, totp(secret, stepNow() + 2)), 401, 'invalid_otp');
    // The next step's code (the window's +1) logs in once; its replay is refused.
    const next = totp(secret, step + 1);
    const ok = await login(u.email, PASSWORD, next);
    expectStatus(ok, 200);
    assert.equal(typeof ok.body.access_token, 'string');
    assert.equal(ok.body.user.id, u.user.id);
    expectError(await login(u.email, PASSWORD, next), 401, 'invalid_otp');
    // A recovery code, typed in upper case without its hyphen, works once.
    expectStatus(await login(u.email, PASSWORD, codes[0].toUpperCase().replace('-', '')), 200);
    expectError(await login(u.email, PASSWORD, codes[0]), 401, 'invalid_otp');
    expectError(await login(u.email, PASSWORD, 'zzzzz-zzzzz'), 401, 'invalid_otp');
    const status = await c.get('/auth/mfa', { bearer: ok.body.access_token });
    assert.equal(status.body.totp.enrolled, true);
    assert.equal(status.body.totp.recovery_codes_left, 9);

    const { results } = await w.db.prepare("SELECT kind, detail FROM audit_events WHERE subject_user_id = ?1 AND kind IN ('login_succeeded', 'login_failed')").bind(u.user.id).all();
    const details = results.map((r) => ({ kind: r.kind, ...JSON.parse(r.detail ?? '{}') }));
    assert.ok(details.some((d) => d.kind === 'login_succeeded' && d.mfa === 'totp'));
    assert.ok(details.some((d) => d.kind === 'login_succeeded' && d.mfa === 'recovery_code'));
    for (const cause of ['otp_replayed', 'wrong_otp', 'invalid_recovery_code', 'wrong_password']) {
      assert.ok(details.some((d) => d.kind === 'login_failed' && d.cause === cause), `no login_failed ${cause}: ${JSON.stringify(details)}`);
    }
  });

  test('one code, ten concurrent logins: exactly one is let in (compare-and-set on D1)', async () => {
    const { u, secret, step } = await enrolled();
    const code = totp(secret, step + 1);
    const answers = await Promise.all(Array.from({ length: 10 }, () => login(u.email, PASSWORD, code)));
    const statuses = answers.map((r) => r.status).sort();
    assert.deepEqual(statuses, [200, 401, 401, 401, 401, 401, 401, 401, 401, 401]);
    for (const r of answers.filter((a) => a.status === 401)) expectError(r, 401, 'invalid_otp');
  });

  test('new recovery codes replace the old; removal needs the password; then login needs no code', async () => {
    const { u, codes } = await enrolled();
    expectError(await c.post('/auth/mfa/recovery-codes', { password: 'nope nope nope' }, { bearer: u.access }), 401, 'invalid_credentials');
    const res = await c.post('/auth/mfa/recovery-codes', { password: PASSWORD }, { bearer: u.access });
    expectStatus(res, 200);
    const fresh = res.body.recovery_codes;
    assert.equal(fresh.length, 10);
    expectError(await login(u.email, PASSWORD, codes[1]), 401, 'invalid_otp');
    expectStatus(await login(u.email, PASSWORD, fresh[1]), 200);

    expectError(await c.request('DELETE', '/auth/mfa/totp', { json: { password: 'nope nope nope' }, bearer: u.access }), 401, 'invalid_credentials');
    const removed = await c.request('DELETE', '/auth/mfa/totp', { json: { password: PASSWORD }, bearer: u.access });
    expectStatus(removed, 204);
    expectStatus(await login(u.email, PASSWORD), 200);
    expectError(await c.request('DELETE', '/auth/mfa/totp', { json: { password: PASSWORD }, bearer: u.access }), 409, 'mfa_not_enrolled');
    expectError(await c.post('/auth/mfa/recovery-codes', { password: PASSWORD }, { bearer: u.access }), 409, 'mfa_not_enrolled');
    assert.equal(await w.db.prepare('SELECT user_id FROM mfa_totp WHERE user_id = ?1').bind(u.user.id).first(), null);
    const left = await w.db.prepare('SELECT count(*) AS n FROM mfa_recovery_codes WHERE user_id = ?1').bind(u.user.id).first();
    assert.equal(left.n, 0);
    const kinds = (await w.db.prepare('SELECT kind FROM audit_events WHERE subject_user_id = ?1').bind(u.user.id).all()).results.map((r) => r.kind);
    for (const kind of ['recovery_codes_failed', 'recovery_codes_regenerated', 'totp_removal_failed', 'totp_removed']) assert.ok(kinds.includes(kind), `${kind} not in ${kinds}`);
  });

  test('admins see who has MFA and reset it (audited); an API key cannot manage it', async () => {
    const { u, secret } = await enrolled();
    let res = await c.get(`/admin/users/${u.user.id}`, { bearer: admin.access });
    expectStatus(res, 200);
    assert.deepEqual(res.body.user.mfa, { totp: true });
    res = await c.get(`/admin/users?q=${encodeURIComponent(u.email)}`, { bearer: admin.access });
    assert.deepEqual(res.body.users[0].mfa, { totp: true });
    expectError(await c.request('DELETE', `/admin/users/${u.user.id}/mfa`, { bearer: u.access }), 403, 'insufficient_role');
    res = await c.request('DELETE', `/admin/users/${u.user.id}/mfa`, { bearer: admin.access });
    expectStatus(res, 204);
    res = await c.get(`/admin/users/${u.user.id}`, { bearer: admin.access });
    assert.deepEqual(res.body.user.mfa, { totp: false });
    expectError(await c.request('DELETE', `/admin/users/${u.user.id}/mfa`, { bearer: admin.access }), 409, 'mfa_not_enrolled');
    expectError(await c.request('DELETE', '/admin/users/usr_nobody/mfa', { bearer: admin.access }), 404, 'not_found');
    expectStatus(await login(u.email, PASSWORD), 200);
    // The old secret's codes no longer matter.
    expectStatus(await login(u.email, PASSWORD, totp(secret, stepNow())), 200);
    const event = await w.db.prepare("SELECT actor_user_id, detail FROM audit_events WHERE kind = 'totp_removed' AND subject_user_id = ?1").bind(u.user.id).first();
    assert.equal(event.actor_user_id, admin.id);
    assert.equal(JSON.parse(event.detail).by, 'admin');

    const minted = await c.post('/admin/api-keys', { label: 'job', role: 'user', scopes: [] }, { bearer: admin.access });
    expectStatus(minted, 201);
    expectError(await c.get('/auth/mfa', { bearer: minted.body.key }), 403, 'scope_violation');
  });

  test('browser mode: the self-service endpoints answer allowed origins with CORS, preflights included', async () => {
    const u = await registerUser(c, { inBody: false });
    const pre = await c.request('OPTIONS', '/auth/mfa/totp', {
      headers: { origin: SITE_ORIGIN, 'access-control-request-method': 'DELETE', 'access-control-request-headers': 'authorization, content-type' },
    });
    expectStatus(pre, 204);
    assert.equal(pre.headers.get('access-control-allow-origin'), SITE_ORIGIN);
    const res = await c.post('/auth/mfa/totp/start', { password: PASSWORD }, { bearer: u.access, headers: { origin: SITE_ORIGIN } });
    expectStatus(res, 200);
    assert.equal(res.headers.get('access-control-allow-origin'), SITE_ORIGIN);
    const confirmed = await c.post('/auth/mfa/totp/confirm', { otp: totp(res.body.secret, stepNow()) }, { bearer: u.access, headers: { origin: SITE_ORIGIN } });
    expectStatus(confirmed, 200);
    // A browser login (cookie mode) gets mfa_required with CORS headers, and no cookie.
    const required = await c.post('/auth/login', { email: u.email, password: PASSWORD }, { headers: { origin: SITE_ORIGIN } });
    expectError(required, 401, 'mfa_required');
    assert.equal(required.headers.get('access-control-allow-origin'), SITE_ORIGIN);
    assert.equal(required.setCookies.length, 0);
    const ok = await c.post('/auth/login', { email: u.email, password: PASSWORD, otp: confirmed.body.recovery_codes[0] }, { headers: { origin: SITE_ORIGIN } });
    expectStatus(ok, 200);
    assert.ok(ok.cookie()?.value, 'no refresh cookie');
  });
});

describe('TOTP rate limits', () => {
  let w;
  let c;
  before(async () => {
    w = await startWorker({ vars: openVars(generateSigningKey(), { MFA_ENCRYPTION_KEY: MFA_KEY, RATE_LIMIT_LOGIN_PER_ACCOUNT: '3', RATE_LIMIT_WINDOW_SECONDS: '3600' }) });
    c = client(w.url);
  });
  after(() => w?.stop());

  test('wrong codes count against the login limit per account', async () => {
    const u = await registerUser(c);
    const started = await c.post('/auth/mfa/totp/start', { password: PASSWORD }, { bearer: u.access });
    expectStatus(started, 200);
    const secret = started.body.secret;
    expectStatus(await c.post('/auth/mfa/totp/confirm', { otp: totp(secret, stepNow()) }, { bearer: u.access }), 200);
    await awayFromWindowEdge(3600);
    for (let i = 0; i < 3; i += 1) {
      expectError(await c.post('/auth/login', { email: u.email, password: PASSWORD, otp: wrongCode(secret) }), 401, 'invalid_otp');
    }
    const limited = await c.post('/auth/login', { email: u.email, password: PASSWORD, otp: totp(secret, stepNow() + 1) });
    expectError(limited, 429, 'auth_rate_limited');
    assert.match(limited.headers.get('retry-after') ?? '', /^\d+$/);
  });
});

describe('TOTP without MFA_ENCRYPTION_KEY', () => {
  let w;
  let c;
  before(async () => {
    w = await startWorker({ vars: openVars(generateSigningKey()) });
    c = client(w.url);
  });
  after(() => w?.stop());

  test('enrollment answers 403 mfa_unavailable; the status says so; removal answers mfa_not_enrolled', async () => {
    const u = await registerUser(c);
    expectError(await c.post('/auth/mfa/totp/start', { password: PASSWORD }, { bearer: u.access }), 403, 'mfa_unavailable');
    expectError(await c.post('/auth/mfa/totp/confirm', { otp: '123456' }, { bearer: u.access }), 403, 'mfa_unavailable');
    expectError(await c.post('/auth/mfa/recovery-codes', { password: PASSWORD }, { bearer: u.access }), 403, 'mfa_unavailable');
    const res = await c.get('/auth/mfa', { bearer: u.access });
    expectStatus(res, 200);
    assert.equal(res.body.totp.available, false);
    expectError(await c.request('DELETE', '/auth/mfa/totp', { json: { password: PASSWORD }, bearer: u.access }), 409, 'mfa_not_enrolled');
    expectStatus(await c.post('/auth/login', { email: u.email, password: PASSWORD, otp: '123456' }), 200);
  });
});
