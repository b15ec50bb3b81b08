// The key-holding proxy, end to end: the built worker in workerd in front of a real local HTTP
// server that records every request it receives.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { verifyGatehouseRequest } from '../../examples/verify-signature/verify.mjs';
import { client, expectError, expectStatus, openVars, registerUser } from '../support/http.mjs';
import { nowSeconds, signEdDSA } from '../support/jwt.mjs';
import { rawRequest, startUpstream } from '../support/upstream.mjs';
import { generateSigningKey, ROOT, startWorker } from '../support/worker.mjs';

const KEYS = {
  READ_KEY: `read-${randomBytes(12).toString('hex')}`,
  PREVIEW_KEY: `preview-${randomBytes(12).toString('hex')}`,
  WRITE_KEY: `write-${randomBytes(12).toString('hex')}`,
  ADMIN_KEY: `admin-${randomBytes(12).toString('hex')}`,
};
const SIGNING_SECRET = randomBytes(32).toString('base64url');
const ALL_SECRETS = [...Object.values(KEYS), SIGNING_SECRET];

function routes(up) {
  return {
    rec: {
      prefix: '/rec/',
      upstream: `${up.url}/base/`,
      inject: { header: 'api-key', value: '{secret}' },
      forward_all: true,
      timeout_ms: 1000,
      max_body_bytes: 1024,
      read: [
        { roles: ['editor'], secret: 'PREVIEW_KEY' },
        { roles: ['anonymous'], secret: 'READ_KEY' },
      ],
      write: { roles: ['user'], secret: 'WRITE_KEY' },
      DELETE: { roles: ['admin'], secret: 'ADMIN_KEY' },
    },
    q: {
      forward_all: true,
      prefix: '/q/',
      upstream: `${up.url}/qbase/`,
      inject: { query: 'api_key' },
      read: { roles: ['anonymous'], secret: 'READ_KEY' },
    },
    members: {
      forward_all: true,
      prefix: '/members/',
      upstream: `${up.url}/members/`,
      read: { roles: ['user'] },
    },
    pub: {
      forward_all: true,
      prefix: '/pub/',
      upstream: `${up.url}/pub/`,
      public: true,
      read: { roles: ['anonymous'], secret: 'READ_KEY', inject: { header: 'authorization', value: 'Bearer {secret}' } },
    },
    down: {
      forward_all: true,
      prefix: '/down/',
      upstream: 'http://127.0.0.1:9/',
      read: { roles: ['anonymous'] },
    },
  };
}

