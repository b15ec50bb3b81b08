// The Cockpit recipes of docs/proxy.md, read from the document itself and run exactly as
// documented (only the upstream host is replaced) against the demo content API, which behaves
// like real Cockpit v2 (it drops unknown fields, updates by data._id, publishes by default,
// aggregates with $out/$merge, has GraphQL at /api/gql and reads api_key from a JSON body).
// Every attack of the CMS-policy issue is a test here: it succeeds against Cockpit directly (the
// demo's own tests show that) and is refused by Gatehouse before anything reaches the CMS.
// The Directus recipe runs against a real Directus in directus-recipe.test.mjs.

import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { recipeRoutes, startDemoCms } from '../../scripts/demo-cms.mjs';
import { client, expectError, expectStatus, openVars, registerUser } from '../support/http.mjs';
import { userWithRoles } from '../support/admin.mjs';
import { rawRequest } from '../support/upstream.mjs';
import { generateSigningKey, startWorker } from '../support/worker.mjs';

const SIGNING_SECRET = randomBytes(32).toString('base64url');
const keys = () => ({
  readKey: `cockpit-read-${randomBytes(8).toString('hex')}`,
  writeKey: `cockpit-write-${randomBytes(8).toString('hex')}`,
  editorKey: `cockpit-editor-${randomBytes(8).toString('hex')}`,
});

/** Starts the demo CMS and a worker running recipe `name` in front of it. */
async function setUp(name, extraVars = {}) {
  const k = keys();
  const cms = await startDemoCms({ ...k, signingSecret: SIGNING_SECRET });
  const w = await startWorker({
    vars: openVars(generateSigningKey(), {
      ROUTES: recipeRoutes(name, `${cms.url}/api/`),
      CMS_READ_KEY: k.readKey,
      CMS_WRITE_KEY: k.writeKey,
      CMS_EDITOR_KEY: k.editorKey,
      UPSTREAM_SIGNING_SECRET: SIGNING_SECRET,
      ...extraVars,
    }),
  });
  return { cms, w, c: client(w.url), k };
}

