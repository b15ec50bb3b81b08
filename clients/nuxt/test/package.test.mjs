// @gatehouse/nuxt as a package: what `npm pack` ships, and that everything it imports is
// declared (its client) or provided by the site (peer dependencies and Nuxt's #app alias).
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const DIR = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const pkg = JSON.parse(readFileSync(path.join(DIR, 'package.json'), 'utf8'));
const [packed] = JSON.parse(execFileSync('npm', ['pack', '--dry-run', '--json', '--loglevel=error'], { cwd: DIR, encoding: 'utf8' }));
const files = packed.files.map((f) => f.path).sort();

test('npm pack ships the module, its runtime and their types; no tests or tooling', () => {
  assert.equal(packed.name, '@gatehouse/nuxt');
  const runtime = ['composables', 'middleware', 'plugin', 'state'].flatMap((n) => [`src/runtime/${n}.d.ts`, `src/runtime/${n}.js`]);
  assert.deepEqual(files, ['README.md', 'package.json', 'src/module.d.ts', 'src/module.mjs', ...runtime, 'src/runtime/types.d.ts'].sort());
  assert.equal(pkg.type, 'module');
  assert.deepEqual(pkg.exports['.'], { types: './src/module.d.ts', import: './src/module.mjs' });
});

test('depends on the client package of this repository, and on the site for Nuxt and Vue', () => {
  const client = JSON.parse(readFileSync(path.join(DIR, '..', 'js', 'package.json'), 'utf8'));
  assert.deepEqual(pkg.dependencies, { '@gatehouse/client': client.version });
  assert.deepEqual(Object.keys(pkg.peerDependencies).sort(), ['@nuxt/kit', 'nuxt', 'vue']);
  const allowed = new Set([...Object.keys(pkg.dependencies), ...Object.keys(pkg.peerDependencies), '#app']);
  for (const file of files.filter((f) => /\.(m?js|d\.ts)$/.test(f))) {
    const source = readFileSync(path.join(DIR, file), 'utf8');
    for (const [, spec] of source.matchAll(/(?:from|import)\s*\(?\s*'([^']+)'/g)) {
      if (spec.startsWith('.') || spec.startsWith('node:')) continue;
      const name = spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : spec.split('/')[0];
      assert.ok(allowed.has(name) || (name === 'nuxt' && spec === 'nuxt/schema'), `${file} imports ${spec}, which the package does not declare`);
    }
  }
});

test('every runtime file the module adds is shipped, with its declarations', () => {
  const module = readFileSync(path.join(DIR, 'src', 'module.mjs'), 'utf8');
  const added = [...module.matchAll(/resolve\('\.\/(runtime\/[^']+)'\)/g)].map((m) => `src/${m[1]}`);
  assert.ok(added.length >= 4, added.join(', '));
  for (const file of added) {
    if (file === 'src/runtime') continue;
    assert.ok(files.includes(file), `${file} is shipped`);
    if (file.endsWith('.js')) assert.ok(files.includes(file.replace(/\.js$/, '.d.ts')), `${file} has declarations`);
  }
});
