// Invalid configuration: every path answers 500 misconfigured, and no message reveals a secret.

import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { PASSWORD, client, expectError, expectStatus, uniqueEmail } from '../support/http.mjs';
import { generateSigningKey, startWorker } from '../support/worker.mjs';

const key = generateSigningKey();
// A malformed secret that is still recognisable if it leaks: 24 bytes instead of 32.
const badKey = randomBytes(24).toString('base64url');

const CASES = {
  'ACCESS_TOKEN_TTL=abc': { REGISTRATION: 'open', JWT_SIGNING_KEY: key.d, ACCESS_TOKEN_TTL: 'abc' },
  'PBKDF2_ITERATIONS=200000': { REGISTRATION: 'open', JWT_SIGNING_KEY: key.d, PBKDF2_ITERATIONS: '200000' },
  'no JWT_SIGNING_KEY': { REGISTRATION: 'open' },
  'JWT_SIGNING_KEY of 24 bytes': { REGISTRATION: 'open', JWT_SIGNING_KEY: badKey },
  'JWT_SIGNING_KEY not base64url': { REGISTRATION: 'open', JWT_SIGNING_KEY: `${key.d.slice(0, 40)}!!!` },
};

const REQUESTS = [
  ['GET', '/healthz'],
  ['GET', '/readyz'],
  ['GET', '/.well-known/jwks.json'],
  ['GET', '/auth/me'],
  ['POST', '/auth/login', { email: 'ada@example.com', password: PASSWORD }],
  ['POST', '/auth/register', { email: 'ada@example.com', password: PASSWORD }],
  ['POST', '/auth/refresh', { refresh_token: 'x'.repeat(43) }],
  ['POST', '/auth/logout'],
  ['GET', '/no/such/path'],
  ['GET', '/auth/login'],
];

describe('misconfigured workers', () => {
  const workers = {};
  before(async () => {
    const entries = await Promise.all(
      Object.entries(CASES).map(async ([name, vars]) => [name, await startWorker({ vars })]),
    );
    Object.assign(workers, Object.fromEntries(entries));
  });
  after(() => Promise.all(Object.values(workers).map((w) => w.stop())));

  for (const name of Object.keys(CASES)) {
    test(`${name}: 500 misconfigured on every path, no secret in the answer`, async () => {
      const w = workers[name];
      const c = client(w.url);
      const secrets = [key.d, badKey, CASES[name].JWT_SIGNING_KEY].filter(Boolean);
      for (const [method, path, json] of REQUESTS) {
        const res = await c.request(method, path, json ? { json } : {});
        const err = expectError(res, 500, 'misconfigured');
        for (const s of secrets) {
          assert.ok(!res.text.includes(s), `${method} ${path} answer reveals the signing key: ${res.text}`);
          assert.ok(!res.text.includes(s.slice(0, 16)), `${method} ${path} answer reveals part of the key: ${res.text}`);
          for (const [, v] of res.headers) assert.ok(!v.includes(s.slice(0, 16)), 'a header reveals the key');
        }
        assert.ok(err.message.length < 500, 'message suspiciously long');
      }
      // Nothing was written.
      const n = await w.db.prepare('SELECT count(*) AS n FROM users').first('n');
      assert.equal(n, 0);
      // And the worker did not print the secret either.
      const logs = w.logs();
      for (const s of secrets) assert.ok(!logs.includes(s.slice(0, 16)), `the worker logged the key:\n${logs}`);
    });
  }
});

describe('the configuration shipped in wrangler.toml is valid', () => {
  let w;
  before(async () => {
    w = await startWorker({ wranglerVars: true, vars: { JWT_SIGNING_KEY: key.d, REGISTRATION: 'open' } });
  });
  after(() => w?.stop());

  test('healthz 200 and a register + login with 100,000 PBKDF2 iterations', async () => {
    const c = client(w.url);
    expectStatus(await c.get('/healthz'), 200);
    const email = uniqueEmail();
    expectStatus(await c.post('/auth/register', { email, password: PASSWORD }), 201);
    const res = await c.post('/auth/login', { email, password: PASSWORD });
    expectStatus(res, 200);
    assert.equal(res.body.expires_in, 900);
    const hash = await w.db.prepare('SELECT password_hash FROM users WHERE email = ?').bind(email).first('password_hash');
    assert.match(hash, /^\$pbkdf2-sha256\$i=100000,l=32\$[^$]+\$[^$]+$/);
  });
});
