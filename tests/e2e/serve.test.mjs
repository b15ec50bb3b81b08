// scripts/serve.mjs: the CLI around startWorker used by scripts and benchmarks.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import path from 'node:path';
import { test } from 'node:test';
import { PASSWORD, client, expectError, expectStatus, uniqueEmail } from '../support/http.mjs';
import { ROOT, generateSigningKey } from '../support/worker.mjs';

/** Starts serve.mjs and resolves once it printed its URL. */
function serve(args) {
  const child = spawn(process.execPath, [path.join(ROOT, 'scripts', 'serve.mjs'), '--port', '0', ...args], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (d) => (stderr += d));
  const exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  const ready = new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`serve.mjs not ready after 60 s:\n${stdout}\n${stderr}`)), 60_000);
    child.stdout.setEncoding('utf8').on('data', (d) => {
      stdout += d;
      const m = /^gatehouse listening on (http:\/\/127\.0\.0\.1:(\d+))$/m.exec(stdout);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    });
    exited.then(({ code, signal }) => {
      clearTimeout(timer);
      reject(new Error(`serve.mjs exited (${code ?? signal}) before it was ready:\n${stdout}\n${stderr}`));
    });
  });
  return { child, ready, exited, out: () => ({ stdout, stderr }) };
}

test('throwaway key, one line on stdout, SIGTERM → exit 0', async () => {
  const s = serve(['--var', 'REGISTRATION=open', '--var', 'PBKDF2_ITERATIONS=10000']);
  const url = await s.ready;
  const c = client(url);
  expectStatus(await c.get('/healthz'), 200);
  expectStatus(await c.get('/readyz'), 200);
  expectStatus(await c.post('/auth/register', { email: uniqueEmail(), password: PASSWORD }), 201);
  s.child.kill('SIGTERM');
  const { code, signal } = await s.exited;
  const { stdout, stderr } = s.out();
  assert.equal(signal, null, stderr);
  assert.equal(code, 0, stderr);
  assert.equal(stdout, `gatehouse listening on ${url}\n`);
  assert.match(stderr, /throwaway/);
  assert.doesNotMatch(stderr, /[A-Za-z0-9_-]{43}/, 'the generated key must not be printed');
});

test('--var JWT_SIGNING_KEY, --no-migrate, SIGINT → exit 0', async () => {
  const key = generateSigningKey();
  const s = serve(['--var', `JWT_SIGNING_KEY=${key.d}`, '--no-migrate']);
  const url = await s.ready;
  const c = client(url);
  const jwks = await c.get('/.well-known/jwks.json');
  expectStatus(jwks, 200);
  assert.equal(jwks.body.keys[0].x, key.x);
  expectError(await c.get('/readyz'), 503, 'unavailable');
  s.child.kill('SIGINT');
  const { code } = await s.exited;
  assert.equal(code, 0, s.out().stderr);
  assert.doesNotMatch(s.out().stderr, /throwaway/);
});

test('bad arguments → exit 2 with usage', async () => {
  const child = spawn(process.execPath, [path.join(ROOT, 'scripts', 'serve.mjs'), '--bogus'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (d) => (stderr += d));
  const code = await new Promise((resolve) => child.on('exit', resolve));
  assert.equal(code, 2);
  assert.match(stderr, /usage/);
});
