// The recipes in docs/proxy.md, read from the document itself and run: Cockpit v2 against the
// demo content API (which demands its own api-key and verifies the identity signature), and
// Directus against a recording server.

import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { parse as parseToml } from 'smol-toml';
import { startDemoCms } from '../../scripts/demo-cms.mjs';
import { client, expectError, expectStatus, openVars, registerUser } from '../support/http.mjs';
import { startUpstream } from '../support/upstream.mjs';
import { generateSigningKey, ROOT, startWorker } from '../support/worker.mjs';

/** The TOML block after `<!-- recipe: name -->`, parsed, as the ROUTES value wrangler would bind. */
function recipe(name) {
  const doc = readFileSync(path.join(ROOT, 'docs', 'proxy.md'), 'utf8');
  const m = new RegExp(`<!-- recipe: ${name} -->\\s*\`\`\`toml\\n([\\s\\S]*?)\`\`\``).exec(doc);
  assert.ok(m, `docs/proxy.md has no ${name} recipe`);
  return parseToml(m[1]).vars.ROUTES;
}

const SIGNING_SECRET = randomBytes(32).toString('base64url');

describe('Cockpit v2 recipe against the demo content API', () => {
  let cms;
  let w;
  let c;
  const readKey = `cockpit-read-${randomBytes(8).toString('hex')}`;
  const writeKey = `cockpit-write-${randomBytes(8).toString('hex')}`;
  before(async () => {
    cms = await startDemoCms({ readKey, writeKey, signingSecret: SIGNING_SECRET });
    const routes = recipe('cockpit');
    routes.cms.upstream = `${cms.url}/api/`; // the recipe's host, pointed at the local CMS
    w = await startWorker({
      vars: openVars(generateSigningKey(), {
        ROUTES: routes,
        CMS_READ_KEY: readKey,
        CMS_WRITE_KEY: writeKey,
        UPSTREAM_SIGNING_SECRET: SIGNING_SECRET,
      }),
    });
    c = client(w.url);
  });
  after(async () => {
    await w?.stop();
    await cms?.close();
  });

  test('anonymous users read published items; signed-in users create items bound to themselves', async () => {
    const list = await c.get('/cms/content/items/posts');
    expectStatus(list, 200);
    assert.ok(list.body.length >= 2 && list.body.every((i) => i._state === 1), 'published items only (read key)');
    assert.equal(cms.requests.at(-1).headers['api-key'], readKey);
    assert.equal(cms.requests.at(-1).verified.ok, true);

    expectError(await c.post('/cms/content/item/posts', { data: { title: 'anon' } }), 401, 'no_auth');

    const u = await registerUser(c);
    const saved = await c.request('POST', '/cms/content/item/posts', { bearer: u.access, json: { data: { title: 'Mine', _by: 'usr_someone_else' } } });
    expectStatus(saved, 200);
    const seen = cms.requests.at(-1);
    assert.equal(seen.headers['api-key'], writeKey);
    assert.equal(seen.verified.ok, true);
    assert.equal(saved.body._by, seen.verified.user);
    assert.match(saved.body._by, /^usr_/);
    assert.equal(saved.body.title, 'Mine');

    const one = await c.get(`/cms/content/item/posts/${saved.body._id}`);
    expectStatus(one, 200);
    assert.equal(one.body._by, saved.body._by);
    const missing = await c.get('/cms/content/item/posts/ffffffffffffffffffffffff');
    assert.equal(missing.status, 404, 'the CMS 404 passes through');
    assert.deepEqual(missing.body, { error: 'Item not found' });
  });
});

describe('Directus recipe against a recording server', () => {
  let up;
  let w;
  let c;
  const readToken = `directus-read-${randomBytes(8).toString('hex')}`;
  const writeToken = `directus-write-${randomBytes(8).toString('hex')}`;
  before(async () => {
    up = await startUpstream();
    const routes = recipe('directus');
    routes.directus.upstream = `${up.url}/`;
    w = await startWorker({
      vars: openVars(generateSigningKey(), {
        ROUTES: routes,
        DIRECTUS_READ_TOKEN: readToken,
        DIRECTUS_WRITE_TOKEN: writeToken,
        UPSTREAM_SIGNING_SECRET: SIGNING_SECRET,
      }),
    });
    c = client(w.url);
  });
  after(async () => {
    await w?.stop();
    await up?.close();
  });

  test('reads carry the read token as Bearer, writes the write token, author bound', async () => {
    expectStatus(await c.get('/directus/items/articles?access_token=client-token&fields=*'), 200);
    let seen = up.last();
    assert.equal(seen.url, '/items/articles?fields=*');
    assert.equal(seen.headers.authorization, `Bearer ${readToken}`);

    const u = await registerUser(c);
    expectStatus(await c.request('POST', '/directus/items/articles', { bearer: u.access, json: { title: 'Hello', author: 'someone-else' } }), 200);
    seen = up.last();
    assert.equal(seen.headers.authorization, `Bearer ${writeToken}`);
    const body = JSON.parse(seen.body.toString('utf8'));
    assert.equal(body.author, seen.headers['x-gatehouse-user']);
    assert.equal(body.title, 'Hello');
    expectError(await c.request('PATCH', '/directus/items/articles/1', { json: { title: 'x' } }), 401, 'no_auth');
  });
});