describe('Cockpit recipe against a Cockpit-like CMS', () => {
  let cms;
  let w;
  let c;
  let k;
  let alice;
  let bob;
  before(async () => {
    ({ cms, w, c, k } = await setUp('cockpit'));
    alice = await registerUser(c);
    bob = await registerUser(c);
  });
  after(async () => {
    await w?.stop();
    await cms?.close();
  });

  const snapshot = () => JSON.stringify(cms.db);
  /** Sends a request that must be refused with `status`/`code` and reach nothing upstream. */
  async function refused(method, path, opts, status, code) {
    const before = cms.requests.length;
    const state = snapshot();
    const res = await c.request(method, path, opts);
    expectError(res, status, code);
    assert.equal(cms.requests.length, before, `${method} ${path} reached the CMS`);
    assert.equal(snapshot(), state, 'the content changed');
    return res;
  }
  const post = (user, data, extra = {}) => ({ bearer: user.access, json: { data, ...extra } });
  const stored = (id) => cms.items.posts.find((i) => i._id === id);

  test('anonymous users read published items with the read key; the signature verifies', async () => {
    const list = await c.get('/cms/content/items/posts?limit=10&sort={"_created":-1}');
    expectStatus(list, 200);
    assert.ok(list.body.length >= 2 && list.body.every((i) => i._state === 1));
    const seen = cms.requests.at(-1);
    assert.equal(seen.headers['api-key'], k.readKey);
    assert.equal(seen.verified.ok, true);
    const one = await c.get(`/cms/content/item/posts/${list.body[0]._id}`);
    expectStatus(one, 200);
  });

  test('a signed-in user creates an item owned by them: the owner is a real model field', async () => {
    const saved = await c.request('POST', '/cms/content/item/posts', post(alice, { title: 'Mine', body: 'b', author: 'usr_someone_else' }));
    expectStatus(saved, 200);
    const seen = cms.requests.at(-1);
    assert.equal(seen.headers['api-key'], k.writeKey);
    assert.equal(seen.verified.user, alice.user.id);
    const item = stored(saved.body._id);
    assert.equal(item.author, alice.user.id, 'Cockpit stored the author Gatehouse set');
    assert.equal(item._state, 1);
    await refused('POST', '/cms/content/item/posts', { json: { data: { title: 'anon' } } }, 401, 'no_auth');
  });

  test('overwriting or taking over someone else\'s item by data._id is refused', async () => {
    const theirs = cms.items.posts.find((i) => i.author === 'usr_seed_bob');
    const res = await c.request('POST', '/cms/content/item/posts', post(alice, { _id: theirs._id, title: 'pwned' }));
    expectError(res, 403, 'not_owner');
    assert.equal(stored(theirs._id).title, 'Second post');
    assert.equal(stored(theirs._id).author, 'usr_seed_bob');
    const lookup = cms.requests.at(-1);
    assert.equal(lookup.method, 'GET', 'only the owner lookup reached the CMS');
    assert.equal(lookup.path, `/api/content/item/posts/${theirs._id}`);
    assert.equal(lookup.verified.ok, true);
    // A filter in place of an id (Cockpit would update every matching item) never gets that far.
    await refused('POST', '/cms/content/item/posts', post(alice, { _id: { $ne: '' }, title: 'all' }), 400, 'body_not_allowed');
    await refused('POST', '/cms/content/item/posts', post(alice, { _id: `@${theirs._id}`, title: 'x' }), 400, 'body_not_allowed');

    // Her own item: updated, the author kept even when she names another one.
    const mine = await c.request('POST', '/cms/content/item/posts', post(alice, { title: 'v1' }));
    const edited = await c.request('POST', '/cms/content/item/posts', post(alice, { _id: mine.body._id, title: 'v2', author: bob.user.id }));
    expectStatus(edited, 200);
    assert.equal(stored(mine.body._id).title, 'v2');
    assert.equal(stored(mine.body._id).author, alice.user.id);
    // ...but not by Bob.
    expectError(await c.request('POST', '/cms/content/item/posts', post(bob, { _id: mine.body._id, title: 'bob was here' })), 403, 'not_owner');
    assert.equal(stored(mine.body._id).title, 'v2');
  });

  test('nobody unpublishes: _state is refused in REST saves and GraphQL is not an endpoint', async () => {
    const mine = await c.request('POST', '/cms/content/item/posts', post(alice, { title: 'published' }));
    await refused('POST', '/cms/content/item/posts', post(alice, { _id: mine.body._id, _state: 0 }), 400, 'body_not_allowed');
    await refused('POST', '/cms/content/item/posts', post(alice, { _id: mine.body._id, _state: null }), 400, 'body_not_allowed');
    const mutation = 'mutation Save($data: JsonType!) { saveContentItem(model: "posts", data: $data) { item error } }';
    await refused('POST', '/cms/gql', { bearer: alice.access, json: { query: mutation, variables: { data: { _id: mine.body._id, _state: 0 } } } }, 404, 'not_found');
    await refused('GET', '/cms/gql?query={postsModel{_id}}', {}, 404, 'not_found');
    assert.equal(stored(mine.body._id)._state, 1);
  });

  test('an anonymous visitor cannot aggregate, $where or populate through the read endpoints', async () => {
    const drafts = () => cms.items.posts.filter((i) => i._state === 0).length;
    assert.ok(drafts() >= 1);
    const pipeline = encodeURIComponent(JSON.stringify([{ $out: 'collections_posts' }]));
    await refused('GET', `/cms/content/aggregate/posts?pipeline=${pipeline}`, {}, 404, 'not_found');
    const merge = encodeURIComponent(JSON.stringify([{ $merge: { into: 'collections_pages' } }]));
    await refused('GET', `/cms/content/aggregate/comments?pipeline=${merge}`, {}, 404, 'not_found');
    for (const query of [
      `pipeline=${pipeline}`,
      `filter=${encodeURIComponent('{"$where":["Closure","fromCallable"]}')}`,
      `filter=${encodeURIComponent('{$where: "x"}')}`,
      `filter=${encodeURIComponent('{"title":{"$regex":"(a+)+$"}}')}`,
      `filter=${encodeURIComponent('{"\\u0024where":"x"}')}`,
      'filter[$where]=x',
      'filter[_state]=0',
      'populate=1',
      'data[title]=x',
    ]) {
      await refused('GET', `/cms/content/items/posts?${query}`, {}, 400, 'query_not_allowed');
    }
    const named = await c.get(`/cms/content/items/posts?pipeline=${pipeline}`);
    expectError(named, 400, 'query_not_allowed');
    assert.match(named.body.error.message, /"pipeline" is not allowed here \(allowed: fields, filter, limit, skip, sort\)/);
    assert.equal(cms.dangerous.length, 0, `the CMS saw: ${JSON.stringify(cms.dangerous)}`);
    assert.ok(drafts() >= 1, 'drafts survive');
  });

  test('credentials in the body or in PHP spellings of the query are refused', async () => {
    await refused('POST', '/cms/content/item/posts', post(alice, { title: 'x' }, { api_key: k.writeKey }), 400, 'body_not_allowed');
    await refused('POST', '/cms/content/item/posts', post(alice, { title: 'x', tags: [{ api_key: 'x' }] }), 400, 'body_not_allowed');
    // Cockpit reads a JSON body on any method: a read's body never goes upstream.
    // (Node's client frames a GET body only when told its length.)
    const getBody = JSON.stringify({ api_key: k.editorKey });
    const read = await rawRequest(w.url, 'GET', '/cms/content/items/posts', { 'content-type': 'application/json', 'content-length': String(getBody.length) }, getBody);
    assert.equal(read.status, 200);
    assert.equal(cms.requests.at(-1).body, '');
    assert.deepEqual(cms.requests.at(-1).credential, { source: 'api-key header', key: k.readKey });
    for (const name of ['api_key', 'api_key%00x', 'api[key', 'access[token', 'API.KEY', 'api%20key', '%20api_key', 'token']) {
      await refused('GET', `/cms/content/items/posts?${name}=${k.editorKey}`, {}, 400, 'query_not_allowed');
    }
  });

  test('a literal "data._by" member, or any member outside the fields, is refused', async () => {
    const r = await refused('POST', '/cms/content/item/posts', { bearer: alice.access, json: { 'data._by': 'usr_x', data: { title: 't' } } }, 400, 'body_not_allowed');
    assert.match(r.body.error.message, /data\._by/);
    await refused('POST', '/cms/content/item/posts', { bearer: alice.access, json: { 'data.author': 'usr_x', data: { title: 't' } } }, 400, 'body_not_allowed');
    await refused('POST', '/cms/content/item/posts', post(alice, { title: 't', _cby: 'usr_x' }), 400, 'body_not_allowed');
    await refused('POST', '/cms/content/item/posts', { bearer: alice.access, body: '{"data":{"title":"a","author":"me","author":"you"}}', headers: { 'content-type': 'application/json' } }, 400, 'body_not_allowed');
    await refused('POST', '/cms/content/item/posts', { bearer: alice.access, body: 'data[title]=x', headers: { 'content-type': 'application/x-www-form-urlencoded' } }, 415, 'unsupported_media_type');
    await refused('POST', '/cms/content/item/pages', post(alice, { title: 't' }), 404, 'not_found');
  });

  test('methods without an endpoint answer 405 and never reach the CMS as a GET', async () => {
    for (const method of ['SEARCH', 'PROPFIND', 'DELETE', 'PUT', 'PATCH']) {
      const before = cms.requests.length;
      const res = await rawRequest(w.url, method, '/cms/content/items/posts', { authorization: `Bearer ${alice.access}` });
      assert.equal(res.status, 405, method);
      assert.equal(res.headers.allow, 'GET, HEAD');
      assert.equal(cms.requests.length, before, `${method} reached the CMS`);
    }
    const del = await rawRequest(w.url, 'DELETE', `/cms/content/item/posts/${cms.items.posts[0]._id}`, { authorization: `Bearer ${alice.access}` });
    assert.equal(del.status, 405);
    assert.equal(del.headers.allow, 'GET, HEAD');
  });

  test('client forwarding headers never reach the CMS; Gatehouse sets and signs its own', async () => {
    const res = await rawRequest(w.url, 'GET', '/cms/content/items/posts', {
      'x-forwarded-host': 'evil.example',
      forwarded: 'for=10.6.6.6;host=evil.example',
      'x-forwarded-for': '10.6.6.6',
      'x-real-ip': '10.6.6.6',
    });
    assert.equal(res.status, 200);
    const seen = cms.requests.at(-1);
    assert.ok(!JSON.stringify(seen.headers).includes('evil.example'));
    assert.ok(!JSON.stringify(seen.headers).includes('10.6.6.6'));
    assert.equal(seen.headers.forwarded, undefined);
    assert.equal(seen.headers['x-forwarded-host'], new URL(w.url).host);
    assert.equal(seen.verified.ok, true);
  });

  test('no answer ever shows a CMS key', async () => {
    const answers = [
      await c.get('/cms/content/items/posts'),
      await c.request('POST', '/cms/content/item/posts', post(alice, { title: 'k' })),
      await c.get('/cms/content/item/posts/ffffffffffffffffffffffff'),
    ];
    for (const res of answers) {
      const text = JSON.stringify({ headers: [...res.headers], body: res.text });
      for (const key of Object.values(k)) assert.ok(!text.includes(key), 'a CMS key in an answer');
    }
  });
});

