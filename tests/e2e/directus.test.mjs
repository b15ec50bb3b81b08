// The real Directus 11.3.5 of tests/support/directus.mjs, checked directly (no Gatehouse in
// between): the seed's roles, tokens and items, and the answers the proxy recipes rely on.
// Needs the cached install from `bash scripts/setup.sh`.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { client, expectStatus } from '../support/http.mjs';
import { SEED_ITEMS, startDirectus } from '../support/directus.mjs';

/** Asserts a Directus error answer: the status and errors[0].extensions.code. */
function expectDirectusError(res, status, code) {
  assert.equal(res.status, status, `expected ${status} ${code}, got:\n${res.describe()}`);
  assert.ok(Array.isArray(res.body?.errors) && res.body.errors.length > 0, `no errors array:\n${res.describe()}`);
  assert.equal(res.body.errors[0].extensions?.code, code, res.describe());
}

describe('a real Directus 11 with the seed', () => {
  let d;
  let c;
  const as = (token) => ({ bearer: token });
  const patch = (path, json, token) => c.request('PATCH', path, { json, ...as(token) });
  const published = () => ['alice1', 'alice2', 'bob1'].map((n) => d.items[n]).sort((a, b) => a - b);
  const seededIds = () => new Set(Object.values(d.items));

  before(async () => {
    d = await startDirectus();
    c = client(d.url);
  });
  after(() => d?.stop());

  test('the seed: four articles with their ids by name; the admin token works', async () => {
    assert.deepEqual(Object.keys(d.items).sort(), Object.keys(SEED_ITEMS).sort());
    assert.equal(new Set(Object.values(d.items)).size, 4);
    for (const [name, item] of Object.entries(d.articles)) {
      assert.equal(item.id, d.items[name]);
      assert.equal(item.status, SEED_ITEMS[name].status);
      assert.equal(item.author, SEED_ITEMS[name].author);
    }
    const me = await c.get('/users/me?fields=email,role.name', as(d.adminToken));
    expectStatus(me, 200);
    assert.equal(me.body.data.email, d.adminEmail);
    const health = await c.get('/server/health');
    expectStatus(health, 200);
  });

  test('the reader lists published articles only, and cannot open a draft', async () => {
    const res = await c.get('/items/articles?sort=id', as(d.readToken));
    expectStatus(res, 200);
    const seeded = res.body.data.filter((i) => seededIds().has(i.id));
    assert.deepEqual(seeded.map((i) => i.id), published());
    assert.ok(res.body.data.every((i) => i.status === 'published'), JSON.stringify(res.body.data));
    assert.deepEqual(Object.keys(seeded[0]).sort(), ['author', 'body', 'id', 'status', 'title']);

    const one = await c.get(`/items/articles/${d.items.bob1}`, as(d.readToken));
    expectStatus(one, 200);
    assert.equal(one.body.data.author, 'usr_bob');
    expectDirectusError(await c.get(`/items/articles/${d.items.aliceDraft}`, as(d.readToken)), 403, 'FORBIDDEN');
    const asked = await c.get('/items/articles?filter[status][_eq]=draft', as(d.readToken));
    expectStatus(asked, 200);
    assert.deepEqual(asked.body.data, []);
  });

  test('the writer reads every article, drafts included', async () => {
    const res = await c.get('/items/articles?sort=id&limit=-1', as(d.writeToken));
    expectStatus(res, 200);
    const ids = res.body.data.map((i) => i.id);
    for (const id of seededIds()) assert.ok(ids.includes(id), `item ${id} missing from ${ids}`);
    const draft = await c.get(`/items/articles/${d.items.aliceDraft}`, as(d.writeToken));
    expectStatus(draft, 200);
    assert.equal(draft.body.data.status, 'draft');
  });

  test('the writer creates (200, defaults applied) and PATCHes any field, status and author included', async () => {
    const created = await c.post('/items/articles', { title: 'Written by the writer', author: 'usr_carol' }, as(d.writeToken));
    expectStatus(created, 200);
    const item = created.body.data;
    assert.equal(typeof item.id, 'number');
    assert.equal(item.status, 'draft');
    assert.equal(item.author, 'usr_carol');
    expectDirectusError(await c.get(`/items/articles/${item.id}`, as(d.readToken)), 403, 'FORBIDDEN');

    const updated = await patch(`/items/articles/${item.id}`, { status: 'published', author: 'usr_dave' }, d.writeToken);
    expectStatus(updated, 200);
    assert.deepEqual(updated.body.data, { ...item, status: 'published', author: 'usr_dave' });
    const seen = await c.get(`/items/articles/${item.id}`, as(d.readToken));
    expectStatus(seen, 200);
    assert.equal(seen.body.data.author, 'usr_dave');

    // An existing id in a create is refused; it never overwrites.
    expectDirectusError(await c.post('/items/articles', { id: item.id, title: 'again' }, as(d.writeToken)), 400, 'RECORD_NOT_UNIQUE');
  });

  test('a missing item is 403 FORBIDDEN, never 404 (writer, reader and admin alike)', async () => {
    for (const token of [d.writeToken, d.readToken, d.adminToken]) {
      expectDirectusError(await c.get('/items/articles/999999', as(token)), 403, 'FORBIDDEN');
    }
    expectDirectusError(await patch('/items/articles/999999', { title: 'x' }, d.writeToken), 403, 'FORBIDDEN');
  });

  test('the reader cannot create or update; the writer cannot delete', async () => {
    expectDirectusError(await c.post('/items/articles', { title: 'by the reader' }, as(d.readToken)), 403, 'FORBIDDEN');
    expectDirectusError(await patch(`/items/articles/${d.items.alice1}`, { title: 'changed by the reader' }, d.readToken), 403, 'FORBIDDEN');
    expectDirectusError(await c.del(`/items/articles/${d.items.alice2}`, as(d.writeToken)), 403, 'FORBIDDEN');

    const all = await c.get('/items/articles?limit=-1', as(d.adminToken));
    expectStatus(all, 200);
    assert.ok(!all.body.data.some((i) => /reader/.test(i.title)), 'the reader wrote something');
    assert.ok(all.body.data.some((i) => i.id === d.items.alice2), 'the writer deleted an item');
  });

  test('without a token: 403 FORBIDDEN for reads and writes; an unknown token: 401 INVALID_CREDENTIALS', async () => {
    expectDirectusError(await c.get('/items/articles'), 403, 'FORBIDDEN');
    expectDirectusError(await c.get(`/items/articles/${d.items.alice1}`), 403, 'FORBIDDEN');
    expectDirectusError(await c.post('/items/articles', { title: 'anonymous' }), 403, 'FORBIDDEN');
    expectDirectusError(await c.get('/items/articles', as('not-a-token')), 401, 'INVALID_CREDENTIALS');
  });

  test('GraphQL with the static tokens: reads as REST does, create_/update_articles_item for the writer', async () => {
    const gql = (token, query, variables) => c.post('/graphql', { query, variables }, token ? as(token) : {});

    const read = await gql(d.readToken, '{ articles(sort: ["id"]) { id status } }');
    expectStatus(read, 200);
    assert.ok(read.body.data.articles.every((i) => i.status === 'published'), read.describe());
    assert.ok(!read.body.data.articles.some((i) => Number(i.id) === d.items.aliceDraft));

    const created = await gql(
      d.writeToken,
      'mutation ($d: create_articles_input!) { create_articles_item(data: $d) { id title status author } }',
      { d: { title: 'Through GraphQL', author: 'usr_erin' } },
    );
    expectStatus(created, 200);
    assert.equal(created.body.errors, undefined, created.describe());
    const item = created.body.data.create_articles_item;
    assert.deepEqual({ ...item, id: undefined }, { id: undefined, title: 'Through GraphQL', status: 'draft', author: 'usr_erin' });

    const updated = await gql(
      d.writeToken,
      'mutation ($id: ID!, $d: update_articles_input!) { update_articles_item(id: $id, data: $d) { id status author } }',
      { id: item.id, d: { status: 'published', author: 'usr_frank' } },
    );
    expectStatus(updated, 200);
    assert.deepEqual(updated.body.data.update_articles_item, { id: item.id, status: 'published', author: 'usr_frank' });

    // Refusals: HTTP 200 with errors for a mutation the caller's schema lacks or may not run,
    // 400 for a field its schema does not have.
    const byReader = await gql(d.readToken, 'mutation { create_articles_item(data: { title: "r" }) { id } }');
    expectStatus(byReader, 200);
    assert.ok(byReader.body.errors?.length > 0 && !byReader.body.data, byReader.describe());
    const missing = await gql(d.writeToken, 'mutation { update_articles_item(id: 999999, data: { title: "x" }) { id } }');
    expectStatus(missing, 200);
    assert.equal(missing.body.errors?.[0]?.extensions?.code, 'FORBIDDEN', missing.describe());
    expectDirectusError(await gql(null, '{ articles { id } }'), 400, 'GRAPHQL_VALIDATION');
  });
});
