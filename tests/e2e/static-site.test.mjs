// scripts/static-site.mjs: the file server `scripts/dev.sh` serves the generated Nuxt site with
// (given a path relative to the project, as dev.sh does) and the browser tests use.

import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { startStaticSite } from '../../scripts/static-site.mjs';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

let tmp;
let site;
let base;

before(async () => {
  tmp = await mkdtemp(path.join(ROOT, '.static-site-test-'));
  await mkdir(path.join(tmp, 'public', 'app'), { recursive: true });
  await writeFile(path.join(tmp, 'public', 'index.html'), '<h1>home</h1>');
  await writeFile(path.join(tmp, 'public', 'app', 'x.js'), 'export {}');
  await writeFile(path.join(tmp, 'public', '200.html'), '<h1>spa</h1>');
  await writeFile(path.join(tmp, 'public-secret.txt'), 'outside the root');
  // Relative to the working directory, exactly like dev.sh's `--dir examples/…`.
  const rel = path.relative(process.cwd(), path.join(tmp, 'public'));
  assert.ok(!path.isAbsolute(rel));
  site = await startStaticSite({ root: rel });
  base = `http://127.0.0.1:${site.port}`;
});

after(async () => {
  await site?.close();
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

test('a relative root serves its files with their types', async () => {
  const home = await fetch(`${base}/`);
  assert.equal(home.status, 200);
  assert.match(home.headers.get('content-type'), /^text\/html/);
  assert.equal(await home.text(), '<h1>home</h1>');
  const js = await fetch(`${base}/app/x.js`);
  assert.equal(js.status, 200);
  assert.match(js.headers.get('content-type'), /^text\/javascript/);
});

test('unknown paths get the SPA fallback', async () => {
  const res = await fetch(`${base}/items/42`);
  assert.equal(res.status, 200);
  assert.equal(await res.text(), '<h1>spa</h1>');
});

test('nothing outside the root is served, and a malformed path is a 400, not a crash', async () => {
  for (const p of ['/%2e%2e/public-secret.txt', '/..%2fpublic-secret.txt', '/%2e%2e%2fpublic-secret.txt']) {
    const res = await fetch(`${base}${p}`);
    const body = await res.text();
    assert.ok(!body.includes('outside the root'), `${p} leaked a file outside the root`);
  }
  const bad = await fetch(`${base}/%E0%A4%A`);
  assert.equal(bad.status, 400);
  // The server is still up.
  assert.equal((await fetch(`${base}/`)).status, 200);
});
