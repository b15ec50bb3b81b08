// Unit tests of @gatehouse/nuxt's runtime with a fake client: the plugin ($gatehouse), the
// useGatehouse() composable and the gatehouse-auth middleware, run in Node as Nuxt builds them
// (see loader.mjs), with Vue's real reactivity from the example site.
import './setup.mjs';

import assert from 'node:assert/strict';
import { afterEach, describe, test } from 'node:test';

const { createNuxtApp, setNuxtApp } = await import('#app');
const fakes = await import('@gatehouse/client');
const { ALICE, EDITOR, FakeClient, GatehouseError } = fakes;
const { default: plugin } = await import('../src/runtime/plugin.js');
const { default: serverPlugin } = await import('../src/runtime/plugin.js?server');
const { useGatehouse } = await import('../src/runtime/composables.js');
const { default: middleware } = await import('../src/runtime/middleware.js');
const { default: serverMiddleware } = await import('../src/runtime/middleware.js?server');
const { grants, redirectFor, usesGuard } = await import('../src/runtime/state.js');
const { watch, nextTick } = await import('vue');
const { createClient: createRealClient } = await import('../../js/gatehouse.js');

const CONFIG = { url: 'https://auth.example.com', redirectTo: '/' };
const GUARDED = { middleware: 'gatehouse-auth' };

/** A Nuxt app with the plugin applied, as Nuxt starts one; the fake client it created. */
function start({ config = CONFIG, route, usePlugin = plugin } = {}) {
  const app = createNuxtApp({ config, route });
  setNuxtApp(app);
  const before = fakes.created.length;
  const { provide } = usePlugin.setup(app);
  app.$gatehouse = provide.gatehouse;
  const client = fakes.created.length > before ? fakes.created.at(-1).client : null;
  return { app, client, gh: useGatehouse() };
}

const route = (path, meta = {}) => ({ path, fullPath: path, meta });

afterEach(() => {
  fakes.useFactory(null);
  setNuxtApp(null);
});

