// The OpenAPI contract, docs/openapi.yaml: it names every error code and every endpoint of
// docs/http-api.md, and schemathesis (tests/schemathesis/, from the virtualenv scripts/setup.sh
// makes) fuzzes the built worker against it: stateful links (register → login → me → refresh →
// logout, the admin flows with an admin credential), no answer ≥ 500, every status, content
// type, body and required header as documented. At least 2,000 cases a run; the budget is
// GATEHOUSE_FUZZ_MAX_TIME seconds (default 90), and a failing run prints each failure with a curl
// line that reproduces it.

import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { startTarget } from '../schemathesis/target.mjs';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const SPEC = path.join(ROOT, 'docs', 'openapi.yaml');
const RUNNER = path.join(ROOT, 'tests', 'schemathesis', 'run.sh');
const MIN_CASES = 2000;
const MAX_TIME = Number(process.env.GATEHOUSE_FUZZ_MAX_TIME || 90);

/** The schemathesis virtualenv scripts/setup.sh makes (as scripts/env.sh and run.sh locate it). */
function venvPython() {
  const tools = process.env.GATEHOUSE_TOOLS || path.join(homedir(), '.cache', 'gatehouse', 'tools');
  const req = readFileSync(path.join(ROOT, 'tests', 'schemathesis', 'requirements.txt'));
  const hash = createHash('sha256').update(req).digest('hex').slice(0, 12);
  return path.join(tools, `schemathesis-${hash}`, 'bin', 'python');
}

/** docs/openapi.yaml as an object, read by the virtualenv's PyYAML. */
function loadSpec() {
  const python = venvPython();
  assert.ok(existsSync(python), `no schemathesis virtualenv (${python}): run bash scripts/setup.sh`);
  const res = spawnSync(python, ['-c', 'import json, sys, yaml; json.dump(yaml.safe_load(open(sys.argv[1])), sys.stdout)', SPEC], {
    encoding: 'utf8',
    maxBuffer: 64 << 20,
  });
  assert.equal(res.status, 0, `docs/openapi.yaml does not parse:\n${res.stderr}`);
  return JSON.parse(res.stdout);
}

/** Codes docs/http-api.md names (as tests/e2e/zz-error-codes.test.mjs reads them). */
function documentedCodes() {
  const doc = readFileSync(path.join(ROOT, 'docs', 'http-api.md'), 'utf8');
  const codes = new Set();
  for (const m of doc.matchAll(/\b[45]\d\d\s+`([a-z][a-z_]*)`/g)) codes.add(m[1]);
  for (const m of doc.matchAll(/"code"\s*:\s*"([a-z][a-z_]*)"/g)) codes.add(m[1]);
  for (const m of doc.matchAll(/\|\s*`([a-z][a-z_]*)`\s*\|\s*[45]\d\d\b/g)) codes.add(m[1]);
  for (const m of doc.matchAll(/\|\s*[45]\d\d\s*\|\s*`([a-z][a-z_]*)`/g)) codes.add(m[1]);
  // The error-code table lists several codes per row: | 400 | `bad_request`, `invalid_json`, … |
  const table = doc.slice(doc.indexOf('## Error codes'));
  for (const row of table.matchAll(/^\|\s*[45]\d\d\s*\|(.*)\|\s*$/gm)) {
    for (const m of row[1].matchAll(/(?:^|,)\s*`([a-z][a-z_]*)`/g)) codes.add(m[1]);
  }
  return codes;
}

