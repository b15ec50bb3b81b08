// The demo content API (scripts/demo-cms.mjs) on its own, without Gatehouse: each test shows one
// way in which it behaves like the real Cockpit v2 (see the header of demo-cms.mjs), so that
// proxy tests against it can see the attacks a real Cockpit allows.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import http from 'node:http';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { startDemoCms } from '../../scripts/demo-cms.mjs';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const READ = 'demo-read-key';
const WRITE = 'demo-write-key';
const EDITOR = 'demo-editor-key';

/** One request: `key` goes in the api-key header, `json` is sent as a JSON body. */
async function call(cms, method, urlPath, { key, json, body, headers = {} } = {}) {
  const h = { ...headers };
  if (key !== undefined) h['api-key'] = key;
  let payload = body;
  if (json !== undefined) {
    payload = JSON.stringify(json);
    h['content-type'] = 'application/json';
  }
  const res = await fetch(cms.url + urlPath, { method, headers: h, body: payload });
  const text = await res.text();
  let parsed;
  try {
    parsed = text === '' ? undefined : JSON.parse(text);
  } catch {
    parsed = undefined;
  }
  return { status: res.status, text, body: parsed, headers: res.headers };
}

/** A request through node:http, which (unlike fetch) may send a body with GET. */
function rawRequest(cms, method, urlPath, headers, body) {
  return new Promise((resolve, reject) => {
    const req = http.request(`${cms.url}${urlPath}`, { method, headers: { ...headers, 'content-length': Buffer.byteLength(body) } }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, text: Buffer.concat(chunks).toString('utf8') }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

const q = (value) => encodeURIComponent(JSON.stringify(value));
const byTitle = (cms, title) => cms.items.posts.find((p) => p.title === title);
const gql = (cms, key, query, extra = {}) => call(cms, 'POST', '/api/gql', { key, json: { query, ...extra } });

describe('the demo CMS behaves like Cockpit v2', () => {
  let cms;
  // Every test gets a fresh CMS with the seed data.
  const fresh = async (options = {}) => {
    await cms?.close();
    cms = await startDemoCms({ readKey: READ, writeKey: WRITE, editorKey: EDITOR, ...options });
    return cms;
  };
  after(() => cms?.close());

  test('a create keeps only _id, _state and model fields, publishes by default, and leaves _cby/_mby null', async () => {
    await fresh();
    const res = await call(cms, 'POST', '/api/content/item/posts', {
      key: WRITE,
      json: { data: { title: 'Hello', author: 'usr_me', _by: 'usr_mallory', secret: 'x', _created: 1, _cby: 'usr_mallory' } },
    });
    assert.equal(res.status, 200, res.text);
    const saved = res.body;
    assert.equal(saved.title, 'Hello');
    assert.equal(saved.author, 'usr_me');
    assert.equal(saved.body, null, 'missing model fields are null');
    assert.equal(saved.tags, null);
    assert.equal(saved._state, 1, 'published by default');
    assert.equal(saved._cby, null);
    assert.equal(saved._mby, null);
    assert.notEqual(saved._created, 1, '_created is not taken from the client');
    assert.ok(!('_by' in saved) && !('secret' in saved), `unknown fields dropped: ${res.text}`);
    assert.match(saved._id, /^[0-9a-f]{24}$/);
    assert.deepEqual(cms.items.posts.find((p) => p._id === saved._id), saved, 'stored as answered');
    const listed = await call(cms, 'GET', '/api/content/items/posts', { key: READ });
    assert.ok(listed.body.some((p) => p._id === saved._id), 'a new item is listed at once');
  });

  test('data._id turns a create into an update of any item, with only the update permission', async () => {
    await fresh({ keys: { 'update-only': { posts: ['update'] } } });
    const target = byTitle(cms, 'Welcome to the demo');
    const original = { ...target };
    const denied = await call(cms, 'POST', '/api/content/item/posts', { key: 'update-only', json: { data: { title: 'New' } } });
    assert.equal(denied.status, 403, 'no create permission');
    assert.deepEqual(denied.body, { error: 'Permission denied' });

    const res = await call(cms, 'POST', '/api/content/item/posts', {
      key: 'update-only',
      json: { data: { _id: target._id, title: 'Taken over', author: 'usr_mallory', _by: 'ignored' } },
    });
    assert.equal(res.status, 200, res.text);
    assert.deepEqual(Object.keys(res.body).sort(), ['_id', '_mby', '_modified', 'author', 'title'], 'an update answers with the sent fields');
    assert.equal(res.body._mby, null);
    assert.equal(cms.items.posts.length, 3, 'nothing created');
    assert.equal(target.title, 'Taken over');
    assert.equal(target.author, 'usr_mallory', 'the owner field is overwritten');
    assert.equal(target.body, original.body, 'other fields kept');
    assert.equal(target._created, original._created);

    // An unknown id: 200, nothing stored.
    const ghost = await call(cms, 'POST', '/api/content/item/posts', { key: 'update-only', json: { data: { _id: 'ffffffffffffffffffffffff', title: 'Ghost' } } });
    assert.equal(ghost.status, 200);
    assert.equal(cms.items.posts.length, 3);
    assert.ok(!byTitle(cms, 'Ghost'));

    // The id is a MongoLite criterion: an operator updates every item at once.
    const all = await call(cms, 'POST', '/api/content/item/posts', { key: 'update-only', json: { data: { _id: { $ne: '' }, author: 'usr_mallory' } } });
    assert.equal(all.status, 200, all.text);
    assert.ok(cms.items.posts.every((p) => p.author === 'usr_mallory'), 'every post (the draft too) taken over');
    assert.ok(cms.dangerous.some((d) => d.kind === 'update'));
  });

  test('_state: REST ignores it on update without publish; GraphQL saveContentItem applies it', async () => {
    await fresh();
    const welcome = byTitle(cms, 'Welcome to the demo');
    const second = byTitle(cms, 'Second post');

    const rest = await call(cms, 'POST', '/api/content/item/posts', { key: WRITE, json: { data: { _id: welcome._id, _state: 0 } } });
    assert.equal(rest.status, 200, rest.text);
    assert.ok(!('_state' in rest.body), 'removed without the publish permission');
    assert.equal(welcome._state, 1, 'still published');

    const editor = await call(cms, 'POST', '/api/content/item/posts', { key: EDITOR, json: { data: { _id: welcome._id, _state: 0 } } });
    assert.equal(editor.status, 200);
    assert.equal(welcome._state, 0, 'the editor key may unpublish');

    // Cockpit's GraphQL resolver unsets the wrong variable: the write key unpublishes.
    const res = await gql(cms, WRITE, 'mutation Save($data: JsonType!) { saveContentItem(model: "posts", data: $data) { item error } }', {
      variables: { data: { _id: second._id, _state: 0 } },
    });
    assert.equal(res.status, 200, res.text);
    assert.equal(res.body.data.saveContentItem.error, null);
    assert.equal(res.body.data.saveContentItem.item._state, 0);
    assert.equal(second._state, 0, 'unpublished through GraphQL without the publish permission');
    const listed = await call(cms, 'GET', '/api/content/items/posts', { key: READ });
    assert.deepEqual(listed.body, [], 'nothing published any more');

    // REST checks isset($data['_state']): null passes the check and is stored.
    await fresh();
    const again = byTitle(cms, 'Second post');
    const viaNull = await call(cms, 'POST', '/api/content/item/posts', { key: WRITE, json: { data: { _id: again._id, _state: null } } });
    assert.equal(viaNull.status, 200);
    assert.equal(again._state, null, '"_state": null unpublishes through REST too');
  });

  test('GraphQL reads only query and variables: an owner injected at data.author is ignored', async () => {
    await fresh();
    const listed = await gql(cms, READ, '{ postsModel { _id title } }');
    assert.equal(listed.status, 200, listed.text);
    assert.deepEqual(listed.body.data.postsModel.map((p) => p.title), ['Welcome to the demo', 'Second post'], 'published only');

    const res = await gql(cms, WRITE, 'mutation { saveContentItem(model: "posts", data: {title: "via GraphQL"}) { item error } }', {
      data: { author: 'usr_injected_by_proxy' },
    });
    assert.equal(res.status, 200, res.text);
    assert.equal(res.body.data.saveContentItem.item.author, null);
    assert.equal(byTitle(cms, 'via GraphQL').author, null, 'the JSON data member played no part');

    const other = await gql(cms, WRITE, 'mutation($d: JsonType!) { saveContentItem(model: "posts", data: $d) { item } }', {
      variables: { d: { title: 'via variables', author: 'usr_chosen_by_client' } },
      data: { author: 'usr_injected_by_proxy' },
    });
    assert.equal(other.body.data.saveContentItem.item.author, 'usr_chosen_by_client');

    const viaGet = await call(cms, 'GET', `/api/gql?query=${encodeURIComponent('{ pagesModel { title } }')}`, { key: READ });
    assert.deepEqual(viaGet.body, { data: { pagesModel: [{ title: 'About' }] } }, 'the query may come from the query string');

    const denied = await gql(cms, READ, 'mutation { saveContentItem(model: "posts", data: {title: "x"}) { item error } }');
    assert.equal(denied.status, 403);
    assert.deepEqual(denied.body.data.saveContentItem, { item: null, error: 'Permission denied' });
  });

  test('aggregate needs only read, and $out with the read key drops the drafts', async () => {
    await fresh();
    assert.equal(cms.items.posts.length, 3);
    const write = await call(cms, 'POST', '/api/content/item/posts', { key: READ, json: { data: { title: 'x' } } });
    assert.equal(write.status, 403, 'the read key cannot save');

    const res = await call(cms, 'GET', `/api/content/aggregate/posts?pipeline=${q([{ $out: 'collections_posts' }])}`, { key: READ });
    assert.equal(res.status, 200, res.text);
    assert.deepEqual(res.body, []);
    assert.deepEqual(cms.items.posts.map((p) => p.title), ['Welcome to the demo', 'Second post'], 'the draft is gone');
    assert.ok(cms.dangerous.some((d) => d.kind === '$out' && d.value === 'collections_posts'));

    const wiped = await call(cms, 'GET', `/api/content/aggregate/posts?pipeline=${q([{ $match: { _id: 'none' } }, { $skip: 0 }, { $out: 'collections_pages' }])}`, { key: READ });
    assert.equal(wiped.status, 200);
    assert.equal(cms.items.pages.length, 1, 'MongoLite stops a pipeline whose data ran out before $out');
    const emptied = await call(cms, 'GET', `/api/content/aggregate/comments?pipeline=${q([{ $limit: 0 }, { $out: 'collections_pages' }])}`, { key: READ });
    assert.equal(emptied.status, 200);
    assert.equal(cms.items.pages.length, 1, 'same after $limit');

    const reads = await call(cms, 'GET', `/api/content/aggregate/posts?pipeline=${q([{ $sort: { title: -1 } }, { $project: { title: 1 } }, { $limit: 1 }])}`, { key: READ });
    assert.deepEqual(reads.body.map((p) => Object.keys(p)), [['_id', 'title']]);
    assert.equal(reads.body[0].title, 'Welcome to the demo');
  });

  test('$merge with the read key writes into any collection', async () => {
    await fresh();
    const takeOver = await call(cms, 'GET', `/api/content/aggregate/posts?pipeline=${q([{ $addFields: { author: 'usr_mallory' } }, { $merge: { into: 'collections_posts' } }])}`, { key: READ });
    assert.equal(takeOver.status, 200, takeOver.text);
    assert.deepEqual(cms.items.posts.map((p) => p.author), ['usr_mallory', 'usr_mallory', 'usr_seed_alice'], 'published posts taken over');

    const copy = await call(cms, 'GET', `/api/content/aggregate/posts?pipeline=${q([{ $merge: { into: 'collections_pages' } }])}`, { key: READ });
    assert.equal(copy.status, 200);
    const pages = await call(cms, 'GET', '/api/content/items/pages', { key: READ });
    assert.deepEqual(pages.body.map((p) => p.title).sort(), ['About', 'Second post', 'Welcome to the demo']);

    const hidden = await call(cms, 'GET', `/api/content/aggregate/posts?pipeline=${q([{ $merge: { into: 'anything_else' } }])}`, { key: READ });
    assert.equal(hidden.status, 200);
    assert.equal(cms.db.anything_else.length, 2, 'a new collection of the content database');
    assert.deepEqual(cms.dangerous.map((d) => d.kind), ['$merge', '$merge', '$merge']);
  });

  test('credentials: api-key header, Bearer, the api_key parameter (which wins) and a JSON body member', async () => {
    await fresh();
    const list = '/api/content/items/posts';
    assert.equal((await call(cms, 'GET', list, { key: READ })).status, 200);
    assert.equal((await call(cms, 'GET', list, { headers: { api_key: READ } })).status, 200, 'api_key header is HTTP_API_KEY too');
    assert.equal((await call(cms, 'GET', list, { headers: { authorization: `Bearer ${READ}` } })).status, 200);
    assert.equal((await call(cms, 'GET', `${list}?api_key=${READ}`)).status, 200);

    const viaBody = await call(cms, 'POST', '/api/content/item/posts', { json: { api_key: WRITE, data: { title: 'Body key' } } });
    assert.equal(viaBody.status, 200, viaBody.text);
    assert.equal(cms.requests.at(-1).credential.source, 'api_key (JSON body)');

    const headerOnly = await call(cms, 'POST', '/api/content/item/posts', { key: READ, json: { data: { title: 'x' } } });
    assert.equal(headerOnly.status, 403);
    const bodyWins = await call(cms, 'POST', '/api/content/item/posts', { key: READ, json: { api_key: WRITE, data: { title: 'Body beats header' } } });
    assert.equal(bodyWins.status, 200, 'the body parameter wins over the header');
    const queryWins = await call(cms, 'GET', `${list}?api_key=wrong`, { key: READ, headers: { authorization: `Bearer ${READ}` } });
    assert.equal(queryWins.status, 412, 'the query parameter wins over header and Bearer');
    const emptyParam = await call(cms, 'GET', `${list}?api_key=`, { key: READ });
    assert.equal(emptyParam.status, 412, 'an empty api_key parameter still shadows the header (public key)');

    const getBody = await rawRequest(cms, 'GET', list, { 'content-type': 'application/json' }, JSON.stringify({ api_key: READ }));
    assert.equal(getBody.status, 200, 'a JSON body counts on GET too');
    const form = await call(cms, 'POST', '/api/content/item/posts', {
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: `api_key=${WRITE}&data[title]=Form+post&data[author]=usr_form`,
    });
    assert.equal(form.status, 200, form.text);
    assert.equal(form.body.title, 'Form post');
    assert.equal(form.body.author, 'usr_form');
    const dataInQuery = await call(cms, 'POST', `/api/content/item/posts?data[title]=From+the+query`, { key: WRITE });
    assert.equal(dataInQuery.status, 200, '`data` itself may come from the query string');
    assert.equal(dataInQuery.body.title, 'From the query');
  });

  test('query parameter names are read with PHP rules', async () => {
    await fresh();
    for (const name of ['api.key', 'api[key', 'api_key%00x', 'api+key', 'api%20key', '%20api_key', 'api%2Ekey', 'api[key%00.x']) {
      const res = await call(cms, 'GET', `/api/content/items/posts?${name}=${READ}`);
      assert.equal(res.status, 200, `${name} is api_key: ${res.text}`);
      assert.equal(cms.requests.at(-1).credential.key, READ);
    }
    for (const name of ['api-key', 'api[key]', 'apikey', 'api_key]', 'API_KEY']) {
      const res = await call(cms, 'GET', `/api/content/items/posts?${name}=${READ}`);
      assert.equal(res.status, 412, `${name} is not api_key`);
    }
    const array = await call(cms, 'GET', `/api/content/items/posts?api_key[]=${READ}`);
    assert.equal(array.status, 400, 'an array credential: a PHP TypeError in Cockpit');
    assert.equal(array.headers.get('x-demo-cms-cockpit-status'), '500');
  });

  test('statuses and bodies: 412 without a key, 403 without a permission, 404 unknown model, 412 without data', async () => {
    await fresh();
    const none = await call(cms, 'GET', '/api/content/items/posts');
    assert.equal(none.status, 412);
    assert.deepEqual(none.body, { error: 'Authentication failed' });
    assert.equal((await call(cms, 'GET', '/api/content/items/posts', { key: 'unknown' })).status, 412);
    assert.equal((await call(cms, 'GET', '/api/content/items/posts', { key: 'USR-1234' })).status, 412);
    const jwt = await call(cms, 'GET', '/api/content/items/posts', { key: 'aaa.bbb.ccc' });
    assert.equal(jwt.status, 403, 'a JWT-shaped key passes authentication with no role');

    const forbidden = await call(cms, 'POST', '/api/content/item/posts', { key: READ, json: { data: { title: 'x' } } });
    assert.equal(forbidden.status, 403);
    assert.deepEqual(forbidden.body, { error: 'Permission denied' });
    const unknown = await call(cms, 'GET', '/api/content/items/nope', { key: READ });
    assert.equal(unknown.status, 404);
    assert.deepEqual(unknown.body, { error: 'Model <nope> not found' });
    const unknownPost = await call(cms, 'POST', '/api/content/item/nope', { key: READ, json: {} });
    assert.equal(unknownPost.status, 404, 'the model is checked before data and permission');
    for (const json of [{}, { data: {} }, { data: 'text' }, { data: [] }]) {
      const res = await call(cms, 'POST', '/api/content/item/posts', { key: WRITE, json });
      assert.equal(res.status, 412, JSON.stringify(json));
      assert.deepEqual(res.body, { error: 'Item data is missing' });
    }
    const brokenJson = await call(cms, 'POST', '/api/content/item/posts', { key: WRITE, body: '{"data":', headers: { 'content-type': 'application/json' } });
    assert.equal(brokenJson.status, 412, 'unparsable JSON is no data');

    const draft = byTitle(cms, 'A draft');
    const hidden = await call(cms, 'GET', `/api/content/item/posts/${draft._id}`, { key: EDITOR });
    assert.equal(hidden.status, 404);
    assert.equal(hidden.text, '', 'Cockpit answers `false`: an empty body');
    assert.equal((await call(cms, 'GET', '/api/content/item/posts/ffffffffffffffffffffffff', { key: READ })).status, 404);
    assert.equal((await call(cms, 'GET', '/api/no/such/endpoint', { key: READ })).status, 404);
    assert.equal((await call(cms, 'HEAD', '/api/content/items/posts', { key: READ })).status, 404, 'no HEAD endpoints');

    const welcome = byTitle(cms, 'Welcome to the demo');
    assert.equal((await call(cms, 'DELETE', `/api/content/item/posts/${welcome._id}`, { key: WRITE })).status, 403);
    const deleted = await call(cms, 'DELETE', `/api/content/item/posts/${welcome._id}`, { key: EDITOR });
    assert.deepEqual([deleted.status, deleted.body], [200, { success: true }]);
    assert.ok(!byTitle(cms, 'Welcome to the demo'));
    const again = await call(cms, 'DELETE', `/api/content/item/posts/${welcome._id}`, { key: EDITOR });
    assert.deepEqual([again.status, again.body], [200, { success: true }], 'success even when nothing was there');

    await fresh({ publicPermissions: { posts: ['read'] } });
    assert.equal((await call(cms, 'GET', '/api/content/items/posts')).status, 200, 'a configured public role answers without a key');
    assert.equal((await call(cms, 'GET', '/api/content/items/pages')).status, 403);
    assert.equal((await call(cms, 'GET', '/api/content/items/posts', { key: 'public' })).status, 200, 'the literal key "public" is that role');
  });

  test('drafts are never listed, not even with the editor key; populate reveals linked drafts', async () => {
    await fresh();
    for (const key of [READ, WRITE, EDITOR]) {
      const res = await call(cms, 'GET', '/api/content/items/posts', { key });
      assert.ok(res.body.every((p) => p._state === 1), key);
      assert.equal(res.body.length, 2);
    }
    const tricky = await call(cms, 'GET', `/api/content/items/posts?filter=${q({ $or: [{ _state: 0 }, { _state: 1 }] })}`, { key: EDITOR });
    assert.equal(tricky.body.length, 2, '_state: 1 is forced beside any filter');

    const comments = await call(cms, 'GET', '/api/content/items/comments?populate=1', { key: READ });
    assert.equal(comments.status, 200, comments.text);
    const linked = comments.body.map((c) => c.post.title);
    assert.deepEqual(linked, ['Welcome to the demo', 'A draft'], 'the linked draft is resolved');
    assert.equal(comments.body[1].post._state, 0);
    assert.ok(cms.dangerous.some((d) => d.kind === 'populate'));
    const plain = await call(cms, 'GET', '/api/content/items/comments', { key: READ });
    assert.deepEqual(Object.keys(plain.body[1].post).sort(), ['_id', '_model'], 'without populate only the link');
  });

  test('filter, fields, sort, limit and skip follow MongoLite; $where is dangerous', async () => {
    await fresh();
    const list = (query) => call(cms, 'GET', `/api/content/items/posts?${query}`, { key: READ });
    const titles = (res) => res.body.map((p) => p.title);
    assert.deepEqual(titles(await list(`filter=${q({ $or: [{ title: { $regex: '^second' } }, { tags: { $in: ['welcome'] } }] })}`)), ['Welcome to the demo', 'Second post']);
    assert.deepEqual(titles(await list(`filter=${q({ title: { $ne: 'Second post' } })}`)), ['Welcome to the demo']);
    assert.deepEqual(titles(await list(`filter=${q({ $and: [{ author: { $eq: 'usr_seed_bob' } }, { tags: [] }] })}`)), ['Second post']);
    assert.deepEqual(titles(await list(`filter=${encodeURIComponent("{title: 'Second post', /* JSON5 */}")}`)), ['Second post'], 'JSON5');
    assert.deepEqual(titles(await list(`filter=${encodeURIComponent('{"\\u0024or":[{"title":"Second post"}]}')}`)), ['Second post'], 'an escaped $');
    assert.deepEqual(titles(await list('filter[title]=Second+post')), ['Second post'], 'a PHP array parameter is JSON-encoded');
    assert.deepEqual(titles(await list(`sort=${q({ title: 1 })}`)), ['Second post', 'Welcome to the demo']);
    assert.deepEqual((await list(`fields=${q({ title: 1 })}`)).body.map((p) => Object.keys(p)), [['_id', 'title'], ['_id', 'title']]);
    assert.deepEqual((await list(`fields=${q({ _id: 0, title: 1 })}`)).body, [{ title: 'Welcome to the demo' }, { title: 'Second post' }]);
    const paged = await list('limit=1&skip=1');
    assert.deepEqual(paged.body, { data: [paged.body.data[0]], meta: { total: 2 } });
    assert.equal(paged.body.data[0].title, 'Second post');
    assert.equal((await list('skip=1')).body.length, 2, 'skip without limit is ignored');

    const asString = await list(`filter=${q({ $where: 'return true' })}`);
    assert.equal(asString.status, 400, 'a string $where throws in MongoLite');
    assert.equal(asString.headers.get('x-demo-cms-cockpit-status'), '500');
    const callable = await list(`filter=${q({ $where: ['Some\\Class', 'staticMethod'] })}`);
    assert.equal(callable.status, 200);
    assert.deepEqual(callable.body, []);
    const event = cms.dangerous.find((d) => d.kind === '$where');
    assert.deepEqual(event.value, ['Some\\Class', 'staticMethod'], 'a PHP callable would be called');
    assert.equal(cms.requests.at(-1).dangerous[0].kind, '$where');
    assert.deepEqual((await list(`filter=${q({ title: { $regex: '(a+)+$' } })}`)).body, [], 'catastrophic patterns fail like PCRE');
  });

  test('bad input never crashes it and is answered with a 4xx', async () => {
    await fresh();
    const list = '/api/content/items/posts';
    const cases = [
      ['GET', `${list}?filter=${encodeURIComponent('{nope')}`, {}],
      ['GET', `${list}?fields=${q({ title: 1, body: 0 })}`, {}],
      ['GET', `${list}?sort=5`, {}],
      ['GET', `${list}?filter=${q({ title: { $bogus: 1 } })}`, {}],
      ['GET', `${list}?filter=${q({ "ti'tle": 1 })}`, {}],
      ['GET', `/api/content/aggregate/posts`, {}],
      ['GET', `/api/content/aggregate/posts?pipeline=${q({ a: 1 })}`, {}],
      ['GET', `/api/content/aggregate/posts?pipeline=${q([{ $group: { _id: null } }])}`, {}],
      ['GET', `/api/content/aggregate/posts?pipeline=${q([{ $nope: 1 }])}`, {}],
      ['GET', `/api/content/aggregate/posts?pipeline=${q([{ $out: 'bad name' }])}`, {}],
      ['GET', `/api/content/aggregate/posts?pipeline=${q([{ $out: 5 }])}`, {}],
      ['GET', `/api/content/aggregate/posts?pipeline=${q([5])}`, {}],
      ['GET', `/api/content/items?models=${q({ posts: 'x' })}`, {}],
      ['POST', '/api/content/item/posts', { json: 5 }],
      ['POST', '/api/content/item/posts', { json: 'a string' }],
      ['POST', '/api/content/item/posts', { body: Buffer.alloc(1024 * 1024 + 10, 0x61), headers: { 'content-type': 'application/json' } }],
      ['POST', '/api/gql', { json: { query: ['x'] } }],
      ['POST', '/api/gql', { json: { query: '{ postsModel { _id } }', variables: 'x' } }],
      ['GET', `${list}?api_key[a]=1`, {}],
    ];
    for (const [method, urlPath, opts] of cases) {
      const res = await call(cms, method, urlPath, { key: EDITOR, ...opts });
      assert.ok(res.status >= 400 && res.status < 500, `${method} ${urlPath.slice(0, 80)}: ${res.status} ${res.text.slice(0, 200)}`);
    }
    // GraphQL errors come back as `errors` with 200, as from webonyx/graphql-php.
    for (const query of ['{', '{ nope }', '{ postsModel }', 'mutation { saveContentItem(model: "posts") { item } }', 'query A { pagesModel { _id } } query B { pagesModel { _id } }', '{ postsModel(filter: {"$where": "x"}) { _id } }']) {
      const res = await gql(cms, EDITOR, query);
      assert.ok(res.status < 500 && Array.isArray(res.body.errors), `${query}: ${res.text}`);
    }
    const missingVar = await gql(cms, EDITOR, 'mutation($d: JsonType!) { saveContentItem(model: "posts", data: $d) { item } }');
    assert.match(missingVar.body.errors[0].message, /Variable "\$d" of required type "JsonType!" was not provided/);
    const failing = await gql(cms, EDITOR, 'query($f: JsonType) { postsModel(filter: $f) { _id } }', { variables: { f: { $where: 'x' } } });
    assert.deepEqual([failing.status, failing.body.data, failing.body.errors[0].message], [200, { postsModel: null }, 'Internal server error']);
    assert.equal(cms.requests.length, cases.length + 8, 'every request recorded');
    assert.equal((await call(cms, 'GET', list, { key: READ })).status, 200, 'still answering');
  });

  test('with a signing secret, unsigned requests are refused before anything else; every request is recorded', async () => {
    await fresh({ signingSecret: 'demo-signing-secret-0123456789abcdef' });
    const res = await call(cms, 'GET', '/api/content/items/posts', { key: READ });
    assert.equal(res.status, 403);
    assert.deepEqual(res.body, { error: 'signature: no signature' });
    assert.equal(cms.requests.length, 1);
    const [seen] = cms.requests;
    assert.equal(seen.method, 'GET');
    assert.equal(seen.path, '/api/content/items/posts');
    assert.equal(seen.headers['api-key'], READ);
    assert.equal(seen.verified.ok, false);
  });
});

test('the CLI prints one "listening" line and serves with its keys', async () => {
  const child = spawn(process.execPath, [path.join(ROOT, 'scripts', 'demo-cms.mjs'), '--port', '0', '--read-key', 'cli-read', '--write-key', 'cli-write', '--editor-key', 'cli-editor'], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const exited = new Promise((resolve) => child.once('exit', resolve));
  try {
    const line = await new Promise((resolve, reject) => {
      let out = '';
      child.stdout.on('data', (d) => {
        out += d;
        if (out.includes('\n')) resolve(out);
      });
      child.once('exit', (code) => reject(new Error(`exited with ${code} before listening: ${out}`)));
    });
    const m = /^demo CMS listening on (http:\/\/127\.0\.0\.1:\d+)\n$/.exec(line);
    assert.ok(m, line);
    const cms = { url: m[1] };
    assert.equal((await call(cms, 'GET', '/api/content/items/posts', { key: 'cli-read' })).status, 200);
    const welcome = (await call(cms, 'GET', '/api/content/items/posts', { key: 'cli-read' })).body[0];
    assert.equal((await call(cms, 'DELETE', `/api/content/item/posts/${welcome._id}`, { key: 'cli-write' })).status, 403);
    assert.equal((await call(cms, 'DELETE', `/api/content/item/posts/${welcome._id}`, { key: 'cli-editor' })).status, 200);
  } finally {
    child.kill('SIGTERM');
    await exited;
  }
});