describe('plugin and useGatehouse()', () => {
  test('one client per app, for the configured Gatehouse; useGatehouse() is $gatehouse', () => {
    const { app, client, gh } = start();
    assert.ok(client instanceof FakeClient);
    assert.deepEqual(client.options, { baseUrl: 'https://auth.example.com' });
    assert.equal(gh, app.$gatehouse);
    assert.equal(gh.client, client);
    assert.equal(plugin.name, 'gatehouse');
  });

  test('not ready and signed out until the session of the cookie is restored', async () => {
    const { client, gh } = start();
    assert.equal(gh.ready.value, false);
    assert.equal(gh.user.value, null);
    assert.equal(gh.loggedIn.value, false);
    let settled = false;
    const waiting = gh.whenReady().then((u) => {
      settled = true;
      return u;
    });
    await new Promise((r) => setTimeout(r, 5));
    assert.equal(settled, false, 'whenReady waits for the restore');
    client.restore(ALICE);
    assert.deepEqual(await waiting, ALICE);
    assert.equal(gh.ready.value, true);
    assert.deepEqual(gh.user.value, ALICE);
    assert.equal(gh.loggedIn.value, true);
  });

  test('a visitor without a session: ready, signed out', async () => {
    const { client, gh } = start();
    client.restore(null);
    assert.equal(await gh.whenReady(), null);
    assert.equal(gh.ready.value, true);
    assert.equal(gh.loggedIn.value, false);
  });

  test('login, register and logout go through the client and update the state', async () => {
    const { client, gh } = start();
    client.restore(null);
    await gh.whenReady();
    const user = await gh.login({ email: ALICE.email, password: 'a long password' });
    assert.deepEqual(user, ALICE);
    assert.deepEqual(client.calls.at(-1), ['login', { email: ALICE.email, password: 'a long password' }]);
    assert.equal(gh.loggedIn.value, true);
    assert.equal(gh.user.value.email, ALICE.email);

    await gh.logout();
    assert.deepEqual(client.calls.at(-1), ['logout', undefined]);
    assert.equal(gh.loggedIn.value, false);
    assert.equal(gh.user.value, null);

    const created = await gh.register({ email: 'new@example.com', password: 'another long one', name: 'New' });
    assert.equal(created.email, 'new@example.com');
    assert.deepEqual(client.calls.at(-1), ['register', { email: 'new@example.com', password: 'another long one', name: 'New' }]);
    assert.equal(gh.user.value.name, 'New');

    const me = await gh.me();
    assert.equal(me.name, 'Renamed');
    assert.equal(gh.user.value.name, 'Renamed', 'me() refreshes the user');
  });

  test('passkeys: sign in without an email, register one when signed in', async () => {
    const { client, gh } = start();
    client.restore(null);
    await gh.whenReady();
    const user = await gh.loginWithPasskey();
    assert.deepEqual(user, ALICE);
    assert.deepEqual(client.calls.at(-1), ['loginWithPasskey', undefined]);
    assert.equal(gh.loggedIn.value, true);
    const passkey = await gh.registerPasskey({ name: 'Laptop' });
    assert.deepEqual(passkey, { id: 'pk_1', name: 'Laptop' });
    assert.deepEqual(client.calls.at(-1), ['registerPasskey', { name: 'Laptop' }]);
  });

  test('TOTP: status, enrollment, confirmation, new recovery codes and removal go through the client', async () => {
    const { client, gh } = start();
    client.restore(ALICE);
    await gh.whenReady();
    assert.deepEqual(await gh.mfaStatus(), { available: true, enrolled: false, enrolledAt: null, pending: false, recoveryCodesLeft: 0 });
    assert.deepEqual(client.calls.at(-1), ['mfaStatus', undefined]);
    const started = await gh.enrollTotp({ password: 'a long password' });
    assert.equal(started.secret, 'JBSWY3DPEHPK3PXP');
    assert.match(started.qrSvg, /^<svg /);
    assert.deepEqual(client.calls.at(-1), ['enrollTotp', { password: 'a long password' }]);
    assert.deepEqual(await gh.confirmTotp({ otp: '123456' }), { recoveryCodes: ['aaaaa-bbbbb'] });
    assert.deepEqual(client.calls.at(-1), ['confirmTotp', { otp: '123456' }]);
    assert.deepEqual(await gh.regenerateRecoveryCodes({ password: 'a long password' }), { recoveryCodes: ['ccccc-ddddd'] });
    assert.deepEqual(client.calls.at(-1), ['regenerateRecoveryCodes', { password: 'a long password' }]);
    assert.equal(await gh.removeTotp({ password: 'a long password' }), undefined);
    assert.deepEqual(client.calls.at(-1), ['removeTotp', { password: 'a long password' }]);
    client.failWith = new GatehouseError(401, 'invalid_otp', 'Wrong code');
    await assert.rejects(gh.confirmTotp({ otp: '000000' }), { code: 'invalid_otp' });
    assert.equal(gh.user.value, ALICE, 'a refused code leaves the session alone');
  });

  test('a login with TOTP (the real client): mfa_required, then the code; a wrong code stays signed out', async () => {
    const bodies = [];
    const json = (status, body) => new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json' } });
    const gatehouse = async (url, init = {}) => {
      const { pathname } = new URL(url);
      if (pathname === '/auth/session') return json(401, { error: { code: 'no_auth' } });
      if (pathname !== '/auth/login') return json(404, { error: { code: 'not_found' } });
      const body = JSON.parse(init.body);
      bodies.push(body);
      if (!('otp' in body)) return json(401, { error: { code: 'mfa_required', message: 'A second factor is required' } });
      if (body.otp !== '654321') return json(401, { error: { code: 'invalid_otp', message: 'Wrong code' } });
      return json(200, { access_token: 'at_1', token_type: 'Bearer', expires_in: 60, csrf_token: 'csrf_1', user: ALICE });
    };
    fakes.useFactory((options) => createRealClient({ ...options, fetch: gatehouse, locks: null, BroadcastChannel: null }));
    const { gh } = start();
    await gh.whenReady();
    const creds = { email: ALICE.email, password: 'a long password' };
    await assert.rejects(gh.login(creds), (err) => err instanceof GatehouseError && err.code === 'mfa_required' && err.status === 401);
    assert.equal(gh.loggedIn.value, false);
    await assert.rejects(gh.login({ ...creds, otp: '123456' }), { code: 'invalid_otp' });
    assert.equal(gh.loggedIn.value, false);
    assert.deepEqual(await gh.login({ ...creds, otp: '654321' }), ALICE);
    assert.equal(gh.loggedIn.value, true);
    assert.deepEqual(bodies, [creds, { ...creds, otp: '123456' }, { ...creds, otp: '654321' }]);
    gh.client.close();
  });

  test('a failed login rejects with the client\'s error and leaves the state alone', async () => {
    const { client, gh } = start();
    client.restore(null);
    await gh.whenReady();
    client.failWith = new GatehouseError(401, 'invalid_credentials', 'Wrong email or password');
    await assert.rejects(gh.login({ email: ALICE.email, password: 'wrong password' }), (err) => err instanceof GatehouseError && err.code === 'invalid_credentials');
    assert.equal(gh.loggedIn.value, false);
    client.failWith = new GatehouseError(403, 'csrf_validation_failed', 'x');
    client.change(ALICE, 'login');
    await assert.rejects(gh.logout(), { code: 'csrf_validation_failed' });
    assert.equal(gh.user.value, ALICE, 'still the client\'s state after a failed logout');
  });

  test('changes made elsewhere (another tab, an ended session) reach the refs and their watchers', async () => {
    const { client, gh } = start();
    client.restore(null);
    await gh.whenReady();
    const seen = [];
    const stop = watch(() => gh.user.value?.email ?? null, (email) => seen.push(email), { flush: 'sync' });
    client.change(EDITOR, 'login'); // a login in another tab, broadcast
    assert.equal(gh.hasRole('editor'), true);
    assert.equal(gh.hasRole(['admin', 'editor']), true);
    assert.equal(gh.hasRole('admin'), false);
    client.change(null, 'expired');
    assert.equal(gh.hasRole('editor'), false);
    client.change(ALICE, 'login');
    stop();
    await nextTick();
    assert.deepEqual(seen, [EDITOR.email, null, ALICE.email]);
    assert.equal(gh.loggedIn.value, true);
  });

  test('fetch goes through the client (Bearer and refresh are its job)', async () => {
    const { client, gh } = start();
    client.restore(ALICE);
    const init = { method: 'POST', body: '{}' };
    const res = await gh.fetch('/cms/content/item/posts', init);
    assert.deepEqual(await res.json(), { path: '/cms/content/item/posts' });
    assert.deepEqual(client.calls.at(-1), ['fetch', { path: '/cms/content/item/posts', init }]);
  });

  test('fetch with the real client: an expired access token is refreshed before the request', async () => {
    let now = 1_000_000;
    const calls = [];
    let issued = 0;
    const json = (status, body) => new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json' } });
    const answer = () => {
      issued += 1;
      return { access_token: `at_${issued}`, token_type: 'Bearer', expires_in: 60, csrf_token: 'csrf_1', user: ALICE };
    };
    const gatehouse = async (url, init = {}) => {
      const { pathname } = new URL(url);
      const auth = new Headers(init.headers).get('authorization');
      calls.push(`${init.method || 'GET'} ${pathname}${auth ? ' ' + auth : ''}`);
      if (pathname === '/auth/session') return json(401, { error: { code: 'no_auth' } });
      if (pathname === '/auth/login') return json(200, answer());
      if (pathname === '/auth/refresh') return json(200, answer());
      if (pathname === '/cms/content/items/posts') return auth === `Bearer at_${issued}` ? json(200, [{ _id: 'p1' }]) : json(401, { error: { code: 'invalid_token' } });
      return json(404, { error: { code: 'not_found' } });
    };
    fakes.useFactory((options) => createRealClient({ ...options, fetch: gatehouse, now: () => now, locks: null, BroadcastChannel: null }));
    const { gh } = start();
    assert.equal(await gh.whenReady(), null);
    await gh.login({ email: ALICE.email, password: 'a long password' });
    assert.equal(gh.loggedIn.value, true);
    now += 120_000; // the 60 s access token has expired
    const res = await gh.fetch('/cms/content/items/posts');
    assert.equal(res.status, 200);
    assert.deepEqual(calls, [
      'GET /auth/session',
      'POST /auth/login',
      'POST /auth/refresh',
      'GET /cms/content/items/posts Bearer at_2',
    ]);
    gh.client.close();
  });

  test('on the server (prerendering): no client, nobody signed in, actions reject', async () => {
    const { client, gh } = start({ usePlugin: serverPlugin });
    assert.equal(client, null, 'no client is created on the server');
    assert.equal(gh.client, null);
    assert.equal(gh.loggedIn.value, false);
    assert.equal(gh.ready.value, false);
    assert.equal(await gh.whenReady(), null);
    await assert.rejects(gh.login({ email: ALICE.email, password: 'x' }), /runs in the browser only/);
    await assert.rejects(gh.fetch('/cms/x'), /runs in the browser only/);
    await assert.rejects(gh.enrollTotp({ password: 'x' }), /useGatehouse\(\)\.enrollTotp\(\) runs in the browser only/);
    await assert.rejects(gh.mfaStatus(), /runs in the browser only/);
  });

  test('a guarded page is left as soon as the session no longer grants it', async () => {
    const { app, client } = start({ route: route('/account', GUARDED) });
    client.restore(ALICE);
    await app.$gatehouse.whenReady();
    assert.deepEqual(app.$router.replaced, []);
    client.change(null, 'logout'); // logged out in another tab
    assert.deepEqual(app.$router.replaced, ['/']);

    // A page for editors, left when the user becomes one without the role.
    const editors = start({ route: route('/edit', { middleware: ['other', 'gatehouse-auth'], gatehouse: { role: 'editor', redirectTo: '/account' } }) });
    editors.client.restore(EDITOR);
    await editors.gh.whenReady();
    editors.client.change(ALICE, 'login');
    assert.deepEqual(editors.app.$router.replaced, ['/account']);

    // Pages without the middleware stay.
    const open = start({ route: route('/', {}) });
    open.client.restore(ALICE);
    await open.gh.whenReady();
    open.client.change(null, 'logout');
    assert.deepEqual(open.app.$router.replaced, []);
  });
});

