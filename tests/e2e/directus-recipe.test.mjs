// The Directus recipe of docs/proxy.md, exactly as documented (only its upstream pointed at the
// local server), run through the built worker in workerd against a real Directus 11.3.5
// (tests/support/directus.mjs: reader and writer static tokens, seeded articles owned by the
// fake users usr_alice and usr_bob). Needs the cached install from `bash scripts/setup.sh`.
//
// Every case here would fail on a naive route that forwards the whole base with the tokens
// (`forward_all = true`): drafts or the write token through the query, a create or a PATCH that
// sets `status`, `author` or `id`, another user's item overwritten, GraphQL mutations, the
// service account's /users/me, bulk updates. For each refused request the test checks, with
// the admin token directly on Directus, that no article changed or appeared, and, from
// Directus's own request log, what reached Directus while it was made (nothing, or only the
// owner lookup). No answer of Gatehouse may contain either Directus token.

import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { recipeRoutes } from '../../scripts/demo-cms.mjs';
import { startDirectus } from '../support/directus.mjs';
import { client, expectError, expectStatus, openVars, registerUser } from '../support/http.mjs';
import { generateSigningKey, startWorker } from '../support/worker.mjs';

const SIGNING_SECRET = randomBytes(32).toString('base64url');
const MISSING_ID = 999999;

/** A GraphQL update of an article, with its data in variables (where no owner field is set). */
const GQL_UPDATE =
  'mutation ($id: ID!, $d: update_articles_input!) { update_articles_item(id: $id, data: $d) { id title status author } }';

