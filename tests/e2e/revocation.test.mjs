// Revocation that reaches the proxy, in workerd against D1, with REVOCATION_DELAY_SECONDS=1:
// logout, an admin's session revocation, a password change, a disable (access token and API
// key), a role removal and a key revocation each end a credential that the proxy and
// /auth/me had just admitted (and cached). Each refusal is awaited by polling with a
// deadline; that nothing is refused *before* the delay, and that a cached caller costs no
// storage read, is shown natively with a controlled clock (tests/revocation.rs).

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { PEPPER, mintKey, userWithRoles } from '../support/admin.mjs';
import { client, expectError, expectStatus, loginUser, openVars, sleep } from '../support/http.mjs';
import { startUpstream } from '../support/upstream.mjs';
import { generateSigningKey, startWorker } from '../support/worker.mjs';

const DELAY_MS = 1000;
// Far beyond the delay: only a broken guarantee (or a stalled machine) reaches it.
const DEADLINE_MS = DELAY_MS + 15_000;

describe('revocation reaches the proxy within REVOCATION_DELAY_SECONDS', () => {
  let up;
  let w;
  let c;
  let admin;

  before(async () => {
    up = await startUpstream();
    const routes = {
      cms: {
        prefix: '/cms/',
        upstream: `${up.url}/cms/`,
        forward_all: true,
        read: { roles: ['user'] },
        write: { roles: ['editor'] },
      },
    };
    w = await startWorker({
      vars: openVars(generateSigningKey(), {
        API_KEY_PEPPER: PEPPER,
        ROUTES: JSON.stringify(routes),
        UPSTREAM_SIGNING_SECRET: 'upstream-signing-secret-0123456789abcdef',
        REVOCATION_DELAY_SECONDS: String(DELAY_MS / 1000),
      }),
    });
    c = client(w.url);
    admin = await userWithRoles(w, c, ['admin', 'editor', 'user']);
  });
  after(async () => {
    await w?.stop();
    await up?.close();
  });

  const read = (bearer) => c.get('/cms/items/1', { bearer });
  const write = (bearer) => c.request('POST', '/cms/items', { json: { title: 't' }, bearer });

  /**
   * Sends `send()` until it answers `status` `code`, every 100 ms, failing after the deadline
   * or on any answer other than 200 and that refusal. Returns how long it took.
   */
  async function refusedEventually(what, send, status, code) {
    const start = Date.now();
    for (;;) {
      const res = await send();
      if (res.status === status) {
        expectError(res, status, code, { bearer: status === 401 && code === 'invalid_token' });
        return Date.now() - start;
      }
      assert.equal(res.status, 200, `${what}: neither admitted nor refused as expected\n${res.describe()}`);
      assert.ok(Date.now() - start < DEADLINE_MS, `${what}: still admitted after ${DEADLINE_MS} ms`);
      await sleep(100);
    }
  }

  test('logout ends the access token on the proxy and /auth/me', async () => {
    const ada = await userWithRoles(w, c, ['user']);
    expectStatus(await read(ada.access), 200);
    expectStatus(await c.get('/auth/me', { bearer: ada.access }), 200);
    expectStatus(await c.post('/auth/logout', { refresh_token: ada.refresh }), 204);
    await refusedEventually('proxy', () => read(ada.access), 401, 'invalid_token');
    await refusedEventually('/auth/me', () => c.get('/auth/me', { bearer: ada.access }), 401, 'invalid_token');
  });

  test("an admin's session revocation and a password change end the sessions they revoke", async () => {
    const ada = await userWithRoles(w, c, ['user']);
    const second = await loginUser(c, ada.email);
    expectStatus(await read(ada.access), 200);
    expectStatus(await read(second.access), 200);
    const sid = JSON.parse(Buffer.from(ada.access.split('.')[1], 'base64url').toString()).sid;
    expectStatus(await c.del(`/admin/users/${ada.id}/sessions/${sid}`, { bearer: admin.access }), 204);
    await refusedEventually('revoked session', () => read(ada.access), 401, 'invalid_token');
    // The password change keeps the caller's session and ends the others.
    const third = await loginUser(c, ada.email);
    expectStatus(
      await c.post('/auth/password', { current_password: ada.password, new_password: 'another long password' }, { bearer: third.access }),
      200,
    );
    await refusedEventually('other session', () => read(second.access), 401, 'invalid_token');
    expectStatus(await read(third.access), 200);
  });

  test("disabling a user ends its access tokens and its API keys on the proxy", async () => {
    const ada = await userWithRoles(w, c, ['user']);
    const { key } = await mintKey(c, admin.access, { owner_user_id: ada.id, label: 'ci', role: 'user', scopes: ['cms'] });
    expectStatus(await read(ada.access), 200);
    expectStatus(await read(key), 200);
    expectStatus(await c.post(`/admin/users/${ada.id}/disable`, undefined, { bearer: admin.access }), 200);
    await refusedEventually('access token', () => read(ada.access), 401, 'invalid_token');
    await refusedEventually('API key', () => read(key), 401, 'invalid_api_key');
    expectError(await c.get('/auth/me', { bearer: ada.access }), 401, 'invalid_token', { bearer: true });
  });

  test('a removed role stops admitting the token and the key that carry it', async () => {
    const ada = await userWithRoles(w, c, ['user', 'editor']);
    const { key } = await mintKey(c, admin.access, { owner_user_id: ada.id, label: 'ci', role: 'editor', scopes: ['cms'] });
    expectStatus(await write(ada.access), 200);
    expectStatus(await write(key), 200);
    expectStatus(await c.put(`/admin/users/${ada.id}/roles`, { roles: ['user'] }, { bearer: admin.access }), 200);
    await refusedEventually('access token', () => write(ada.access), 403, 'insufficient_role');
    await refusedEventually('API key', () => write(key), 403, 'insufficient_role');
    // The token still reads: `user` stays.
    expectStatus(await read(ada.access), 200);
  });

  test('a revoked API key stops on the proxy', async () => {
    const { key, api_key: view } = await mintKey(c, admin.access, { label: 'ci', role: 'user', scopes: ['cms'] });
    expectStatus(await read(key), 200);
    expectStatus(await c.del(`/admin/api-keys/${view.id}`, { bearer: admin.access }), 204);
    await refusedEventually('API key', () => read(key), 401, 'invalid_api_key');
  });
});