describe('gatehouse-auth middleware', () => {
  test('waits for the restore, then sends a signed-out visitor to redirectTo', async () => {
    const { app, client } = start();
    const pending = middleware(route('/account', GUARDED));
    let settled = false;
    pending.then(() => {
      settled = true;
    });
    await new Promise((r) => setTimeout(r, 5));
    assert.equal(settled, false, 'decides only once the session is known');
    client.restore(null);
    assert.deepEqual(await pending, { navigateTo: '/', replace: true });
    assert.ok(app.inContext > 0, 'navigateTo ran in the app\'s context');
  });

  test('lets a signed-in user through', async () => {
    const { client } = start();
    client.restore(ALICE);
    assert.equal(await middleware(route('/account', GUARDED)), undefined);
  });

  test('a role in the page meta: the user must have it (or one of a list)', async () => {
    const { client } = start({ config: { ...CONFIG, redirectTo: '/login' } });
    client.restore(ALICE);
    const needs = (role, redirectTo) => route('/edit', { ...GUARDED, gatehouse: { role, redirectTo } });
    assert.deepEqual(await middleware(needs('editor')), { navigateTo: '/login', replace: true }, 'the module\'s redirectTo');
    assert.deepEqual(await middleware(needs('editor', '/account')), { navigateTo: '/account', replace: true }, 'the page\'s redirectTo');
    assert.equal(await middleware(needs('user')), undefined);
    assert.equal(await middleware(needs(['admin', 'user'])), undefined);
    client.change(EDITOR, 'login');
    assert.equal(await middleware(needs('editor')), undefined);
  });

  test('never redirects a page to itself', async () => {
    const { client } = start();
    client.restore(null);
    const result = await middleware(route('/', GUARDED));
    assert.match(result.abortNavigation, /also the page to redirect to/);
  });

  test('on the server it decides nothing (the browser does)', async () => {
    start({ usePlugin: serverPlugin });
    assert.equal(await serverMiddleware(route('/account', GUARDED)), undefined);
  });
});