describe('the Directus recipe of docs/proxy.md through the worker, against a real Directus 11', () => {
  let d; // Directus
  let w; // the worker
  let c; // a client of the worker that records every answer
  let direct; // a client of Directus itself (admin reads and log fences)
  const answers = []; // every answer Gatehouse gave in this file: { what, dump: status, headers, body }
  const tokens = () => [
    ['the Directus read token', d.readToken],
    ['the Directus write token', d.writeToken],
    ['the upstream signing secret', SIGNING_SECRET],
  ];

  /** Asserts that no Directus token (nor the signing secret) is in `text`. */
  function assertNoToken(text, what) {
    for (const [name, value] of tokens()) {
      assert.ok(!text.includes(value), `${name} appears in the answer to ${what}:\n${text.slice(0, 2000)}`);
    }
  }

  /** A client of the worker that keeps every answer and checks it holds no token at once. */
  function recording(inner) {
    const keep = async (method, path, resPromise) => {
      const res = await resPromise;
      // The answer only: the request itself may carry a token (the refused ?access_token=…).
      const dump = `${res.status}\n${[...res.headers].map(([k, v]) => `${k}: ${v}`).join('\n')}\n\n${res.text}`;
      answers.push({ what: `${method} ${path.replace(/access_token=[^&]*/g, 'access_token=…')}`, dump });
      assertNoToken(dump, `${method} ${path}`);
      return res;
    };
    return {
      base: inner.base,
      request: (method, path, opts) => keep(method, path, inner.request(method, path, opts)),
      get: (path, opts) => keep('GET', path, inner.get(path, opts)),
      post: (path, json, opts) => keep('POST', path, inner.post(path, json, opts)),
      put: (path, json, opts) => keep('PUT', path, inner.put(path, json, opts)),
      del: (path, opts) => keep('DELETE', path, inner.del(path, opts)),
    };
  }

  // ---- Directus's own view --------------------------------------------------------------------

  /** Every article as stored, read with the admin token directly from Directus. */
  async function snapshot() {
    const res = await direct.get('/items/articles?limit=-1&sort=id', { bearer: d.adminToken });
    expectStatus(res, 200);
    return res.body.data;
  }

  /** One article as stored (admin token, directly from Directus). */
  async function stored(id) {
    const res = await direct.get(`/items/articles/${id}`, { bearer: d.adminToken });
    expectStatus(res, 200);
    return res.body.data;
  }

  /**
   * Directus's request log (LOG_LEVEL info: one pino JSON line per request, `authorization`
   * redacted by Directus), as { method, url, status, headers } in order. The test harness splits
   * what it receives at newlines per chunk, so a line cut between two chunks is joined again.
   */
  function directusRequests() {
    const out = [];
    let acc = '';
    for (const line of d.logs().split('\n')) {
      acc += line;
      let entry;
      try {
        entry = JSON.parse(acc);
      } catch {
        if (!acc.startsWith('{')) acc = '';
        continue;
      }
      acc = '';
      if (entry?.msg === 'request completed' && entry.req) {
        out.push({ method: entry.req.method, url: entry.req.url, status: entry.res?.statusCode, headers: entry.req.headers ?? {} });
      }
    }
    return out;
  }

  /**
   * Sends a marked request straight to Directus and waits until its log line has arrived: every
   * request Directus completed before it is then in directusRequests(). Waits for that event
   * (bounded), never for a fixed time.
   */
  async function fence() {
    const marker = `fence-${randomBytes(8).toString('hex')}`;
    const res = await direct.get(`/server/ping?gatehouse_fence=${marker}`);
    expectStatus(res, 200);
    const deadline = Date.now() + 30_000;
    for (;;) {
      const all = directusRequests();
      const at = all.findIndex((r) => r.url.includes(marker));
      if (at >= 0) return { all, at };
      assert.ok(Date.now() < deadline, `Directus never logged ${marker}; its last output:\n${d.logs().slice(-3000)}`);
      await new Promise((r) => setTimeout(r, 5));
    }
  }

  /** Runs `fn` and returns its result with the requests Directus received meanwhile. */
  async function watched(fn) {
    const start = await fence();
    const result = await fn();
    const end = await fence();
    const startUrl = start.all[start.at].url; // holds a unique marker
    const from = end.all.findIndex((r) => r.url === startUrl);
    return { result, received: end.all.slice(from + 1, end.at) };
  }

  const show = (received) => received.map((r) => `${r.method} ${r.url} → ${r.status}`).join('\n') || '(nothing)';

  /**
   * A request Gatehouse must refuse before anything is sent to Directus: the expected error,
   * nothing received by Directus, no article changed or added.
   */
  async function refused(method, path, opts, status, check) {
    const before = await snapshot();
    const { result: res, received } = await watched(() => c.request(method, path, opts));
    check(res, status);
    assert.deepEqual(received, [], `Directus received something for the refused ${method} ${path}:\n${show(received)}`);
    assert.deepEqual(await snapshot(), before, `the articles changed after the refused ${method} ${path}`);
    return res;
  }

  // ---- Gatehouse users ------------------------------------------------------------------------

  let userPromise;
  /** The registered user of this file (registered once): { user, access, … }. */
  const user = () => (userPromise ??= registerUser(c));

  /** An article created through Gatehouse by `u` (the documented create); its stored form. */
  async function createOwn(u, title) {
    const res = await c.request('POST', '/directus/items/articles', { bearer: u.access, json: { title, body: `${title}: body` } });
    expectStatus(res, 200);
    const item = await stored(res.body.data.id);
    assert.equal(item.author, u.user.id);
    return item;
  }

  const allowOf = (res) => (res.headers.get('allow') ?? '').split(',').map((m) => m.trim()).filter(Boolean);

  before(async () => {
    // Info level: Directus logs every request it serves, which is how these tests see what
    // reached it.
    d = await startDirectus({ logLevel: 'info' });
    direct = client(d.url);
    try {
      const routes = recipeRoutes('directus', `${d.url}/`);
      w = await startWorker({
        vars: openVars(generateSigningKey(), {
          ROUTES: routes,
          DIRECTUS_READ_TOKEN: d.readToken,
          DIRECTUS_WRITE_TOKEN: d.writeToken,
          UPSTREAM_SIGNING_SECRET: SIGNING_SECRET,
        }),
      });
    } catch (err) {
      await d.stop();
      d = undefined;
      throw err;
    }
    c = recording(client(w.url));
  });
  after(async () => {
    await w?.stop();
    await d?.stop();
  });

  test('1. anonymous reads: published articles only, through the reader token; harmless query only', async () => {
    const published = (await snapshot()).filter((i) => i.status === 'published');
    const { result: list, received } = await watched(() => c.get('/directus/items/articles'));
    expectStatus(list, 200);
    assert.deepEqual(
      list.body.data.map((i) => i.id).sort((a, b) => a - b),
      published.map((i) => i.id),
      list.describe(),
    );
    assert.ok(!list.body.data.some((i) => i.id === d.items.aliceDraft), 'the draft is listed');
    assert.ok(list.body.data.every((i) => i.status === 'published'), list.describe());
    assert.match(list.headers.get('vary') ?? '', /\bAuthorization\b/i, list.describe());
    // What Directus received: one list request, with a token (redacted in its log), signed as anonymous.
    assert.deepEqual(received.map((r) => `${r.method} ${r.url}`), ['GET /items/articles'], show(received));
    assert.equal(received[0].headers.authorization, '--redacted--');
    assert.equal(received[0].headers['x-gatehouse-auth'], 'anonymous');
    assert.ok(received[0].headers['signature'], 'the forwarded request is signed');

    // The token is the reader's: Directus shows it no draft, even by id (its 403 passes through).
    const draft = await c.get(`/directus/items/articles/${d.items.aliceDraft}`);
    expectStatus(draft, 403);
    assert.equal(draft.body?.errors?.[0]?.extensions?.code, 'FORBIDDEN', draft.describe());
    const one = await c.get(`/directus/items/articles/${d.items.bob1}?fields=id,author`);
    expectStatus(one, 200);
    assert.deepEqual(one.body.data, { id: d.items.bob1, author: 'usr_bob' });

    const some = await c.get('/directus/items/articles?fields=id,title&limit=2&sort=-id');
    expectStatus(some, 200);
    assert.deepEqual(
      some.body.data,
      published
        .map(({ id, title }) => ({ id, title }))
        .sort((a, b) => b.id - a.id)
        .slice(0, 2),
    );

    // A filter asking for drafts: Directus's reader policy still shows none.
    for (const filter of [{ status: { _eq: 'draft' } }, { status: { _neq: 'published' } }, { id: { _eq: d.items.aliceDraft } }]) {
      const res = await c.get(`/directus/items/articles?filter=${encodeURIComponent(JSON.stringify(filter))}`);
      expectStatus(res, 200);
      assert.deepEqual(res.body.data, [], res.describe());
    }
    const alices = await c.get(`/directus/items/articles?filter=${encodeURIComponent('{"author":{"_eq":"usr_alice"}}')}&sort=id`);
    expectStatus(alices, 200);
    assert.deepEqual(alices.body.data.map((i) => i.id), [d.items.alice1, d.items.alice2]);

    // The write token as a query parameter (Directus reads one there) never reaches Directus.
    await refused('GET', `/directus/items/articles?access_token=${d.writeToken}`, {}, 400, (res, s) => expectError(res, s, 'query_not_allowed'));
    await refused('GET', `/directus/items/articles?fields=*&access_token=${d.writeToken}`, {}, 400, (res, s) => expectError(res, s, 'query_not_allowed'));
    await refused('GET', `/directus/items/articles/${d.items.aliceDraft}?access_token=${d.writeToken}`, {}, 400, (res, s) =>
      expectError(res, s, 'query_not_allowed'),
    );
  });

  test('2. a user creates an article: title and body only, author = the user, published', async () => {
    const u = await user();
    const before = await snapshot();
    const { result: res, received } = await watched(() =>
      c.request('POST', '/directus/items/articles', { bearer: u.access, json: { title: 't', body: 'b', author: 'usr_mallory' } }),
    );
    expectStatus(res, 200);
    assert.equal(res.body.data.author, u.user.id, res.describe());
    assert.equal(res.headers.get('cache-control'), 'private, no-store', res.describe());
    assert.deepEqual(received.map((r) => `${r.method} ${r.url}`), ['POST /items/articles'], show(received));
    assert.equal(received[0].headers['x-gatehouse-user'], u.user.id);

    const item = await stored(res.body.data.id);
    assert.deepEqual(item, { id: res.body.data.id, title: 't', body: 'b', status: 'published', author: u.user.id });
    assert.deepEqual(await snapshot(), [...before, item]);

    const denied = (res, s) => expectError(res, s, 'body_not_allowed');
    await refused('POST', '/directus/items/articles', { bearer: u.access, json: { title: 't', status: 'published' } }, 400, denied);
    await refused('POST', '/directus/items/articles', { bearer: u.access, json: { title: 't', status: 'draft' } }, 400, denied);
    await refused('POST', '/directus/items/articles', { bearer: u.access, json: { id: 424242, title: 't' } }, 400, denied);
    await refused('POST', '/directus/items/articles', { bearer: u.access, json: { id: d.items.bob1, title: 'pwned' } }, 400, denied);
    await refused('POST', '/directus/items/articles', { json: { title: 'anonymous', body: 'b' } }, 401, (res, s) => expectError(res, s, 'no_auth'));
  });

  test("3. updates: another user's article → 403 not_owner, a missing one → 404, one's own → 200", async () => {
    const u = await user();
    const patch = (id, json, bearer = u.access) => c.request('PATCH', `/directus/items/articles/${id}`, { bearer, json });

    // Bob's article: Gatehouse reads its author with the writer token, and forwards nothing else.
    const before = await snapshot();
    const { result: theirs, received } = await watched(() => patch(d.items.bob1, { title: 'pwned' }));
    expectError(theirs, 403, 'not_owner');
    assert.deepEqual(received.map((r) => `${r.method} ${r.url}`), [`GET /items/articles/${d.items.bob1}?fields=author`], show(received));
    assert.deepEqual(await stored(d.items.bob1), d.articles.bob1);
    assert.deepEqual(await snapshot(), before);

    // Alice's draft (the writer's lookup sees drafts): not the caller's either.
    {
      const { result, received: r } = await watched(() => patch(d.items.aliceDraft, { title: 'pwned', author: u.user.id }));
      expectError(result, 403, 'not_owner');
      assert.deepEqual(r.map((x) => x.method), ['GET'], show(r));
      assert.deepEqual(await stored(d.items.aliceDraft), d.articles.aliceDraft);
    }

    // A missing article: Directus answers the lookup 403; Gatehouse 404.
    {
      const { result, received: r } = await watched(() => patch(MISSING_ID, { title: 'x' }));
      expectError(result, 404, 'not_found');
      assert.deepEqual(r.map((x) => `${x.method} ${x.url} → ${x.status}`), [`GET /items/articles/${MISSING_ID}?fields=author → 403`], show(r));
      assert.deepEqual(await snapshot(), before);
    }

    // Anonymous: refused before any lookup.
    await refused('PATCH', `/directus/items/articles/${d.items.bob1}`, { json: { title: 'pwned' } }, 401, (res, s) => expectError(res, s, 'no_auth'));

    // One's own article: the title changes, the author stays the caller whatever was sent.
    const mine = await createOwn(u, 'mine, to edit');
    const { result: edited, received: r } = await watched(() => patch(mine.id, { title: 'edited', author: 'usr_mallory' }));
    expectStatus(edited, 200);
    assert.deepEqual(
      r.map((x) => `${x.method} ${x.url}`),
      [`GET /items/articles/${mine.id}?fields=author`, `PATCH /items/articles/${mine.id}`],
      show(r),
    );
    assert.equal(edited.body.data.title, 'edited');
    assert.equal(edited.body.data.author, u.user.id);
    assert.deepEqual(await stored(mine.id), { ...mine, title: 'edited' });

    // Another Gatehouse user may not edit it.
    const other = await registerUser(c);
    const { result: byOther } = await watched(() => patch(mine.id, { title: 'taken over' }, other.access));
    expectError(byOther, 403, 'not_owner');
    assert.deepEqual(await stored(mine.id), { ...mine, title: 'edited' });
  });

  test('4. a user cannot change the publishing state of their own article', async () => {
    const u = await user();
    const mine = await createOwn(u, 'mine, stays published');
    const denied = (res, s) => expectError(res, s, 'body_not_allowed');
    const path = `/directus/items/articles/${mine.id}`;
    await refused('PATCH', path, { bearer: u.access, json: { status: 'draft' } }, 400, denied);
    await refused('PATCH', path, { bearer: u.access, json: { title: 'x', status: 'draft' } }, 400, denied);
    await refused('PATCH', path, { bearer: u.access, json: { id: d.items.bob1, title: 'x' } }, 400, denied);
    assert.deepEqual(await stored(mine.id), mine);
    assert.equal(mine.status, 'published');
  });

  test('5. GraphQL is not an endpoint: its mutations never reach Directus', async () => {
    const u = await user();
    const notFound = (res, s) => expectError(res, s, 'not_found');
    const mine = await createOwn(u, 'mine, not through GraphQL');
    for (const [id, bearer] of [
      [d.items.bob1, u.access],
      [mine.id, u.access],
      [d.items.bob1, undefined],
    ]) {
      await refused(
        'POST',
        '/directus/graphql',
        { bearer, json: { query: GQL_UPDATE, variables: { id, d: { title: 'pwned', author: 'usr_mallory', status: 'draft' } } } },
        404,
        notFound,
      );
    }
    await refused('GET', `/directus/graphql?query=${encodeURIComponent('{ articles { id status author } }')}`, {}, 404, notFound);
    await refused('POST', '/directus/graphql/system', { bearer: u.access, json: { query: '{ users_me { id } }' } }, 404, notFound);
    assert.deepEqual(await stored(d.items.bob1), d.articles.bob1);
    assert.deepEqual(await stored(mine.id), mine);
  });

  test('6. everything else: unknown endpoints 404, bulk PATCH and DELETE 405 with Allow', async () => {
    const u = await user();
    const notFound = (res, s) => expectError(res, s, 'not_found');
    for (const bearer of [undefined, u.access]) {
      await refused('GET', '/directus/users/me', { bearer }, 404, notFound);
      await refused('GET', '/directus/server/info', { bearer }, 404, notFound);
      await refused('GET', '/directus/items/directus_users', { bearer }, 404, notFound);
      await refused('GET', '/directus/items/directus_users/1', { bearer }, 404, notFound);
      await refused('GET', '/directus/collections', { bearer }, 404, notFound);
    }
    await refused('POST', '/directus/items/directus_users', { bearer: u.access, json: { title: 'x' } }, 404, notFound);

    const bulk = await refused(
      'PATCH',
      '/directus/items/articles',
      { bearer: u.access, json: { keys: [d.items.bob1, d.items.alice1], data: { title: 'pwned' } } },
      405,
      (res, s) => expectError(res, s, 'method_not_allowed'),
    );
    assert.ok(allowOf(bulk).includes('GET') && allowOf(bulk).includes('POST'), bulk.describe());
    assert.ok(!allowOf(bulk).includes('PATCH'), bulk.describe());

    const mine = await createOwn(u, 'mine, not deleted');
    const del = await refused('DELETE', `/directus/items/articles/${mine.id}`, { bearer: u.access }, 405, (res, s) =>
      expectError(res, s, 'method_not_allowed'),
    );
    assert.ok(allowOf(del).includes('GET') && allowOf(del).includes('PATCH'), del.describe());
    assert.ok(!allowOf(del).includes('DELETE'), del.describe());
    assert.deepEqual(await stored(mine.id), mine);
  });

  test('7. no Directus token in any answer of this file', async () => {
    // Each answer was checked as it came (recording()); this is the whole file at once.
    assert.ok(answers.length >= 40, `only ${answers.length} answers recorded`);
    for (const { what, dump } of answers) assertNoToken(dump, what);
    // Nor did Directus ever receive a credential in a query string from Gatehouse.
    const fromGatehouse = (await fence()).all.filter((r) => r.headers['x-gatehouse-auth']);
    assert.ok(fromGatehouse.length > 0);
    for (const r of fromGatehouse) {
      assert.ok(!/access_token/i.test(r.url), `${r.method} ${r.url}`);
      assert.ok(!['DELETE', 'PUT'].includes(r.method), `${r.method} ${r.url}`);
      assert.ok(!r.url.startsWith('/graphql') && !r.url.startsWith('/users') && !r.url.startsWith('/server'), `${r.method} ${r.url}`);
    }
  });
});
