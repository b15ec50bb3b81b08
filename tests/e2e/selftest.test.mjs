// The selftest build (build-selftest/) runs the Rust storage contract suite against real D1 and
// cross-checks its PBKDF2 against WebCrypto, its AES-256-GCM (WebCrypto in the worker) on the
// known-answer vector the native tests check RustCrypto's against, and WebCrypto's JWS signature
// checks against known answers, behind POST /__selftest/*.

import assert from 'node:assert/strict';
import { createCipheriv } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { client, expectJson, expectStatus, openVars } from '../support/http.mjs';
import { generateSigningKey, ROOT, startWorker } from '../support/worker.mjs';

describe('selftest build', () => {
  let w;
  let c;
  before(async () => {
    w = await startWorker({ selftest: true, vars: openVars(generateSigningKey()) });
    c = client(w.url);
  });
  after(() => w?.stop());

  test('POST /__selftest/contract: every storage contract case passes', async (t) => {
    const res = await c.request('POST', '/__selftest/contract');
    expectStatus(res, 200);
    expectJson(res);
    const { results } = res.body;
    assert.ok(Array.isArray(results), `no results array:\n${res.describe()}`);
    assert.ok(results.length > 0, 'the contract suite ran no case');
    const names = new Set();
    for (const r of results) {
      assert.equal(typeof r.name, 'string', JSON.stringify(r));
      assert.equal(typeof r.ok, 'boolean', JSON.stringify(r));
      assert.ok(!names.has(r.name), `duplicate case name ${r.name}`);
      names.add(r.name);
    }
    const failed = results.filter((r) => !r.ok);
    assert.deepEqual(
      failed.map((r) => `${r.name}: ${r.error}`),
      [],
      `${failed.length} of ${results.length} contract cases failed`,
    );
    for (const r of results) assert.ok(r.error === null || r.error === undefined || r.error === '', `${r.name} ok but error ${r.error}`);
    t.diagnostic(`${results.length} contract cases passed`);
  });

  test('POST /__selftest/pbkdf2: the Rust PBKDF2 matches WebCrypto', async () => {
    const res = await c.request('POST', '/__selftest/pbkdf2');
    expectStatus(res, 200);
    expectJson(res);
    assert.equal(res.body.ok, true, `pbkdf2 cross-check failed:\n${res.describe()}`);
    assert.ok(Array.isArray(res.body.cases), res.describe());
    assert.ok(res.body.cases.length > 0, 'no PBKDF2 cases');
    const failed = res.body.cases.filter((x) => x && typeof x === 'object' && 'ok' in x && x.ok !== true);
    assert.deepEqual(failed, []);
  });

  test('POST /__selftest/aes-gcm: WebCrypto AES-256-GCM gives the known answer, as Node does', async () => {
    const res = await c.request('POST', '/__selftest/aes-gcm');
    expectStatus(res, 200);
    expectJson(res);
    // The GCM specification's test case 16, computed here by Node's own AES-GCM.
    const key = Buffer.from('feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308', 'hex');
    const iv = Buffer.from('cafebabefacedbaddecaf888', 'hex');
    const aad = Buffer.from('feedfacedeadbeeffeedfacedeadbeefabaddad2', 'hex');
    const plaintext = 'd9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a721c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39';
    const cipher = createCipheriv('aes-256-gcm', key, iv);
    cipher.setAAD(aad);
    const expected = Buffer.concat([cipher.update(Buffer.from(plaintext, 'hex')), cipher.final(), cipher.getAuthTag()]).toString('hex');
    assert.equal(res.body.ciphertext, expected, res.describe());
    assert.equal(res.body.opened, plaintext);
    assert.equal(res.body.tampered_refused, true);
    assert.equal(res.body.other_aad_refused, true);
    assert.equal(res.body.ok, true, res.describe());
  });

  test('POST /__selftest/jws: WebCrypto gives the known answers the native checks give', async () => {
    // tests/fixtures/jws-vectors.json: RS256, ES256 and EdDSA signatures, valid and not; the
    // same file is checked natively by tests/issuers.rs (RustCrypto rsa/p256, ed25519-compact).
    const vectors = JSON.parse(readFileSync(path.join(ROOT, 'tests', 'fixtures', 'jws-vectors.json'), 'utf8'));
    const res = await c.request('POST', '/__selftest/jws');
    expectStatus(res, 200);
    expectJson(res);
    assert.equal(res.body.ok, true, `WebCrypto disagrees:\n${res.describe()}`);
    assert.deepEqual(res.body.cases.map((x) => x.name), vectors.map((v) => v.name));
    assert.deepEqual(res.body.cases.filter((x) => x.ok !== true), []);
    assert.ok(vectors.some((v) => v.valid) && vectors.some((v) => !v.valid));
  });

  test('the selftest build still serves the normal API', async () => {
    const res = await c.get('/healthz');
    expectStatus(res, 200);
    assert.deepEqual(res.body, { status: 'ok' });
  });
});