describe('proxy', () => {
  let up;
  let w;
  let c;
  let key;
  const token = (sub, roles, extra = {}) => {
    const now = nowSeconds();
    return signEdDSA(
      { alg: 'EdDSA', typ: 'JWT', kid: key.kid },
      { iss: 'gatehouse', aud: 'gatehouse', sub, jti: randomBytes(8).toString('hex'), roles, iat: now, exp: now + 600, ...extra },
      key.privateKey,
    );
  };
  let user;
  let editor;
  let admin;

  before(async () => {
    up = await startUpstream();
    key = generateSigningKey();
    w = await startWorker({
      vars: openVars(key, { ROUTES: routes(up), UPSTREAM_SIGNING_SECRET: SIGNING_SECRET, ...KEYS }),
    });
    c = client(w.url);
    // An access token carries only the roles its user still holds: the users exist, with them.
    for (const [id, roles] of [['usr_alice', ['user']], ['usr_eddie', ['user', 'editor']], ['usr_root', ['user', 'admin']]]) {
      await w.db
        .prepare("INSERT INTO users (id, email, password_hash, roles, created_at, updated_at) VALUES (?1, ?2, 'unused', ?3, 0, 0)")
        .bind(id, `${id}@example.test`, JSON.stringify(roles))
        .run();
    }
    user = token('usr_alice', ['user']);
    editor = token('usr_eddie', ['user', 'editor']);
    admin = token('usr_root', ['user', 'admin']);
  });
  after(async () => {
    await w?.stop();
    await up?.close();
  });

  /** Sends and returns [response, the request the upstream recorded (or undefined)]. */
  async function via(method, p, opts = {}) {
    const before = up.requests.length;
    const res = await c.request(method, p, opts);
    const seen = up.requests.slice(before);
    assert.ok(seen.length <= 1, 'at most one upstream request per call');
    return [res, seen[0]];
  }

  function assertNoClientCredential(seen, allowedKey) {
    const text = JSON.stringify({ url: seen.url, headers: seen.headers });
    for (const forged of ['forged', 'client-key', 'usr_mallory']) assert.ok(!text.includes(forged), `${forged} reached the upstream: ${text}`);
    for (const secret of Object.values(KEYS)) {
      if (secret !== allowedKey) assert.ok(!text.includes(secret), 'a key the rule does not grant reached the upstream');
    }
    assert.ok(!text.includes(SIGNING_SECRET));
  }

  test('anonymous read: the read key is injected and every client credential is stripped', async () => {
    const q = [
      'api_key=client-key', 'token=client-key', 'access_token=client-key', 'API_KEY=client-key',
      'api%5Fkey=client-key', 'api.key=client-key', 'api+key=client-key', 'api_key%5B%5D=client-key',
      'Token=client-key', 'keep=1',
    ].join('&');
    const [res, seen] = await via('GET', `/rec/content/items/posts?${q}`, {
      headers: {
        cookie: 'session=forged',
        'api-key': 'client-key',
        api_key: 'client-key',
        'cockpit-token': 'client-key',
        'x-api-key': 'client-key',
        'x-gatehouse-user': 'usr_mallory',
        'x-gatehouse-roles': 'admin',
        'x-gatehouse-auth': 'forged',
        signature: 'gatehouse=:forged:',
        'content-digest': 'sha-256=:forged:',
        'x-custom': 'kept',
      },
    });
    expectStatus(res, 200);
    assert.equal(seen.path, '/base/content/items/posts');
    assert.equal(seen.query, '?keep=1');
    assert.equal(seen.headers['api-key'], KEYS.READ_KEY);
    assert.equal(seen.headers['x-custom'], 'kept');
    assert.equal(seen.headers['x-gatehouse-auth'], 'anonymous');
    assert.equal(seen.headers['x-gatehouse-user'], undefined);
    assert.equal(seen.headers.cookie, undefined);
    assert.equal(seen.headers.authorization, undefined);
    assertNoClientCredential(seen, KEYS.READ_KEY);
  });

  test('method-override, URL-rewrite, httpoxy and Proxy-* headers and _method never reach the upstream', async () => {
    const sent = {
      'x-http-method-override': 'DELETE',
      'x-http-method': 'DELETE',
      'x-method-override': 'DELETE',
      proxy: 'http://evil.example:8080',
      'x-original-url': '/admin/secret',
      'x-rewrite-url': '/admin/secret',
      'proxy-authorization': 'Basic Zm9yZ2VkOmZvcmdlZA==',
      'proxy-foo': 'forged',
      'x-custom': 'kept',
    };
    const before = up.requests.length;
    const res = await rawRequest(w.url, 'GET', '/rec/content/items/posts?_method=DELETE&_METHOD=PUT&keep=1', sent);
    assert.equal(res.status, 200, res.text);
    const [seen, ...more] = up.requests.slice(before);
    assert.equal(more.length, 0);
    assert.equal(seen.method, 'GET');
    assert.equal(seen.query, '?keep=1');
    assert.equal(seen.headers['x-custom'], 'kept');
    for (const name of Object.keys(sent).filter((n) => n !== 'x-custom')) {
      assert.equal(seen.headers[name], undefined, `${name} reached the upstream`);
    }
  });

  test('hop-by-hop headers, and those Connection names, never reach the upstream', async () => {
    const before = up.requests.length;
    const res = await rawRequest(w.url, 'GET', '/rec/content/items/posts', {
      connection: 'keep-alive, x-hop-one',
      'x-hop-one': 'forged',
      'keep-alive': 'timeout=77',
      te: 'trailers',
      'x-custom': 'kept',
    });
    assert.equal(res.status, 200, res.text);
    const [seen] = up.requests.slice(before);
    assert.equal(seen.headers['x-custom'], 'kept');
    assert.equal(seen.headers['x-hop-one'], undefined);
    assert.notEqual(seen.headers['keep-alive'], 'timeout=77');
    assert.equal(seen.headers.te, undefined);
    assert.ok(!String(seen.headers.connection ?? '').includes('x-hop-one'));
  });

  test('a GET with a body is forwarded without it, and its signature covers the empty body', async () => {
    const before = up.requests.length;
    const res = await rawRequest(w.url, 'GET', '/rec/content/items/posts?page=1', { 'content-type': 'text/plain', 'content-length': '5' }, 'hello');
    assert.equal(res.status, 200, res.text);
    const [seen] = up.requests.slice(before);
    assert.equal(seen.method, 'GET');
    assert.equal(seen.body.length, 0);
    assert.equal(seen.headers['transfer-encoding'], undefined);
    assert.ok([undefined, '0'].includes(seen.headers['content-length']), seen.headers['content-length']);
    const id = await verifyGatehouseRequest({ method: seen.method, url: `${up.url}${seen.url}`, headers: seen.headers, body: seen.body, secret: SIGNING_SECRET });
    assert.equal(id.ok, true, id.reason);
  });

  test('the right key per method class and role; the Gatehouse token never goes upstream', async () => {
    const cases = [
      ['GET', user, KEYS.READ_KEY],
      ['HEAD', user, KEYS.READ_KEY],
      ['GET', editor, KEYS.PREVIEW_KEY],
      ['POST', user, KEYS.WRITE_KEY],
      ['PUT', user, KEYS.WRITE_KEY],
      ['PATCH', user, KEYS.WRITE_KEY],
      ['DELETE', admin, KEYS.ADMIN_KEY],
    ];
    for (const [method, bearer, expected] of cases) {
      const json = ['POST', 'PUT', 'PATCH'].includes(method) ? { data: { title: 't' } } : undefined;
      const [res, seen] = await via(method, '/rec/content/item/posts', { bearer, json, headers: { 'x-api-key': 'client-key' } });
      expectStatus(res, 200);
      assert.ok(seen, `${method} reached the upstream`);
      assert.equal(seen.method, method);
      assert.equal(seen.headers['api-key'], expected, `${method}`);
      assert.equal(seen.headers.authorization, undefined, 'the access token is not forwarded');
      assert.ok(!JSON.stringify(seen.headers).includes(bearer));
      assertNoClientCredential(seen, expected);
    }
  });

  test('a query-parameter injection replaces any client value of it', async () => {
    const [res, seen] = await via('GET', '/q/items?api_key=client-key&Api.Key=client-key&page=2');
    expectStatus(res, 200);
    assert.equal(seen.path, '/qbase/items');
    assert.equal(seen.query, `?page=2&api_key=${encodeURIComponent(KEYS.READ_KEY)}`);
  });

  test('roles are enforced per method class', async () => {
    for (const [method, bearer, status, code] of [
      ['POST', undefined, 401, 'no_auth'],
      ['PUT', undefined, 401, 'no_auth'],
      ['DELETE', undefined, 401, 'no_auth'],
      ['DELETE', user, 403, 'insufficient_role'],
      ['DELETE', editor, 403, 'insufficient_role'],
    ]) {
      const json = method === 'DELETE' ? undefined : { data: { title: 't' } };
      const [res, seen] = await via(method, '/rec/content/item/posts', { bearer, json });
      if (code === 'no_auth') expectError(res, 401, 'no_auth');
      else expectError(res, 403, 'insufficient_role');
      assert.equal(res.status, status);
      assert.equal(seen, undefined, 'refused requests never reach the upstream');
    }
    const [res, seen] = await via('GET', '/members/list');
    expectError(res, 401, 'no_auth');
    assert.equal(seen, undefined);
    const [ok, seenOk] = await via('GET', '/members/list', { bearer: user });
    expectStatus(ok, 200);
    assert.equal(seenOk.headers['api-key'], undefined, 'a rule without a secret injects nothing');
  });

  test('a sent but invalid or expired token is refused even where anonymous may read', async () => {
    const [bad, seen] = await via('GET', '/rec/content/items/posts', { bearer: `${user}x` });
    expectError(bad, 401, 'invalid_token', { bearer: true });
    assert.equal(seen, undefined);
    const expired = token('usr_alice', ['user'], { iat: nowSeconds() - 4000, exp: nowSeconds() - 3000 });
    const [res] = await via('GET', '/rec/content/items/posts', { bearer: expired });
    expectError(res, 401, 'expired_token', { bearer: true });
  });

  test('methods are compared as sent: SEARCH, PROPFIND and unknown methods answer 405 and never become a GET', async () => {
    for (const method of ['SEARCH', 'PROPFIND', 'PURGE', 'REPORT', 'LINK']) {
      const before = up.requests.length;
      const res = await rawRequest(w.url, method, '/rec/content/items/posts', { authorization: `Bearer ${admin}` });
      if (method === 'LINK') {
        // workerd itself answers 501 to a method it does not implement; the worker never runs.
        assert.equal(res.status, 501, method);
      } else {
        assert.equal(res.status, 405, method);
        assert.equal(res.body.error.code, 'method_not_allowed');
        assert.equal(res.headers.allow, 'GET, HEAD, POST, PUT, PATCH, DELETE');
      }
      assert.equal(up.requests.length, before, `${method} reached the upstream`);
    }
  });

  test('client forwarding headers never reach the upstream; Gatehouse sets its own and signs them', async () => {
    const before = up.requests.length;
    const res = await rawRequest(w.url, 'GET', '/rec/content/items/posts', {
      'x-forwarded-host': 'evil.example',
      'x-forwarded-for': '10.6.6.6',
      'x-forwarded-proto': 'gopher',
      'x-forwarded-port': '1',
      forwarded: 'for=10.6.6.6;host=evil.example;proto=http',
      'x-real-ip': '10.6.6.6',
      'true-client-ip': '10.6.6.6',
      'x-client-ip': '10.6.6.6',
      'x-original-host': 'evil.example',
      via: '1.1 evil',
      'cf-connecting-ip': '198.51.100.7',
    });
    assert.equal(res.status, 200);
    const seen = up.requests[before];
    const text = JSON.stringify(seen.headers);
    for (const forged of ['evil.example', '10.6.6.6', 'gopher', '1.1 evil']) assert.ok(!text.includes(forged), `${forged}: ${text}`);
    for (const gone of ['forwarded', 'x-real-ip', 'true-client-ip', 'x-client-ip', 'x-original-host', 'via', 'x-forwarded-port']) {
      assert.equal(seen.headers[gone], undefined, gone);
    }
    assert.equal(seen.headers['x-forwarded-for'], '198.51.100.7');
    assert.equal(seen.headers['x-forwarded-host'], new URL(w.url).host);
    assert.equal(seen.headers['x-forwarded-proto'], 'http');
    assert.match(seen.headers['signature-input'], /"x-forwarded-for" "x-forwarded-host" "x-forwarded-proto"/);
    const verified = await verifyGatehouseRequest({ method: seen.method, url: `http://upstream.invalid${seen.url}`, headers: seen.headers, body: seen.body, secret: SIGNING_SECRET });
    assert.equal(verified.ok, true, verified.reason);
    const tampered = await verifyGatehouseRequest({ method: seen.method, url: `http://upstream.invalid${seen.url}`, headers: { ...seen.headers, 'x-forwarded-host': 'evil.example' }, body: seen.body, secret: SIGNING_SECRET });
    assert.equal(tampered.ok, false);
  });

  test('a forward_all route forwards a write body as sent (no owner binding is possible there)', async () => {
    const [res, seen] = await via('POST', '/rec/content/item/posts', { bearer: user, json: { data: { title: 'x', _by: 'usr_alice' } } });
    expectStatus(res, 200);
    assert.deepEqual(JSON.parse(seen.body.toString('utf8')), { data: { title: 'x', _by: 'usr_alice' } });
  });

  test('the identity signature verifies independently and fails after any change', async () => {
    const [res, seen] = await via('POST', '/rec/content/item/posts?lang=de', { bearer: editor, json: { data: { title: 'signed' } } });
    expectStatus(res, 200);
    const signed = {
      method: seen.method,
      url: `${up.url}${seen.url}`,
      headers: seen.headers,
      body: seen.body,
      secret: SIGNING_SECRET,
    };
    const ok = await verifyGatehouseRequest(signed);
    assert.deepEqual(ok, { ok: true, auth: 'access_token', user: 'usr_eddie', roles: ['user', 'editor'] });
    const tampered = [
      { method: 'PUT' },
      { url: `${up.url}/base/content/item/pages?lang=de` },
      { url: `${up.url}/base/content/item/posts?lang=en` },
      { headers: { ...seen.headers, 'x-gatehouse-user': 'usr_mallory' } },
      { headers: { ...seen.headers, 'x-gatehouse-roles': 'user,editor,admin' } },
      { headers: { ...seen.headers, 'x-gatehouse-auth': 'api_key' } },
      { body: Buffer.from(seen.body.toString('utf8').replace('signed', 'forged')) },
      { secret: 'another secret of at least thirty-two characters' },
    ];
    for (const change of tampered) {
      const result = await verifyGatehouseRequest({ ...signed, ...change });
      assert.equal(result.ok, false, `accepted after ${Object.keys(change)}`);
    }
    // Missing or malformed input is a failure, never an exception.
    const malformed = [
      { headers: { ...seen.headers, 'signature-input': 'gatehouse=(abc "@method");created=1' } },
      { headers: { ...seen.headers, 'signature-input': seen.headers['signature-input'].replace('"x-gatehouse-user"', '"x-missing"') } },
      { headers: { ...seen.headers, signature: undefined } },
      { headers: null },
      { url: 'not a url' },
      { method: undefined },
      { secret: undefined },
    ];
    for (const change of malformed) {
      const result = await verifyGatehouseRequest({ ...signed, ...change });
      assert.equal(result.ok, false, `accepted ${JSON.stringify(change)}`);
    }
    assert.equal((await verifyGatehouseRequest(undefined)).ok, false);
    // An anonymous request is signed too, without a user.
    const [, anon] = await via('GET', '/rec/content/items/posts');
    const anonResult = await verifyGatehouseRequest({ method: 'GET', url: `${up.url}${anon.url}`, headers: anon.headers, body: anon.body, secret: SIGNING_SECRET });
    assert.deepEqual(anonResult, { ok: true, auth: 'anonymous', user: null, roles: [] });
  });

  test('the PHP verifier accepts the real signature and refuses a changed one', { skip: !phpAvailable() && !process.env.CI && 'php is not installed (scripts/setup.sh installs php-cli as root; CI runs it always)' }, async () => {
    const [, seen] = await via('POST', '/rec/content/item/posts?lang=de', { bearer: user, json: { data: { title: 'php' } } });
    const dir = mkdtempSync(path.join(tmpdir(), 'gatehouse-php-'));
    const input = path.join(dir, 'request.json');
    const check = (request) => {
      writeFileSync(input, JSON.stringify(request));
      return execFileSync('php', ['-r', `
        require '${path.join(ROOT, 'examples/verify-signature/verify.php')}';
        $r = json_decode(file_get_contents($argv[1]), true);
        $id = gatehouse_verify($r['method'], $r['url'], $r['headers'], base64_decode($r['body']), $r['secret']);
        echo json_encode($id);`, input], { encoding: 'utf8' });
    };
    const request = { method: seen.method, url: seen.url, headers: seen.headers, body: seen.body.toString('base64'), secret: SIGNING_SECRET };
    assert.deepEqual(JSON.parse(check(request)), { auth: 'access_token', user: 'usr_alice', roles: ['user'] });
    assert.equal(check({ ...request, method: 'PUT' }), 'null');
    assert.equal(check({ ...request, headers: { ...seen.headers, 'x-gatehouse-user': 'usr_mallory' } }), 'null');
    assert.equal(check({ ...request, body: Buffer.from('{}').toString('base64') }), 'null');
    assert.equal(check({ ...request, url: seen.url.replace('/posts', '/pages') }), 'null');
    assert.equal(check({ ...request, url: seen.url.replace('lang=de', 'lang=en') }), 'null');
    assert.equal(check({ ...request, url: seen.url.replace('?lang=de', '') }), 'null');
    // Missing or malformed input is a refusal, never an exception.
    assert.equal(check({ ...request, headers: { ...seen.headers, 'signature-input': 'gatehouse=(abc);created=1' } }), 'null');
    assert.equal(check({ ...request, headers: { ...seen.headers, signature: [seen.headers.signature, 'x'] } }), 'null');
    assert.equal(check({ ...request, headers: { 'x-gatehouse-auth': 'anonymous' } }), 'null');
    assert.equal(check({ ...request, secret: '' }), 'null');
    assert.equal(check({ ...request, url: 'http:///:' }), 'null');
  });

  test('path escapes are refused and never reach the upstream outside its base', async () => {
    const attempts = [
      '/rec/..', '/rec/../secret', '/rec/a/../../secret', '/rec/%2e%2e/secret', '/rec/%2E%2E/secret',
      '/rec/.%2e/secret', '/rec/%2e./secret', '/rec/a%2f..%2f..%2fsecret', '/rec/a%2F..%2Fsecret',
      '/rec/..%2fsecret', '/rec/..%5csecret', '/rec/a%5c..%5csecret', '/rec/%252e%252e/secret',
      '/rec/%252e%252e%252fsecret', '/rec//secret', '/rec///evil.example/x', '/rec/http://evil.example/',
      '/rec/https:evil.example', '/rec/c:%5cwindows', '/rec/a%00b', '/rec/a%0d%0aHost:%20evil',
      '/rec/%c0%ae%c0%ae/secret', '/rec/%c0%af', '/rec/%e0%80%ae%e0%80%ae/secret', '/rec/%f0%80%80%ae',
      '/rec/..;/secret', '/rec/a/..;x=1/secret', '/rec/%', '/rec/%zz', '/rec/.%00./secret',
      '/rec/a%09b', '/rec/a%20b', '/rec/%ff%fe',
    ];
    const before = up.requests.length;
    let invalidPath = 0;
    let refused = 0;
    for (const target of attempts) {
      const res = await rawRequest(w.url, 'GET', target, { authorization: `Bearer ${admin}` });
      assert.ok([400, 404].includes(res.status), `${target}: ${res.status} ${res.text}`);
      refused += 1;
      if (res.status === 400) {
        assert.equal(res.body?.error?.code, 'invalid_path', target);
        invalidPath += 1;
      } else {
        assert.equal(res.body?.error?.code, 'not_found', target);
      }
    }
    const leaked = up.requests.slice(before);
    assert.deepEqual(leaked.map((r) => r.url), [], 'no escape attempt reached the upstream');
    assert.equal(refused, attempts.length);
    assert.ok(invalidPath >= 25, `only ${invalidPath} answered invalid_path`);
    const res = await c.request('GET', '/rec/a%2f..%2fsecret');
    expectError(res, 400, 'invalid_path');
  });

  test('upstream down → 502, slow → 504, too large → 413, upstream 404/500 pass through', async () => {
    const [down] = await via('GET', '/down/x');
    expectError(down, 502, 'upstream_unavailable');
    const t0 = Date.now();
    const [slow] = await via('GET', '/rec/slow/3000');
    expectError(slow, 504, 'upstream_timeout');
    assert.ok(Date.now() - t0 < 2800, 'the timeout is the route\'s, not the upstream\'s');
    const [big, seenBig] = await via('POST', '/rec/content/item/posts', { bearer: user, json: { data: { title: 'x'.repeat(2000) } } });
    expectError(big, 413, 'payload_too_large');
    assert.equal(seenBig, undefined);
    for (const status of [404, 500]) {
      const [res] = await via('GET', `/rec/status/${status}`);
      assert.equal(res.status, status);
      assert.deepEqual(res.body, { error: `upstream says ${status}` });
    }
  });

  test('answers lose cookies, banners, CMS CORS and echoed credentials; caching follows the caller', async () => {
    const [anon] = await via('GET', '/rec/echo-secret?api_key=client-key');
    expectStatus(anon, 200);
    for (const h of ['set-cookie', 'server', 'x-powered-by', 'access-control-allow-origin', 'access-control-allow-credentials', 'x-echo-api-key']) {
      assert.equal(anon.headers.get(h), null, `${h} passed through`);
    }
    assert.equal(anon.headers.get('x-cms-item-count'), '3');
    assert.match(anon.headers.get('vary') ?? '', /\bAuthorization\b/, 'a cache keeps anonymous and signed-in answers apart');
    assert.equal(anon.headers.get('cache-control'), 'public, max-age=60', 'anonymous answers keep the CMS caching');
    assert.ok(!JSON.stringify([...anon.headers]).includes(KEYS.READ_KEY));

    const [signedIn] = await via('GET', '/rec/content/items/posts', { bearer: user });
    assert.equal(signedIn.headers.get('cache-control'), 'private, no-store');
    const [pub, seenPub] = await via('GET', '/pub/echo-secret', { bearer: user });
    assert.equal(pub.headers.get('cache-control'), 'public, max-age=60', 'a public route keeps the CMS caching');
    assert.equal(seenPub.headers.authorization, `Bearer ${KEYS.READ_KEY}`);
    assert.equal(pub.headers.get('x-echo-authorization'), null, 'an echoed Bearer key is dropped');
  });

  test('redirects are passed back, not followed; bodies stream through intact', async () => {
    const [redirect, seenRedirect] = await via('GET', '/rec/redirect-here');
    assert.equal(redirect.status, 302);
    assert.equal(seenRedirect.path, '/base/redirect-here');
    assert.equal(redirect.headers.get('location'), '/base/followed');
    assert.equal(up.requests.filter((r) => r.path.endsWith('/followed')).length, 0);
    const [big] = await via('GET', '/rec/big/3000000');
    expectStatus(big, 200);
    assert.equal(big.text.length, 3000000);
    // The first chunk reaches the client while the upstream still holds back the rest (until
    // the test releases it): a buffering proxy would deliver nothing before the release.
    // Uncompressed: the runtime's gzip would hold a small first chunk back.
    const res = await fetch(`${w.url}/rec/drip/stream-check`, { headers: { 'accept-encoding': 'identity' } });
    assert.equal(res.status, 200);
    const reader = res.body.getReader();
    const decoder = new TextDecoder();
    let text = '';
    let timer;
    const stalled = new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error('no first chunk within 20 s while the upstream held the rest: the answer was buffered')), 20_000);
    });
    try {
      while (!text.includes('\n')) {
        const { value, done } = await Promise.race([reader.read(), stalled]);
        assert.ok(!done, 'the answer ended before its first line');
        text += decoder.decode(value, { stream: true });
      }
    } finally {
      clearTimeout(timer);
    }
    assert.equal(text, 'first chunk\n');
    assert.ok(up.release('stream-check'), 'the upstream was still holding the rest');
    for (let r = await reader.read(); !r.done; r = await reader.read()) text += decoder.decode(r.value, { stream: true });
    assert.equal(text, 'first chunk\nthe rest\n');
  });

  test('unknown routes are 404, unruled methods 405 with Allow', async () => {
    const [none, seen] = await via('GET', '/nothing/here');
    expectError(none, 404, 'not_found');
    assert.equal(seen, undefined);
    const [res] = await via('POST', '/q/items', { json: {} });
    expectError(res, 405, 'method_not_allowed');
    assert.equal(res.headers.get('allow'), 'GET, HEAD');
    assert.equal((await c.request('GET', '/rec')).status, 404, 'the prefix without its slash is not the route');
  });

  test('a real account\'s token works through the proxy', async () => {
    const u = await registerUser(c);
    const [res, seen] = await via('POST', '/rec/content/item/posts', { bearer: u.access, json: { data: { title: 'mine' } } });
    expectStatus(res, 200);
    assert.match(seen.headers['x-gatehouse-user'], /^usr_/);
    assert.equal(seen.headers['x-gatehouse-user'], u.user.id);
  });
});

