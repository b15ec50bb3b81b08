// The `gatehouse` CLI: add-user writes through `wrangler d1 execute --local` into the same D1 the
// worker then serves from; keygen's key works as the worker's signing key.

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { client, expectError, expectStatus } from '../support/http.mjs';
import { startWorker } from '../support/worker.mjs';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const CLI = path.join(ROOT, 'target', 'release', 'gatehouse');
const run = promisify(execFile);

/** Runs the CLI with `input` on stdin; resolves to { code, stdout, stderr }. */
function cli(args, input = '') {
  return new Promise((resolve) => {
    const child = execFile(CLI, args, { cwd: ROOT, env: { ...process.env, WRANGLER_SEND_METRICS: 'false' } }, (err, stdout, stderr) =>
      resolve({ code: err ? err.code : 0, stdout, stderr }),
    );
    child.stdin.end(input);
  });
}

describe('gatehouse CLI', () => {
  let w;
  let seed;
  const results = {};

  before(async () => {
    assert.ok(existsSync(CLI), 'build the CLI first: cargo build --release --bin gatehouse');
    const keygen = await run(CLI, ['keygen', '--env']);
    seed = /^JWT_SIGNING_KEY=([A-Za-z0-9_-]{43})$/m.exec(keygen.stdout)?.[1];
    assert.ok(seed, `keygen --env printed: ${keygen.stdout}`);
    w = await startWorker({
      vars: { JWT_SIGNING_KEY: seed },
      beforeStart: async (persistDir) => {
        const common = ['--local', '--persist-to', persistDir, '--iterations', '10000', '--password-stdin'];
        results.admin = await cli(['add-user', '--email', ' Root@Example.COM ', '--name', "Ann O'Neil", '--roles', 'admin,user', ...common], 'first password\n');
        results.duplicate = await cli(['add-user', '--email', 'root@example.com', ...common], 'another password\n');
        results.editor = await cli(['add-user', '--email', 'ed@example.com', '--roles', 'editor', ...common], 'old password!\n');
        results.update = await cli(['add-user', '--update', '--email', 'ed@example.com', '--roles', 'editor,user', ...common], 'new password!\n');
        results.weak = await cli(['add-user', '--email', 'weak@example.com', ...common], 'short\n');
      },
    });
  });
  after(() => w?.stop());

  test('keygen prints a seed the worker signs with, and its public JWK', async () => {
    const { stdout } = await run(CLI, ['keygen']);
    const jwk = JSON.parse(stdout.split('\n').find((l) => l.startsWith('{')));
    assert.equal(jwk.kty, 'OKP');
    assert.equal(jwk.crv, 'Ed25519');
    assert.ok(!('d' in jwk), 'the public JWK must not contain the private key');
    const jwks = await client(w.url).get('/.well-known/jwks.json');
    assert.equal(jwks.body.keys.length, 1);
  });

  test('add-user creates a user who can log in with the given roles, email normalised', async () => {
    assert.equal(results.admin.code, 0, results.admin.stderr);
    assert.match(results.admin.stdout, /root@example\.com/);
    const res = await client(w.url).post('/auth/login', { email: 'root@example.com', password: 'first password' });
    expectStatus(res, 200);
    assert.deepEqual(res.body.user.roles, ['admin', 'user']);
    assert.equal(res.body.user.name, "Ann O'Neil");
  });

  test('add-user refuses a taken email without --update, and a weak password', async () => {
    assert.equal(results.duplicate.code, 2);
    assert.match(results.duplicate.stderr, /already exists/);
    assert.equal(results.weak.code, 2);
    assert.match(results.weak.stderr, /at least 8 characters/);
    const res = await client(w.url).post('/auth/login', { email: 'weak@example.com', password: 'short' });
    expectError(res, 401, 'invalid_credentials');
  });

  test('add-user --update replaces password and roles', async () => {
    assert.equal(results.editor.code, 0, results.editor.stderr);
    assert.equal(results.update.code, 0, results.update.stderr);
    const old = await client(w.url).post('/auth/login', { email: 'ed@example.com', password: 'old password!' });
    expectError(old, 401, 'invalid_credentials');
    const res = await client(w.url).post('/auth/login', { email: 'ed@example.com', password: 'new password!' });
    expectStatus(res, 200);
    assert.deepEqual(res.body.user.roles, ['editor', 'user']);
  });

  test('the CLI never echoes the password', () => {
    for (const r of Object.values(results)) {
      for (const secret of ['first password', 'another password', 'old password!', 'new password!']) {
        assert.ok(!r.stdout.includes(secret) && !r.stderr.includes(secret), 'password echoed');
      }
    }
  });
});