describe('Cockpit moderated recipe: user posts land as drafts, editors publish', () => {
  let cms;
  let w;
  let c;
  let k;
  before(async () => {
    ({ cms, w, c, k } = await setUp('cockpit-moderated'));
  });
  after(async () => {
    await w?.stop();
    await cms?.close();
  });

  test('a user\'s post is a draft whatever it says; only an editor publishes it', async () => {
    const user = await registerUser(c);
    const saved = await c.request('POST', '/cms/content/item/posts', { bearer: user.access, json: { data: { title: 'please publish' } } });
    expectStatus(saved, 200);
    const item = () => cms.items.posts.find((i) => i._id === saved.body._id);
    assert.equal(item()._state, 0);
    assert.equal(item().author, user.user.id);
    const before = cms.requests.length;
    expectError(await c.request('POST', '/cms/content/item/posts', { bearer: user.access, json: { data: { title: 'x', _state: 1 } } }), 400, 'body_not_allowed');
    expectError(await c.request('POST', '/cms/content/item/posts', { bearer: user.access, json: { data: { _id: saved.body._id, _state: 1 } } }), 403, 'insufficient_role');
    assert.equal(cms.requests.length, before);
    assert.equal(item()._state, 0);
    const list = await c.get('/cms/content/items/posts');
    assert.ok(!list.body.some((i) => i._id === saved.body._id), 'drafts are not listed');

    // An editor: a user an admin gave the role (set in D1 here, as the CLI does).
    const editorToken = (await userWithRoles(w, c, ['user', 'editor'])).access;
    const published = await c.request('POST', '/cms/content/item/posts', { bearer: editorToken, json: { data: { _id: saved.body._id, _state: 1 } } });
    expectStatus(published, 200);
    assert.equal(cms.requests.at(-1).headers['api-key'], k.editorKey);
    assert.equal(item()._state, 1);
    assert.equal(item().title, 'please publish');
    expectError(await c.request('POST', '/cms/content/item/posts', { bearer: editorToken, json: { data: { _id: saved.body._id, title: 'rewritten' } } }), 400, 'body_not_allowed');
  });
});