describe('proxy configuration', () => {
  test('a route naming a secret that is not set answers misconfigured and logs the route and field', async () => {
    const key = generateSigningKey();
    const w = await startWorker({
      vars: openVars(key, {
        ROUTES: { cms: { prefix: '/cms/', upstream: 'https://cms.example/api/', forward_all: true, read: { roles: ['anonymous'], secret: 'MISSING_KEY' }, inject: { header: 'api-key' } } },
        UPSTREAM_SIGNING_SECRET: SIGNING_SECRET,
      }),
    });
    try {
      const c = client(w.url);
      expectError(await c.request('GET', '/cms/x'), 500, 'misconfigured');
      const logs = w.logs();
      assert.match(logs, /ROUTES: route "cms": read\.secret: the secret MISSING_KEY is not set/);
    } finally {
      await w.stop();
    }
  });

  test('routes without UPSTREAM_SIGNING_SECRET are refused at start', async () => {
    const key = generateSigningKey();
    const w = await startWorker({
      vars: openVars(key, { ROUTES: JSON.stringify({ cms: { prefix: '/cms/', upstream: 'https://cms.example/', forward_all: true, read: { roles: ['anonymous'] } } }) }),
    });
    try {
      expectError(await client(w.url).request('GET', '/healthz'), 500, 'misconfigured');
      assert.match(w.logs(), /UPSTREAM_SIGNING_SECRET: required when ROUTES is set/);
      assert.ok(!w.logs().includes(SIGNING_SECRET));
    } finally {
      await w.stop();
    }
  });
});

function phpAvailable() {
  return ['/usr/bin/php', '/usr/local/bin/php'].some((p) => existsSync(p));
}
