#!/usr/bin/env node
// Runs the end-to-end suite: every tests/e2e/*.test.mjs (or the files given), one file at a time.
//
//   node tests/run-e2e.mjs                         all files
//   node tests/run-e2e.mjs access-tokens storage   files whose names contain these words
//   node tests/run-e2e.mjs -- --test-name-pattern=grace
//
// The file list is built here rather than by `node --test <dir>`, whose handling of directory
// arguments differs between Node 20 (searches the directory) and later releases (glob patterns).

import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const dir = path.join(path.dirname(fileURLToPath(import.meta.url)), 'e2e');
const argv = process.argv.slice(2);
const sep = argv.indexOf('--');
const filters = sep < 0 ? argv : argv.slice(0, sep);
const extra = sep < 0 ? [] : argv.slice(sep + 1);

const all = readdirSync(dir).filter((f) => f.endsWith('.test.mjs')).sort();
const files = filters.length ? all.filter((f) => filters.some((w) => f.includes(w))) : all;
if (files.length === 0) {
  console.error(`no test file matches ${filters.join(', ')} (have: ${all.join(', ')})`);
  process.exit(2);
}
const args = ['--test', '--test-concurrency=1', ...extra, ...files.map((f) => path.join(dir, f))];
const res = spawnSync(process.execPath, args, { stdio: 'inherit' });
process.exit(res.status ?? 1);
