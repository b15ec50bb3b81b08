// A passkey as the second factor of a password login, and as the re-authentication of TOTP
// changes, in workerd with local D1 and the software authenticator
// (tests/support/webauthn.mjs): `mfa_required` answered with `webauthn` instead of `otp`, the
// challenge's purpose and single use, another user's passkey, both factors at once, and
// `{webauthn}` in place of `{password}` for TOTP enrollment, removal and new recovery codes.

import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { PASSWORD, SITE_ORIGIN, client, expectError, expectStatus, openVars, registerUser } from '../support/http.mjs';
import { SoftAuthenticator } from '../support/webauthn.mjs';
import { stepNow, totp } from '../support/totp.mjs';
import { generateSigningKey, startWorker } from '../support/worker.mjs';

const RP_ID = 'site.example';
const MFA_KEY = Buffer.alloc(32, 9).toString('base64url');

describe('passkey as a second factor', () => {
  let w;
  let c;
  before(async () => {
    w = await startWorker({
      vars: openVars(generateSigningKey(), {
        WEBAUTHN_RP_ID: RP_ID,
        WEBAUTHN_RP_NAME: 'Site Example',
        WEBAUTHN_ORIGINS: SITE_ORIGIN,
        MFA_ENCRYPTION_KEY: MFA_KEY,
        TOTP_ISSUER: 'Example Site',
        RATE_LIMIT_LOGIN_PER_ACCOUNT: '1000',
        RATE_LIMIT_LOGIN_PER_ACCOUNT_TOTAL: '1000',
      }),
    });
    c = client(w.url);
  });
  after(() => w?.stop());

  const options = async (purpose, bearer) => {
    const res = await c.post('/auth/webauthn/login/options', purpose ? { purpose } : {}, { bearer });
    expectStatus(res, 200);
    return res.body.publicKey;
  };
  /** A user with a passkey and, unless `totp` is false, TOTP enrolled: { u, auth, passkey, secret }. */
  const account = async ({ withTotp = true } = {}) => {
    const u = await registerUser(c);
    const auth = new SoftAuthenticator();
    const regOpts = await c.post('/auth/webauthn/register/options', {}, { bearer: u.access });
    expectStatus(regOpts, 200);
    const reg = await c.post('/auth/webauthn/register/verify', auth.register(regOpts.body.publicKey, { origin: SITE_ORIGIN }), { bearer: u.access });
    expectStatus(reg, 201);
    let secret;
    if (withTotp) {
      const started = await c.post('/auth/mfa/totp/start', { password: PASSWORD }, { bearer: u.access });
      expectStatus(started, 200);
      secret = started.body.secret;
      expectStatus(await c.post('/auth/mfa/totp/confirm', { otp: totp(secret, stepNow()) }, { bearer: u.access }), 200);
    }
    return { u, auth, passkey: reg.body.passkey, secret };
  };
  const login = (email, extra = {}) => c.post('/auth/login', { email, password: PASSWORD, refresh_token_in_body: true, ...extra });
  const events = async (userId, kind) =>
    (await w.db.prepare('SELECT detail FROM audit_events WHERE subject_user_id = ?1 AND kind = ?2 ORDER BY id').bind(userId, kind).all()).results.map((e) => JSON.parse(e.detail ?? '{}'));

  test('mfa_required, then a passkey assertion as webauthn signs in, audited as the passkey factor', async () => {
    const { u, auth, passkey } = await account();
    expectError(await login(u.email), 401, 'mfa_required');
    const opts = await options('second_factor');
    assert.deepEqual(opts.allowCredentials, []);
    const hash = createHash('sha256').update(Buffer.from(opts.challenge, 'base64url')).digest('hex');
    const row = await w.db.prepare('SELECT ceremony, user_id FROM webauthn_challenges WHERE challenge_hash = ?1').bind(hash).first();
    assert.deepEqual({ ...row }, { ceremony: 'second_factor', user_id: null });
    const res = await login(u.email, { webauthn: auth.login(opts, { origin: SITE_ORIGIN }) });
    expectStatus(res, 200);
    assert.equal(res.body.user.id, u.user.id);
    expectStatus(await c.get('/auth/me', { bearer: res.body.access_token }), 200);
    const succeeded = (await events(u.user.id, 'login_succeeded')).filter((d) => d.mfa);
    assert.deepEqual(succeeded, [{ mfa: 'passkey', passkey_id: passkey.id }]);
    const stored = await w.db.prepare('SELECT sign_count FROM passkeys WHERE id = ?1').bind(passkey.id).first();
    assert.equal(stored.sign_count, 1);
  });

  test("another user's passkey, a replayed or misdirected challenge, and a wrong password are refused", async () => {
    const a = await account();
    const b = await account();
    // B's passkey for A's password: 401 passkey_user_mismatch, recorded against A.
    expectError(await login(a.u.email, { webauthn: b.auth.login(await options('second_factor'), { origin: SITE_ORIGIN }) }), 401, 'passkey_user_mismatch');
    const failed = (await events(a.u.user.id, 'login_failed')).filter((d) => d.mfa === 'passkey');
    assert.deepEqual(failed, [{ cause: 'passkey_user_mismatch', mfa: 'passkey', passkey_id: b.passkey.id }]);
    // B's counter did not move.
    assert.equal((await w.db.prepare('SELECT sign_count FROM passkeys WHERE id = ?1').bind(b.passkey.id).first()).sign_count, 0);
    // Replay: the first use took the challenge.
    const answer = a.auth.login(await options('second_factor'), { origin: SITE_ORIGIN });
    expectStatus(await login(a.u.email, { webauthn: answer }), 200);
    expectError(await login(a.u.email, { webauthn: answer }), 400, 'webauthn_challenge_invalid');
    // A passwordless sign-in's challenge is not a second factor's, nor the other way round.
    expectError(await login(a.u.email, { webauthn: a.auth.login(await options(), { origin: SITE_ORIGIN }) }), 400, 'webauthn_challenge_invalid');
    expectError(await c.post('/auth/webauthn/login/verify', a.auth.login(await options('second_factor'), { origin: SITE_ORIGIN })), 400, 'webauthn_challenge_invalid');
    // Signature, origin: checked as in a sign-in.
    expectError(await login(a.u.email, { webauthn: a.auth.login(await options('second_factor'), { origin: 'https://evil.example' }) }), 400, 'webauthn_origin_mismatch');
    const forged = b.auth.login(await options('second_factor'), { origin: SITE_ORIGIN, userHandle: a.auth.userHandle });
    forged.id = a.auth.id;
    forged.rawId = a.auth.id;
    expectError(await login(a.u.email, { webauthn: forged }), 401, 'webauthn_signature_invalid');
    // A wrong password stops before the passkey (its challenge stays unused).
    const fresh = a.auth.login(await options('second_factor'), { origin: SITE_ORIGIN });
    expectError(await c.post('/auth/login', { email: a.u.email, password: 'wrong wrong wrong', webauthn: fresh }), 401, 'invalid_credentials');
    expectStatus(await login(a.u.email, { webauthn: fresh }), 200);
  });

  test('otp and webauthn together are 400; an unknown purpose is 400', async () => {
    const { u, auth, secret } = await account();
    const both = { otp: totp(secret, stepNow()), webauthn: auth.login(await options('second_factor'), { origin: SITE_ORIGIN }) };
    const err = expectError(await login(u.email, both), 400, 'bad_request');
    assert.ok(err.message.includes('webauthn'), err.message);
    expectError(await c.post('/auth/webauthn/login/options', { purpose: 'everything' }), 400, 'bad_request');
    const malformed = expectError(await login(u.email, { webauthn: { id: 'AA', type: 'public-key', response: {} } }), 400, 'bad_request');
    assert.ok(malformed.message.includes('webauthn.response'), malformed.message);
  });

  test('without TOTP a password login needs no second factor; a passkey sent is still verified', async () => {
    const { u, auth } = await account({ withTotp: false });
    expectStatus(await login(u.email), 200);
    const other = await account({ withTotp: false });
    expectError(await login(u.email, { webauthn: other.auth.login(await options('second_factor'), { origin: SITE_ORIGIN }) }), 401, 'passkey_user_mismatch');
    expectStatus(await login(u.email, { webauthn: auth.login(await options('second_factor'), { origin: SITE_ORIGIN }) }), 200);
  });

  test('a passkey re-authenticates TOTP removal, enrollment and new recovery codes; a wrong one is refused', async () => {
    const { u, auth, passkey } = await account();
    const other = await account();
    expectError(await c.post('/auth/webauthn/login/options', { purpose: 'reauthenticate' }), 401, 'no_auth');
    const opts = await options('reauthenticate', u.access);
    assert.deepEqual(opts.allowCredentials, [{ type: 'public-key', id: passkey.credential_id, transports: ['internal'] }]);
    const del = (json, bearer = u.access) => c.request('DELETE', '/auth/mfa/totp', { json, bearer });
    // Another user's passkey on a challenge issued to this user.
    expectError(await del({ webauthn: other.auth.login(opts, { origin: SITE_ORIGIN }) }), 401, 'passkey_user_mismatch');
    assert.deepEqual((await events(u.user.id, 'totp_removal_failed')).map((d) => d.cause), ['passkey_user_mismatch']);
    // A challenge issued to another user, and a second-factor challenge, do not re-authenticate.
    expectError(await del({ webauthn: auth.login(await options('reauthenticate', other.u.access), { origin: SITE_ORIGIN }) }), 400, 'webauthn_challenge_invalid');
    expectError(await del({ webauthn: auth.login(await options('second_factor'), { origin: SITE_ORIGIN }) }), 400, 'webauthn_challenge_invalid');
    // Both, or neither.
    expectError(await del({ password: PASSWORD, webauthn: auth.login(await options('reauthenticate', u.access), { origin: SITE_ORIGIN }) }), 400, 'bad_request');
    expectError(await del({}), 400, 'bad_request');
    // New recovery codes, removal, a new enrollment: each with a fresh assertion.
    const codes = await c.post('/auth/mfa/recovery-codes', { webauthn: auth.login(await options('reauthenticate', u.access), { origin: SITE_ORIGIN }) }, { bearer: u.access });
    expectStatus(codes, 200);
    assert.equal(codes.body.recovery_codes.length, 10);
    const answer = auth.login(await options('reauthenticate', u.access), { origin: SITE_ORIGIN });
    expectStatus(await del({ webauthn: answer }), 204);
    expectStatus(await login(u.email), 200);
    // The same answer again: its challenge is used up.
    expectError(await del({ webauthn: answer }), 400, 'webauthn_challenge_invalid');
    const started = await c.post('/auth/mfa/totp/start', { webauthn: auth.login(await options('reauthenticate', u.access), { origin: SITE_ORIGIN }) }, { bearer: u.access });
    expectStatus(started, 200);
    assert.match(started.body.secret, /^[A-Z2-7]+$/);
  });
});
