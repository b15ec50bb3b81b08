// @gatehouse/client as a package: what `npm pack` ships, installed from the tarball into a
// fresh project and imported there (ESM, `exports`, types), and that the shipped module is the
// very file the worker serves at /client/gatehouse.js.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';

const DIR = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const ROOT = path.resolve(DIR, '..', '..');
const TSC = path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
const npm = (args, cwd) => execFileSync('npm', [...args, '--no-audit', '--no-fund', '--loglevel=error'], { cwd, encoding: 'utf8' });

let tmp;
let packed;
before(() => {
  tmp = mkdtempSync(path.join(tmpdir(), 'gatehouse-client-pack-'));
  [packed] = JSON.parse(npm(['pack', '--json', '--pack-destination', tmp], DIR));
});
after(() => rmSync(tmp, { recursive: true, force: true }));

test('npm pack ships the module, its types, the README and package.json; nothing else', () => {
  assert.equal(packed.name, '@gatehouse/client');
  assert.deepEqual(packed.files.map((f) => f.path).sort(), ['README.md', 'gatehouse.d.ts', 'gatehouse.js', 'package.json']);
  const pkg = JSON.parse(readFileSync(path.join(DIR, 'package.json'), 'utf8'));
  assert.equal(pkg.type, 'module');
  assert.deepEqual(pkg.exports['.'], { types: './gatehouse.d.ts', default: './gatehouse.js' });
  for (const field of ['dependencies', 'peerDependencies', 'optionalDependencies', 'scripts']) {
    assert.equal(pkg[field], undefined, `no ${field}`);
  }
});

test('the worker serves the same files (src/routes/assets.rs includes clients/js/gatehouse.js and .d.ts)', () => {
  const asset = readFileSync(path.join(ROOT, 'src', 'routes', 'assets.rs'), 'utf8');
  assert.match(asset, /include_str!\("(\.\.\/)+clients\/js\/gatehouse\.js"\)/);
  assert.match(asset, /include_str!\("(\.\.\/)+clients\/js\/gatehouse\.d\.ts"\)/);
});

test('installed from the tarball into a new project: imports, works, and type-checks', () => {
  const project = path.join(tmp, 'site');
  mkdirSync(project);
  writeFileSync(path.join(project, 'package.json'), JSON.stringify({ name: 'site', private: true, type: 'module' }));
  npm(['install', '--offline', path.join(tmp, packed.filename)], project);
  const installed = path.join(project, 'node_modules', '@gatehouse', 'client');
  for (const file of ['gatehouse.js', 'gatehouse.d.ts']) {
    assert.equal(readFileSync(path.join(installed, file), 'utf8'), readFileSync(path.join(DIR, file), 'utf8'), `${file} shipped unchanged`);
  }

  // The package's exports, a login against a scripted Gatehouse, the error class; deep imports
  // are closed by `exports`.
  writeFileSync(
    path.join(project, 'check.mjs'),
    `import * as gatehouse from '@gatehouse/client';
const { createClient, GatehouseError } = gatehouse;
const answer = (status, body) => new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json' } });
const user = { id: 'usr_1', email: 'a@example.com', name: null, roles: ['user'] };
const gh = createClient({
  baseUrl: 'https://auth.example.com/',
  restore: false,
  locks: null,
  BroadcastChannel: null,
  fetch: async (url, init) => url === 'https://auth.example.com/auth/login'
    ? answer(200, { access_token: 'at', token_type: 'Bearer', expires_in: 900, csrf_token: 'c', user })
    : answer(401, { error: { code: 'invalid_credentials', message: 'no' } }),
});
const out = { exports: Object.keys(gatehouse).sort(), ready: await gh.ready, login: (await gh.login({ email: 'a@example.com', password: 'x' })).id };
out.isError = new GatehouseError(400, 'x') instanceof Error;
try { await import('@gatehouse/client/gatehouse.js'); out.deep = 'imported'; } catch (err) { out.deep = err.code; }
out.pkg = (await import('@gatehouse/client/package.json', { with: { type: 'json' } })).default.name;
console.log(JSON.stringify(out));
`,
  );
  const out = JSON.parse(execFileSync(process.execPath, ['check.mjs'], { cwd: project, encoding: 'utf8' }));
  assert.deepEqual(out, { exports: ['GatehouseError', 'createClient'], ready: null, login: 'usr_1', isError: true, deep: 'ERR_PACKAGE_PATH_NOT_EXPORTED', pkg: '@gatehouse/client' });

  // Every runtime export is declared, and every declared value exists.
  const declared = [...readFileSync(path.join(DIR, 'gatehouse.d.ts'), 'utf8').matchAll(/^export declare (?:function|class|const) (\w+)/gm)].map((m) => m[1]).sort();
  assert.deepEqual(declared, out.exports);

  // The types, found through `exports` by both module resolutions a site may use.
  writeFileSync(
    path.join(project, 'site.ts'),
    `import { createClient, GatehouseError, type User } from '@gatehouse/client';
const gh = createClient({ baseUrl: 'https://auth.example.com' });
export async function who(): Promise<string> {
  try {
    const user: User | null = await gh.ready;
    return user ? user.email : 'nobody';
  } catch (err) {
    return err instanceof GatehouseError ? err.code : 'error';
  }
}
// @ts-expect-error baseUrl is required
createClient({});
`,
  );
  for (const [module, resolution] of [['ESNext', 'Bundler'], ['NodeNext', 'NodeNext']]) {
    const args = ['--noEmit', '--strict', '--target', 'ES2022', '--lib', 'ES2022,DOM', '--module', module, '--moduleResolution', resolution, 'site.ts'];
    execFileSync(process.execPath, [TSC, ...args], { cwd: project, encoding: 'utf8' });
  }
});
