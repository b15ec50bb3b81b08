// Rate limits in workerd with local D1: each limit trips exactly at its threshold (429
// auth_rate_limited with Retry-After) and releases when its fixed window ends.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { PASSWORD, client, expectError, expectStatus, refreshBody, sleep, uniqueEmail } from '../support/http.mjs';
import { generateSigningKey, startWorker } from '../support/worker.mjs';

const WINDOW_S = 4;

/** Waits for the start of a fresh fixed window (plus a little), so a burst stays inside it. */
async function windowStart() {
  const ms = WINDOW_S * 1000;
  await sleep(ms - (Date.now() % ms) + 50);
}

describe('rate limits', () => {
  let w;
  let c;
  before(async () => {
    w = await startWorker({
      vars: {
        REGISTRATION: 'open',
        JWT_SIGNING_KEY: generateSigningKey().d,
        PBKDF2_ITERATIONS: '10000',
        RATE_LIMIT_WINDOW_SECONDS: String(WINDOW_S),
        RATE_LIMIT_LOGIN_PER_ACCOUNT: '3',
        RATE_LIMIT_LOGIN_PER_ACCOUNT_TOTAL: '6',
        RATE_LIMIT_LOGIN_PER_IP: '5',
        RATE_LIMIT_REGISTER_PER_IP: '2',
        RATE_LIMIT_REFRESH_PER_FAMILY: '2',
      },
    });
    c = client(w.url);
  });
  after(() => w?.stop());

  const register = (email, ip) =>
    c.post('/auth/register', { email, password: PASSWORD, refresh_token_in_body: true }, { headers: { 'cf-connecting-ip': ip } });
  const login = (email, password, ip) =>
    c.post('/auth/login', { email, password, refresh_token_in_body: true }, { headers: { 'cf-connecting-ip': ip } });

  test('registration per IP: the third in a window is refused, the next window allows it', async () => {
    await windowStart();
    expectStatus(await register(uniqueEmail(), '192.0.2.1'), 201);
    expectStatus(await register(uniqueEmail(), '192.0.2.1'), 201);
    const res = await register(uniqueEmail(), '192.0.2.1');
    expectError(res, 429, 'auth_rate_limited');
    const retry = Number(res.headers.get('retry-after'));
    assert.ok(retry >= 1 && retry <= WINDOW_S, `Retry-After ${retry}`);
    expectStatus(await register(uniqueEmail(), '192.0.2.2'), 201);
    const row = await w.db.prepare("SELECT count, expires_at - window_start AS len FROM rate_limits WHERE key = 'register_ip:192.0.2.1'").first();
    assert.deepEqual({ ...row }, { count: 3, len: WINDOW_S * 1000 });
    await sleep(retry * 1000);
    expectStatus(await register(uniqueEmail(), '192.0.2.1'), 201);
  });

  test('IPv6 clients count per /64: a fresh address in the same /64 is the same client', async () => {
    await windowStart();
    expectStatus(await register(uniqueEmail(), '2001:db8:a:b::1'), 201);
    expectStatus(await register(uniqueEmail(), '2001:db8:a:b:ffff:ffff:ffff:fffe'), 201);
    expectError(await register(uniqueEmail(), '2001:db8:a:b:1234::9'), 429, 'auth_rate_limited');
    expectStatus(await register(uniqueEmail(), '2001:db8:a:c::1'), 201);
    const row = await w.db.prepare("SELECT count FROM rate_limits WHERE key = 'register_ip:2001:db8:a:b::/64'").first();
    assert.equal(row?.count, 3);
  });

  test('login per account and network: 3 attempts, right or wrong, then 429 until the window ends; the owner elsewhere is not locked out', async () => {
    const email = uniqueEmail();
    expectStatus(await register(email, '192.0.2.10'), 201);
    await windowStart();
    expectError(await login(email, 'wrong password', '192.0.2.11'), 401, 'invalid_credentials');
    expectError(await login(email, 'wrong password', '192.0.2.11'), 401, 'invalid_credentials');
    expectStatus(await login(email.toUpperCase(), PASSWORD, '192.0.2.11'), 200);
    const res = await login(email, PASSWORD, '192.0.2.11');
    expectError(res, 429, 'auth_rate_limited');
    const retry = Number(res.headers.get('retry-after'));
    assert.ok(retry >= 1 && retry <= WINDOW_S, `Retry-After ${retry}`);
    expectStatus(await login(email, PASSWORD, '192.0.2.12'), 200);
    await sleep(retry * 1000);
    expectStatus(await login(email, PASSWORD, '192.0.2.11'), 200);
  });

  test('login per account from all networks: a spread attack meets the ceiling, the browser that logged in before passes it', async () => {
    const email = uniqueEmail();
    expectStatus(await register(email, '192.0.2.60'), 201);
    await windowStart();
    // The owner's browser logs in (cookie mode) and keeps the device cookie.
    const first = await c.post('/auth/login', { email, password: PASSWORD }, { headers: { 'cf-connecting-ip': '192.0.2.61' } });
    expectStatus(first, 200);
    const device = first.cookie('gatehouse_device');
    assert.ok(device, first.describe());
    assert.equal(device.attrs.httponly, true);
    assert.equal(device.attrs.secure, true);
    assert.equal(device.attrs.path, '/auth');
    assert.equal(device.attrs['max-age'], String(90 * 86400));
    for (let i = 0; i < 5; i++) {
      expectError(await login(email, 'wrong password', `198.51.100.${60 + i}`), 401, 'invalid_credentials');
    }
    const refused = await login(email, PASSWORD, '198.51.100.70');
    expectError(refused, 429, 'auth_rate_limited');
    const fromBrowser = (cookie) =>
      c.post('/auth/login', { email, password: PASSWORD }, { headers: { 'cf-connecting-ip': '192.0.2.61', cookie } });
    expectStatus(await fromBrowser(`gatehouse_device=${device.value}`), 200);
    const forged = device.value.slice(0, -1) + (device.value.endsWith('A') ? 'B' : 'A');
    expectError(await fromBrowser(`gatehouse_device=${forged}`), 429, 'auth_rate_limited');
    const rows = await w.db.prepare("SELECT key FROM rate_limits WHERE key LIKE 'login_account%'").all();
    for (const { key } of rows.results) {
      assert.ok(!key.includes('@'), `an email in a counter key: ${key}`);
    }
  });

  test('login per IP: 5 attempts over any accounts, then 429', async () => {
    await windowStart();
    for (let i = 0; i < 5; i++) {
      expectError(await login(uniqueEmail(), 'wrong password', '192.0.2.20'), 401, 'invalid_credentials');
    }
    expectError(await login(uniqueEmail(), 'wrong password', '192.0.2.20'), 429, 'auth_rate_limited');
    expectError(await login(uniqueEmail(), 'wrong password', '192.0.2.21'), 401, 'invalid_credentials');
  });

  test('refresh per family: 2 refreshes, then 429; another family is unaffected', async () => {
    const email = uniqueEmail();
    const first = await register(email, '192.0.2.30');
    expectStatus(first, 201);
    await windowStart();
    let token = first.body.refresh_token;
    for (let i = 0; i < 2; i++) {
      const res = await refreshBody(c, token);
      expectStatus(res, 200);
      token = res.body.refresh_token;
    }
    const res = await refreshBody(c, token);
    expectError(res, 429, 'auth_rate_limited');
    const other = await login(email, PASSWORD, '192.0.2.31');
    expectStatus(await refreshBody(c, other.body.refresh_token), 200);
    await sleep(Number(res.headers.get('retry-after')) * 1000);
    expectStatus(await refreshBody(c, token), 200);
  });

  test('20 concurrent logins from one IP count exactly: 5 pass the limiter, 15 are refused', async () => {
    await windowStart();
    const results = await Promise.all(
      Array.from({ length: 20 }, () => login(uniqueEmail(), 'wrong password', '192.0.2.40')),
    );
    const statuses = results.map((r) => r.status).sort();
    assert.equal(statuses.filter((s) => s === 401).length, 5, statuses.join(','));
    assert.equal(statuses.filter((s) => s === 429).length, 15, statuses.join(','));
    const row = await w.db.prepare("SELECT count FROM rate_limits WHERE key = 'login_ip:192.0.2.40'").first();
    assert.equal(row.count, 20);
  });
});