describe('access rules', () => {
  test('grants, redirectFor, usesGuard', () => {
    assert.equal(grants(null, undefined), false);
    assert.equal(grants(ALICE, undefined), true);
    assert.equal(grants(ALICE, []), true);
    assert.equal(grants(ALICE, 'editor'), false);
    assert.equal(grants(EDITOR, ['admin', 'editor']), true);
    assert.equal(grants({ ...ALICE, roles: undefined }, 'user'), false);
    assert.equal(redirectFor(undefined, null, '/'), '/');
    assert.equal(redirectFor({ redirectTo: '/login' }, null, '/'), '/login');
    assert.equal(redirectFor({ role: 'editor' }, ALICE, '/home'), '/home');
    assert.equal(redirectFor({ role: 'editor' }, EDITOR, '/'), null);
    assert.equal(usesGuard({ middleware: 'gatehouse-auth' }), true);
    assert.equal(usesGuard({ middleware: ['x', 'gatehouse-auth'] }), true);
    assert.equal(usesGuard({ middleware: () => {} }), false);
    assert.equal(usesGuard({}), false);
    assert.equal(usesGuard(undefined), false);
  });
});

describe('module', () => {
  test('options: an absolute Gatehouse URL is required; redirectTo is a path', async () => {
    const { default: mod, resolveOptions } = await import('../src/module.mjs');
    const meta = await mod.getMeta();
    assert.equal(meta.name, '@gatehouse/nuxt');
    assert.equal(meta.configKey, 'gatehouse');
    assert.deepEqual(resolveOptions({ url: 'https://auth.example.com/' }), { url: 'https://auth.example.com', redirectTo: '/' });
    assert.deepEqual(resolveOptions({ url: 'http://localhost:8787', redirectTo: '/login' }), { url: 'http://localhost:8787', redirectTo: '/login' });
    assert.throws(() => resolveOptions({}), /set `gatehouse: \{ url \}`/);
    assert.throws(() => resolveOptions({ url: '/auth' }), /absolute http\(s\) URL/);
    assert.throws(() => resolveOptions({ url: 'https://auth.example.com', redirectTo: 'login' }), /must be a path/);
  });
});