/** `METHOD /path` of every endpoint docs/http-api.md names, path parameters as `{}`. */
function documentedEndpoints() {
  const doc = readFileSync(path.join(ROOT, 'docs', 'http-api.md'), 'utf8');
  const endpoints = new Set();
  for (const m of doc.matchAll(/`(GET|HEAD|POST|PUT|PATCH|DELETE) (\/[^`?]*)`/g)) {
    if (m[2].includes('…')) continue; // `… /admin/…` and the like: families, not endpoints
    endpoints.add(`${m[1]} ${m[2].replace(/\{[^}]*\}/g, '{}')}`);
  }
  return endpoints;
}

function specEndpoints(spec) {
  const endpoints = new Set();
  for (const [p, item] of Object.entries(spec.paths)) {
    for (const method of ['get', 'head', 'post', 'put', 'patch', 'delete', 'options']) {
      if (item[method]) endpoints.add(`${method.toUpperCase()} ${p.replace(/\{[^}]*\}/g, '{}')}`);
    }
  }
  return endpoints;
}

describe('OpenAPI contract (docs/openapi.yaml)', () => {
  let spec;
  before(() => {
    spec = loadSpec();
  });

  test('is OpenAPI 3.1 with the error body and the security schemes', () => {
    assert.match(spec.openapi, /^3\.1\./);
    const error = spec.components.schemas.Error;
    assert.deepEqual(error.required, ['error']);
    assert.deepEqual(error.properties.error.required, ['code', 'message']);
    assert.equal(error.properties.error.properties.code.$ref, '#/components/schemas/ErrorCode');
    const schemes = spec.components.securitySchemes;
    assert.deepEqual(Object.keys(schemes).sort(), ['accessToken', 'apiKey', 'consoleCookie', 'csrfToken', 'refreshCookie']);
    assert.equal(schemes.consoleCookie.in, 'cookie');
    assert.equal(schemes.consoleCookie.name, 'gatehouse_console');
    assert.equal(schemes.refreshCookie.in, 'cookie');
    assert.equal(schemes.refreshCookie.name, 'gatehouse_refresh');
    assert.equal(schemes.csrfToken.name, 'X-CSRF-Token');
  });

  test('its ErrorCode enum is exactly the error codes of docs/http-api.md', () => {
    const documented = [...documentedCodes()].sort();
    const inSpec = [...spec.components.schemas.ErrorCode.enum].sort();
    assert.ok(documented.length >= 29, `only ${documented.length} codes read from docs/http-api.md`);
    assert.deepEqual(
      documented.filter((c) => !inSpec.includes(c)),
      [],
      'codes of docs/http-api.md missing from the ErrorCode enum',
    );
    assert.deepEqual(
      inSpec.filter((c) => !documented.includes(c)),
      [],
      'codes in the ErrorCode enum that docs/http-api.md does not name',
    );
  });

  test('every error answer it describes uses a code of the enum', () => {
    const codes = new Set(spec.components.schemas.ErrorCode.enum);
    for (const [name, schema] of Object.entries(spec.components.schemas)) {
      if (!/^Error\d/.test(name)) continue;
      const narrowed = schema.allOf[1].properties.error.properties.code;
      for (const code of narrowed.enum ?? [narrowed.const]) {
        assert.ok(codes.has(code), `${name} names ${code}, which the ErrorCode enum lacks`);
      }
    }
  });

  test('it has every endpoint of docs/http-api.md', () => {
    const documented = documentedEndpoints();
    const inSpec = specEndpoints(spec);
    assert.ok(documented.size >= 25, `only ${documented.size} endpoints read from docs/http-api.md`);
    assert.deepEqual([...documented].filter((e) => !inSpec.has(e)).sort(), []);
    // Every GET has its HEAD (answered wherever GET is), and every operation an operationId or
    // is a preflight.
    for (const [p, item] of Object.entries(spec.paths)) {
      if (item.get) assert.ok(item.head, `HEAD ${p} is missing`);
      for (const [method, op] of Object.entries(item)) {
        if (['parameters', 'summary', 'description'].includes(method)) continue;
        assert.ok(op.operationId || method === 'options', `${method.toUpperCase()} ${p} has no operationId`);
        assert.ok(op.responses && Object.keys(op.responses).length > 0, `${method.toUpperCase()} ${p} has no responses`);
      }
    }
  });

  test('its links name operations that exist', () => {
    const ids = new Set();
    for (const item of Object.values(spec.paths)) {
      for (const op of Object.values(item)) if (op?.operationId) ids.add(op.operationId);
    }
    let links = 0;
    for (const [p, item] of Object.entries(spec.paths)) {
      for (const op of Object.values(item)) {
        for (const response of Object.values(op?.responses ?? {})) {
          for (const [name, link] of Object.entries(response.links ?? {})) {
            links += 1;
            assert.ok(ids.has(link.operationId), `${p} link ${name} → unknown operation ${link.operationId}`);
          }
        }
      }
    }
    assert.ok(links >= 40, `only ${links} links`);
    for (const [from, to] of [
      ['register', 'login'],
      ['login', 'me'],
      ['login', 'refresh'],
      ['refresh', 'logout'],
      ['createUser', 'disableUser'],
      ['mintApiKey', 'revokeApiKey'],
    ]) {
      const source = Object.values(spec.paths)
        .flatMap((item) => Object.values(item))
        .find((op) => op?.operationId === from);
      const targets = Object.values(source.responses).flatMap((r) => Object.values(r.links ?? {}).map((l) => l.operationId));
      assert.ok(targets.includes(to), `no link ${from} → ${to}`);
    }
  });
});

describe('schemathesis against the built worker', () => {
  let target;
  before(async () => {
    target = await startTarget();
  });
  after(() => target?.stop());

  test(
    `no server error and every answer as documented, in at least ${MIN_CASES} cases`,
    { timeout: (MAX_TIME + 240) * 1000 },
    async (t) => {
      const { code, output } = await new Promise((resolve, reject) => {
        const child = spawn('bash', [RUNNER, target.url, target.adminAccess], {
          cwd: ROOT,
          env: { ...process.env, GATEHOUSE_FUZZ_MAX_TIME: String(MAX_TIME), GATEHOUSE_FUZZ_MIN_CASES: String(MIN_CASES) },
          stdio: ['ignore', 'pipe', 'pipe'],
        });
        let out = '';
        child.stdout.on('data', (d) => (out += d));
        child.stderr.on('data', (d) => (out += d));
        child.on('error', reject);
        child.on('close', (c) => resolve({ code: c, output: out }));
      });
      const line = output.split('\n').find((l) => l.startsWith('SCHEMATHESIS_RESULT '));
      assert.ok(line, `the runner printed no result (exit ${code}):\n${output.slice(-6000)}`);
      const result = JSON.parse(line.slice('SCHEMATHESIS_RESULT '.length));
      t.diagnostic(
        `schemathesis ${result.schemathesis}: ${result.cases} cases in ${result.seconds} s, ` +
          `${result.unique_failures} unique failures, seed ${result.seed}`,
      );
      // The failures as schemathesis reports them: the request (as curl) and the answer.
      const start = output.indexOf('= FAILURES =');
      const report = start < 0 ? output.slice(-6000) : output.slice(output.lastIndexOf('\n', start) + 1);
      // And what the worker logged for its 5xx answers (the cause never goes on the wire).
      const causes = [...new Set(target.worker.logs().split('\n').filter((l) => /\((5\d\d)\)/.test(l)))].slice(0, 10);
      const logged = causes.length ? `\nthe worker logged:\n  ${causes.join('\n  ')}` : '';
      assert.deepEqual(result.failures, [], `schemathesis found failures:\n${report}${logged}`);
      assert.equal(result.errors, 0, `schemathesis reported errors:\n${report}`);
      assert.ok(result.cases >= MIN_CASES, `only ${result.cases} cases ran`);
      assert.equal(code, 0, `the runner exited ${code}:\n${output.slice(-6000)}`);
    },
  );
});
