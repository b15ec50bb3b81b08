// Passkeys (WebAuthn) in workerd with local D1, driven by a software authenticator
// (tests/support/webauthn.mjs: node:crypto keys, hand-made CBOR): both ceremonies with ES256
// and EdDSA credentials, the session a passkey sign-in starts, every refusal with its code,
// single-use challenges under concurrency, self-service and admin removal, the audit trail.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { SITE_ORIGIN, client, expectError, expectStatus, openVars, registerUser } from '../support/http.mjs';
import { PEPPER, userWithRoles } from '../support/admin.mjs';
import { FLAG_UP, SoftAuthenticator, rsaCoseKey } from '../support/webauthn.mjs';
import { generateSigningKey, startWorker } from '../support/worker.mjs';

const RP_ID = 'site.example';

describe('passkeys', () => {
  let w;
  let c;
  before(async () => {
    w = await startWorker({
      vars: openVars(generateSigningKey(), {
        API_KEY_PEPPER: PEPPER,
        WEBAUTHN_RP_ID: RP_ID,
        WEBAUTHN_RP_NAME: 'Site Example',
        WEBAUTHN_ORIGINS: SITE_ORIGIN,
      }),
    });
    c = client(w.url);
  });
  after(() => w?.stop());

  const registerOptions = async (user) => {
    const res = await c.post('/auth/webauthn/register/options', {}, { bearer: user.access });
    expectStatus(res, 200);
    return res.body.publicKey;
  };
  const loginOptions = async () => {
    const res = await c.post('/auth/webauthn/login/options', {});
    expectStatus(res, 200);
    return res.body.publicKey;
  };
  /** A user with a registered passkey of `alg`: { user, auth, passkey }. */
  const withPasskey = async (alg = -7) => {
    const user = await registerUser(c);
    const auth = new SoftAuthenticator({ alg });
    const res = await c.post('/auth/webauthn/register/verify', { ...auth.register(await registerOptions(user), { origin: SITE_ORIGIN }), name: 'My laptop' }, { bearer: user.access });
    expectStatus(res, 201);
    return { user, auth, passkey: res.body.passkey };
  };
  const events = async (userId, kind) =>
    (await w.db.prepare('SELECT kind, detail, ip FROM audit_events WHERE subject_user_id = ?1 AND kind = ?2 ORDER BY id').bind(userId, kind).all()).results;

  test('registration options name the RP, the user, and the passkeys to exclude', async () => {
    const { user, passkey } = await withPasskey();
    const opts = await registerOptions(user);
    assert.deepEqual(opts.rp, { id: RP_ID, name: 'Site Example' });
    assert.equal(Buffer.from(opts.user.id, 'base64url').toString(), user.user.id);
    assert.equal(opts.user.name, user.email);
    assert.equal(Buffer.from(opts.challenge, 'base64url').length, 32);
    assert.deepEqual(opts.pubKeyCredParams.map((p) => p.alg), [-8, -7]);
    assert.equal(opts.authenticatorSelection.residentKey, 'required');
    assert.equal(opts.authenticatorSelection.userVerification, 'required');
    assert.equal(opts.attestation, 'none');
    assert.deepEqual(opts.excludeCredentials, [{ type: 'public-key', id: passkey.credential_id, transports: ['internal'] }]);
    // Only the challenge's hash is stored, with its ceremony, user and a five-minute expiry.
    const hash = (await import('node:crypto')).createHash('sha256').update(Buffer.from(opts.challenge, 'base64url')).digest('hex');
    const row = await w.db.prepare('SELECT * FROM webauthn_challenges WHERE challenge_hash = ?1').bind(hash).first();
    assert.equal(row.ceremony, 'register');
    assert.equal(row.user_id, user.user.id);
    assert.ok(row.expires_at - Date.now() <= 300_000 && row.expires_at - Date.now() > 250_000, `${row.expires_at}`);
    expectError(await c.post('/auth/webauthn/register/options', {}), 401, 'no_auth');
  });

  for (const alg of [-7, -8]) {
    test(`an ${alg === -7 ? 'ES256' : 'EdDSA'} passkey registers and signs in without an email, as a password login does`, async () => {
      const { user, auth, passkey } = await withPasskey(alg);
      assert.equal(passkey.algorithm, alg === -7 ? 'ES256' : 'EdDSA');
      assert.equal(passkey.name, 'My laptop');
      assert.equal(passkey.credential_id, auth.id);
      const opts = await loginOptions();
      assert.equal(opts.rpId, RP_ID);
      assert.deepEqual(opts.allowCredentials, []);
      // Body mode.
      const res = await c.post('/auth/webauthn/login/verify', { ...auth.login(opts, { origin: SITE_ORIGIN }), refresh_token_in_body: true });
      expectStatus(res, 200);
      assert.equal(res.body.user.id, user.user.id);
      assert.match(res.body.refresh_token, /^ghr_/);
      expectStatus(await c.get('/auth/me', { bearer: res.body.access_token }), 200);
      expectStatus(await c.post('/auth/refresh', { refresh_token: res.body.refresh_token }), 200);
      // Cookie mode: the refresh cookie and the session's CSRF token, as a password login.
      const cookieRes = await c.post('/auth/webauthn/login/verify', auth.login(await loginOptions(), { origin: SITE_ORIGIN }));
      expectStatus(cookieRes, 200);
      assert.equal(cookieRes.body.refresh_token, undefined);
      const cookie = cookieRes.cookie();
      assert.ok(cookie.attrs.httponly);
      const refreshed = await c.post('/auth/refresh', undefined, { cookie: cookie.value, csrf: cookieRes.body.csrf_token });
      expectStatus(refreshed, 200);
      expectError(await c.post('/auth/refresh', undefined, { cookie: refreshed.cookie().value }), 403, 'csrf_validation_failed');
      // The counter was stored; the audit log has the registration and both sign-ins.
      const row = await w.db.prepare('SELECT sign_count, last_used_at, public_key FROM passkeys WHERE id = ?1').bind(passkey.id).first();
      assert.equal(row.sign_count, 2);
      assert.ok(row.last_used_at > 0);
      assert.equal((await events(user.user.id, 'passkey_registered')).length, 1);
      const logins = (await events(user.user.id, 'login_succeeded')).filter((e) => JSON.parse(e.detail ?? '{}').method === 'passkey');
      assert.equal(logins.length, 2);
      assert.equal(JSON.parse(logins[0].detail).passkey_id, passkey.id);
    });
  }

  test('packed self-attestation is accepted; other attestations and algorithms are refused', async () => {
    const user = await registerUser(c);
    const packed = new SoftAuthenticator();
    expectStatus(await c.post('/auth/webauthn/register/verify', packed.register(await registerOptions(user), { origin: SITE_ORIGIN, fmt: 'packed' }), { bearer: user.access }), 201);
    const audit = await events(user.user.id, 'passkey_registered');
    assert.equal(JSON.parse(audit[0].detail).attestation, 'self');
    const other = new SoftAuthenticator();
    expectError(await c.post('/auth/webauthn/register/verify', other.register(await registerOptions(user), { origin: SITE_ORIGIN, fmt: 'fido-u2f' }), { bearer: user.access }), 400, 'webauthn_attestation_unsupported');
    expectError(await c.post('/auth/webauthn/register/verify', other.register(await registerOptions(user), { origin: SITE_ORIGIN, coseKey: rsaCoseKey() }), { bearer: user.access }), 400, 'webauthn_algorithm_unsupported');
    expectError(await c.post('/auth/webauthn/register/verify', other.register(await registerOptions(user), { origin: SITE_ORIGIN, flags: FLAG_UP }), { bearer: user.access }), 400, 'webauthn_user_not_verified');
    // The same credential a second time (here by another user): refused, nothing stored.
    const second = await registerUser(c);
    expectError(await c.post('/auth/webauthn/register/verify', packed.register(await registerOptions(second), { origin: SITE_ORIGIN }), { bearer: second.access }), 409, 'passkey_exists');
    assert.equal((await w.db.prepare('SELECT count(*) AS n FROM passkeys WHERE user_id = ?1').bind(second.user.id).first()).n, 0);
    const failures = (await events(user.user.id, 'passkey_registration_failed')).map((e) => JSON.parse(e.detail).cause);
    assert.deepEqual(failures, ['webauthn_attestation_unsupported', 'webauthn_algorithm_unsupported', 'webauthn_user_not_verified']);
    assert.deepEqual((await events(second.user.id, 'passkey_registration_failed')).map((e) => JSON.parse(e.detail).cause), ['passkey_exists']);
  });

  test('wrong origin, wrong RP ID, replayed, expired and misdirected challenges are refused with their codes', async () => {
    const { user, auth } = await withPasskey();
    const verify = (body) => c.post('/auth/webauthn/login/verify', body);
    expectError(await verify(auth.login(await loginOptions(), { origin: 'https://evil.example' })), 400, 'webauthn_origin_mismatch');
    expectError(await verify(auth.login(await loginOptions(), { origin: `${SITE_ORIGIN}:8443` })), 400, 'webauthn_origin_mismatch');
    expectError(await verify(auth.login(await loginOptions(), { origin: SITE_ORIGIN, rpId: 'evil.example' })), 400, 'webauthn_rp_id_mismatch');
    expectError(await verify(auth.login(await loginOptions(), { origin: SITE_ORIGIN, flags: FLAG_UP })), 400, 'webauthn_user_not_verified');
    // Replay: the challenge was used up by the first verification.
    const answer = auth.login(await loginOptions(), { origin: SITE_ORIGIN });
    expectStatus(await verify(answer), 200);
    expectError(await verify(answer), 400, 'webauthn_challenge_invalid');
    // A challenge nobody issued, and a registration's challenge in a login.
    expectError(await verify(auth.login({ challenge: Buffer.alloc(32, 7).toString('base64url'), rpId: RP_ID }, { origin: SITE_ORIGIN })), 400, 'webauthn_challenge_invalid');
    expectError(await verify(auth.login({ challenge: (await registerOptions(user)).challenge, rpId: RP_ID }, { origin: SITE_ORIGIN })), 400, 'webauthn_challenge_invalid');
    // Another user's registration challenge.
    const other = await registerUser(c);
    const stranger = new SoftAuthenticator();
    expectError(await c.post('/auth/webauthn/register/verify', stranger.register(await registerOptions(user), { origin: SITE_ORIGIN }), { bearer: other.access }), 400, 'webauthn_challenge_invalid');
    // Expired: the challenge is past its five minutes (moved back in D1), and used up anyway.
    const opts = await loginOptions();
    await w.db.prepare('UPDATE webauthn_challenges SET expires_at = ?1').bind(Date.now() - 1).run();
    const late = auth.login(opts, { origin: SITE_ORIGIN });
    expectError(await verify(late), 400, 'webauthn_challenge_expired');
    expectError(await verify(late), 400, 'webauthn_challenge_invalid');
    // The failures after the challenge are audited against the passkey's owner.
    const causes = (await events(user.user.id, 'passkey_login_failed')).map((e) => JSON.parse(e.detail).cause);
    assert.deepEqual(causes, ['webauthn_origin_mismatch', 'webauthn_origin_mismatch', 'webauthn_rp_id_mismatch', 'webauthn_user_not_verified']);
  });

  test("someone else's credential, an unknown one, a forged signature and a disabled user are refused", async () => {
    const a = await withPasskey();
    const b = await withPasskey(-8);
    const verify = (body) => c.post('/auth/webauthn/login/verify', body);
    // A's credential presented with B's user handle.
    expectError(await verify(a.auth.login(await loginOptions(), { origin: SITE_ORIGIN, userHandle: b.auth.userHandle })), 401, 'passkey_user_mismatch');
    // B's credential id, signed with A's key.
    const forged = a.auth.login(await loginOptions(), { origin: SITE_ORIGIN, userHandle: b.auth.userHandle });
    forged.id = b.auth.id;
    forged.rawId = b.auth.id;
    expectError(await verify(forged), 401, 'webauthn_signature_invalid');
    // A credential never registered.
    expectError(await verify(new SoftAuthenticator().login(await loginOptions(), { origin: SITE_ORIGIN })), 401, 'passkey_unknown');
    // A disabled user cannot sign in with a passkey either.
    await w.db.prepare('UPDATE users SET disabled = 1 WHERE id = ?1').bind(a.user.user.id).run();
    expectError(await verify(a.auth.login(await loginOptions(), { origin: SITE_ORIGIN })), 401, 'invalid_credentials');
    await w.db.prepare('UPDATE users SET disabled = 0 WHERE id = ?1').bind(a.user.user.id).run();
    expectStatus(await verify(a.auth.login(await loginOptions(), { origin: SITE_ORIGIN })), 200);
    const causes = (await events(b.user.user.id, 'passkey_login_failed')).map((e) => JSON.parse(e.detail).cause);
    assert.deepEqual(causes, ['webauthn_signature_invalid']);
    assert.deepEqual((await events(a.user.user.id, 'passkey_login_failed')).map((e) => JSON.parse(e.detail).cause), ['passkey_user_mismatch', 'invalid_credentials']);
  });

  test('a counter regression flags the passkey, is audited, and blocks it from then on', async () => {
    const { user, auth, passkey } = await withPasskey();
    for (let i = 0; i < 3; i += 1) expectStatus(await c.post('/auth/webauthn/login/verify', auth.login(await loginOptions(), { origin: SITE_ORIGIN })), 200);
    // A clone of the authenticator, still at counter 2.
    expectError(await c.post('/auth/webauthn/login/verify', auth.login(await loginOptions(), { origin: SITE_ORIGIN, counter: 2 })), 401, 'passkey_counter_regression');
    const row = await w.db.prepare('SELECT sign_count, flagged_at FROM passkeys WHERE id = ?1').bind(passkey.id).first();
    assert.equal(row.sign_count, 3);
    assert.ok(row.flagged_at > 0);
    const [ev] = await events(user.user.id, 'passkey_counter_regression');
    assert.deepEqual(JSON.parse(ev.detail), { passkey_id: passkey.id, stored: 3, presented: 2 });
    // Even the genuine authenticator's next signature is refused now.
    expectError(await c.post('/auth/webauthn/login/verify', auth.login(await loginOptions(), { origin: SITE_ORIGIN })), 401, 'passkey_counter_regression');
    const listed = await c.get('/auth/passkeys', { bearer: user.access });
    assert.ok(listed.body.passkeys[0].flagged_at > 0);
  });

  test('twenty concurrent verifications of one answer: exactly one session', async () => {
    const { auth } = await withPasskey();
    const answer = auth.login(await loginOptions(), { origin: SITE_ORIGIN });
    const results = await Promise.all(Array.from({ length: 20 }, () => c.post('/auth/webauthn/login/verify', { ...answer, refresh_token_in_body: true })));
    const ok = results.filter((r) => r.status === 200);
    assert.equal(ok.length, 1, results.map((r) => r.status).join(','));
    for (const r of results.filter((x) => x.status !== 200)) expectError(r, 400, 'webauthn_challenge_invalid');
  });

  test('users list and delete their passkeys; admins list and remove them, audited', async () => {
    const { user, passkey } = await withPasskey();
    const listed = await c.get('/auth/passkeys', { bearer: user.access });
    expectStatus(listed, 200);
    assert.deepEqual(listed.body.passkeys.map((p) => p.id), [passkey.id]);
    assert.deepEqual(Object.keys(listed.body.passkeys[0]).sort(), ['aaguid', 'algorithm', 'backed_up', 'backup_eligible', 'created_at', 'credential_id', 'flagged_at', 'id', 'last_used_at', 'name', 'transports']);
    expectError(await c.get('/auth/passkeys'), 401, 'no_auth');
    const other = await registerUser(c);
    expectError(await c.del(`/auth/passkeys/${passkey.id}`, { bearer: other.access }), 404, 'not_found');
    expectStatus(await c.del(`/auth/passkeys/${passkey.id}`, { bearer: user.access }), 204);
    expectError(await c.del(`/auth/passkeys/${passkey.id}`, { bearer: user.access }), 404, 'not_found');
    assert.deepEqual((await c.get('/auth/passkeys', { bearer: user.access })).body.passkeys, []);
    assert.equal(JSON.parse((await events(user.user.id, 'passkey_deleted'))[0].detail).by, 'self');

    const admin = await userWithRoles(w, c, ['admin', 'user']);
    const second = await withPasskey();
    const adminList = await c.get(`/admin/users/${second.user.user.id}/passkeys`, { bearer: admin.access });
    expectStatus(adminList, 200);
    assert.deepEqual(adminList.body.passkeys.map((p) => p.id), [second.passkey.id]);
    expectError(await c.get(`/admin/users/${second.user.user.id}/passkeys`, { bearer: second.user.access }), 403, 'insufficient_role');
    expectError(await c.del(`/admin/users/${user.user.id}/passkeys/${second.passkey.id}`, { bearer: admin.access }), 404, 'not_found');
    expectStatus(await c.del(`/admin/users/${second.user.user.id}/passkeys/${second.passkey.id}`, { bearer: admin.access }), 204);
    const row = await w.db.prepare("SELECT actor_user_id, detail FROM audit_events WHERE kind = 'passkey_deleted' AND subject_user_id = ?1").bind(second.user.user.id).first();
    assert.equal(row.actor_user_id, admin.id);
    assert.deepEqual(JSON.parse(row.detail), { passkey_id: second.passkey.id, by: 'admin' });
    // The removed passkey no longer signs in.
    expectError(await c.post('/auth/webauthn/login/verify', second.auth.login(await loginOptions(), { origin: SITE_ORIGIN })), 401, 'passkey_unknown');
  });

  test('malformed ceremonies are 400s that name the member', async () => {
    const user = await registerUser(c);
    const bad = [
      [{}, 'id'],
      [{ id: 'AA', type: 'public-key', response: { clientDataJSON: '!!', attestationObject: 'AA' } }, 'response.clientDataJSON'],
      [{ id: 'AA', type: 'password', response: { clientDataJSON: 'AA', attestationObject: 'AA' } }, 'type'],
      [{ id: 'AA', type: 'public-key', response: { clientDataJSON: Buffer.from('{}').toString('base64url'), attestationObject: 'AA' } }, 'clientDataJSON'],
    ];
    for (const [body, member] of bad) {
      const err = expectError(await c.post('/auth/webauthn/register/verify', body, { bearer: user.access }), 400, 'bad_request');
      assert.ok(err.message.includes(member), err.message);
    }
    const opts = await registerOptions(user);
    const answer = new SoftAuthenticator().register(opts, { origin: SITE_ORIGIN });
    answer.response.attestationObject = Buffer.from([0xa3, 0x01]).toString('base64url');
    expectError(await c.post('/auth/webauthn/register/verify', answer, { bearer: user.access }), 400, 'bad_request');
    expectError(await c.post('/auth/webauthn/login/verify', { id: 'AA', type: 'public-key', response: { clientDataJSON: 'AA', authenticatorData: 'AA' } }), 400, 'bad_request');
    // Bodies that are not JSON objects, on every ceremony endpoint.
    const json = { 'content-type': 'application/json' };
    for (const path of ['/auth/webauthn/register/options', '/auth/webauthn/register/verify', '/auth/webauthn/login/options', '/auth/webauthn/login/verify']) {
      const bearer = path.includes('register') ? user.access : undefined;
      expectError(await c.request('POST', path, { body: 'id=AA', headers: { 'content-type': 'application/x-www-form-urlencoded' }, bearer }), 415, 'unsupported_media_type');
      expectError(await c.request('POST', path, { body: '{"id":', headers: json, bearer }), 400, 'invalid_json');
      expectError(await c.request('POST', path, { body: '[]', headers: json, bearer }), 400, 'bad_request');
      expectError(await c.request('POST', path, { body: 'x'.repeat(70_000), headers: json, bearer }), 413, 'payload_too_large');
    }
  });
});

describe('passkeys switched off', () => {
  let w;
  before(async () => {
    w = await startWorker({ vars: openVars(generateSigningKey()) });
  });
  after(() => w?.stop());

  test('every passkey endpoint answers 404 passkeys_disabled', async () => {
    const c = client(w.url);
    const user = await registerUser(c);
    for (const [method, path] of [
      ['POST', '/auth/webauthn/register/options'],
      ['POST', '/auth/webauthn/register/verify'],
      ['POST', '/auth/webauthn/login/options'],
      ['POST', '/auth/webauthn/login/verify'],
      ['GET', '/auth/passkeys'],
      ['DELETE', '/auth/passkeys/pk_x'],
    ]) {
      expectError(await c.request(method, path, { json: method === 'POST' ? {} : undefined, bearer: user.access }), 404, 'passkeys_disabled');
    }
  });
});
