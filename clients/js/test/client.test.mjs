// Logic tests of the browser client in Node: a scripted fake Gatehouse behind `fetch`, a fake
// clock, Node's real BroadcastChannel between "tabs", and a small in-process lock manager.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { createClient, GatehouseError } from '../gatehouse.js';

const BASE = 'https://auth.example.com';

/** A fake Gatehouse: one cookie jar shared by every tab, like a browser profile. */
function fakeGatehouse({ ttl = 900 } = {}) {
  const state = { cookie: null, families: new Map(), calls: [], n: 0, user: { id: 'usr_1', email: 'a@example.com', name: null, roles: ['user'] } };
  const json = (status, body) => new Response(body === undefined ? null : JSON.stringify(body), { status, headers: { 'content-type': 'application/json' } });
  const issue = (fam) => {
    state.n += 1;
    const refresh = `ghr_${fam}_${state.n}`;
    state.families.get(fam).current = refresh;
    state.cookie = refresh;
    return { access_token: `at_${state.n}`, token_type: 'Bearer', expires_in: ttl, csrf_token: `csrf_${fam}`, user: state.user };
  };
  const famOf = (cookie) => [...state.families.entries()].find(([, f]) => f.current === cookie && !f.revoked)?.[0];
  state.fetch = async (url, init = {}) => {
    const u = new URL(url);
    const headers = new Headers(init.headers || {});
    const method = init.method || 'GET';
    state.calls.push({ method, path: u.pathname, headers, credentials: init.credentials, body: init.body });
    // The cookie goes out with the request, as a browser sends it; then other "tabs"
    // interleave like real network I/O.
    const withCookie = init.credentials === 'include' ? state.cookie : null;
    await new Promise((r) => setTimeout(r, state.delays?.[u.pathname] ?? 5));
    switch (`${method} ${u.pathname}`) {
      case 'POST /auth/register':
        // REGISTRATION_ENUMERATION=hide: the same 202 for a new and a taken email, no session.
        if (state.hideRegistration) return json(202, { status: 'accepted' });
      // falls through
      case 'POST /auth/login': {
        if (state.wrongPassword && u.pathname.endsWith('login')) return json(401, { error: { code: 'invalid_credentials', message: 'x' } });
        const fam = `fam${state.families.size + 1}`;
        state.families.set(fam, {});
        return json(u.pathname.endsWith('register') ? 201 : 200, issue(fam));
      }
      case 'GET /auth/session': {
        const fam = withCookie && famOf(withCookie);
        return fam ? json(200, { csrf_token: `csrf_${fam}` }) : json(401, { error: { code: 'no_auth', message: 'x' } });
      }
      case 'POST /auth/refresh': {
        const fam = withCookie && famOf(withCookie);
        if (!fam) return json(401, { error: { code: 'invalid_refresh_token', message: 'x' } });
        if (headers.get('x-csrf-token') !== `csrf_${fam}`) return json(403, { error: { code: 'csrf_validation_failed', message: 'x' } });
        return json(200, issue(fam));
      }
      case 'POST /auth/logout': {
        const fam = withCookie && famOf(withCookie);
        if (fam) {
          if (headers.get('x-csrf-token') !== `csrf_${fam}`) return json(403, { error: { code: 'csrf_validation_failed', message: 'x' } });
          state.families.get(fam).revoked = true;
        }
        state.cookie = null;
        return json(204);
      }
      case 'GET /auth/me':
      case 'GET /cms/content/items/posts': {
        const auth = headers.get('authorization');
        if ((state.rejectAll && auth) || (state.rejectToken && auth === `Bearer ${state.rejectToken}`)) return json(401, { error: { code: 'invalid_token', message: 'x' } });
        if (u.pathname === '/auth/me') return auth ? json(200, { user: state.user }) : json(401, { error: { code: 'no_auth', message: 'x' } });
        return json(200, [{ _id: '1', title: 'hello', auth: auth ?? null }]);
      }
      case 'POST /auth/token': {
        const auth = headers.get('authorization');
        if (!auth) return json(401, { error: { code: 'no_auth', message: 'x' } });
        const ask = JSON.parse(init.body);
        if ((ask.roles ?? []).some((r) => !state.user.roles.includes(r))) return json(403, { error: { code: 'insufficient_role', message: 'x' } });
        const roles = ask.roles ?? state.user.roles;
        const routes = ask.routes ?? null;
        const scope = [...roles.map((r) => `role:${r}`), ...(routes ?? []).map((r) => `route:${r}`)].join(' ');
        return json(200, { access_token: `scoped_${auth.slice(7)}`, issued_token_type: 'urn:ietf:params:oauth:token-type:jwt', token_type: 'Bearer', expires_in: ask.ttl ?? 300, expires_at: 0, scope, roles, routes, aud: ask.aud ?? null });
      }
      case 'POST /auth/webauthn/register/options':
        if (headers.get('authorization') !== `Bearer at_${state.n}`) return json(401, { error: { code: 'no_auth', message: 'x' } });
        return json(200, { publicKey: { rp: { id: 'example.com', name: 'Example' }, user: { id: 'dXNyXzE', name: 'a@example.com', displayName: 'a' }, challenge: 'Y2hhbGxlbmdl', pubKeyCredParams: [{ type: 'public-key', alg: -7 }], timeout: 300000, excludeCredentials: [{ type: 'public-key', id: 'AQID', transports: ['internal'] }], authenticatorSelection: { residentKey: 'required', requireResidentKey: true, userVerification: 'required' }, attestation: 'none' } });
      case 'POST /auth/webauthn/register/verify':
        state.registered = JSON.parse(init.body);
        if (headers.get('authorization') !== `Bearer at_${state.n}`) return json(401, { error: { code: 'no_auth', message: 'x' } });
        if (state.passkeyExists) return json(409, { error: { code: 'passkey_exists', message: 'x' } });
        return json(201, { passkey: { id: 'pk_1', name: state.registered.name ?? 'Passkey' } });
      case 'POST /auth/webauthn/login/options':
        return json(200, { publicKey: { challenge: 'bG9naW4', rpId: 'example.com', timeout: 300000, userVerification: 'required', allowCredentials: [] } });
      case 'POST /auth/webauthn/login/verify': {
        state.asserted = JSON.parse(init.body);
        if (state.unknownPasskey) return json(401, { error: { code: 'passkey_unknown', message: 'x' } });
        const fam = `fam${state.families.size + 1}`;
        state.families.set(fam, {});
        return json(200, issue(fam));
      }
      case 'GET /auth/passkeys':
        return json(200, { passkeys: [{ id: 'pk_1' }] });
      case 'DELETE /auth/passkeys/pk_1':
        return json(204);
      default:
        return json(404, { error: { code: 'not_found', message: 'x' } });
    }
  };
  return state;
}

/** A minimal Web Locks `request(name, fn)`: exclusive, FIFO, shared by all tabs given it. */
function fakeLocks() {
  const queues = new Map();
  return {
    request(name, fn) {
      const prev = queues.get(name) || Promise.resolve();
      const run = prev.then(() => fn());
      queues.set(name, run.catch(() => {}));
      return run;
    },
  };
}

function tab(gate, opts = {}) {
  return createClient({ baseUrl: BASE, fetch: gate.fetch, locks: opts.locks ?? null, now: opts.now, restore: opts.restore, BroadcastChannel: opts.channel === false ? null : BroadcastChannel, credentials: opts.credentials });
}

/** A fake `navigator.credentials`: records the options it got, answers like a browser without `toJSON`. */
function fakeAuthenticator() {
  const bytes = (...b) => new Uint8Array(b).buffer;
  const seen = {};
  return {
    seen,
    async create(opts) {
      seen.create = opts;
      return { id: 'AQID', rawId: bytes(1, 2, 3), type: 'public-key', response: { clientDataJSON: bytes(123, 125), attestationObject: bytes(0xa0), getTransports: () => ['internal'] } };
    },
    async get(opts) {
      seen.get = opts;
      return { id: 'AQID', rawId: bytes(1, 2, 3), type: 'public-key', response: { clientDataJSON: bytes(123, 125), authenticatorData: bytes(9, 9), signature: bytes(0xfb, 0xff), userHandle: bytes(0x75) } };
    },
  };
}

test('login, Bearer on fetch, me, and no refresh while the token is fresh', async (t) => {
  const gate = fakeGatehouse();
  const gh = tab(gate, { channel: false });
  t.after(() => gh.close());
  assert.equal(await gh.ready, null, 'no cookie yet: logged out');
  const user = await gh.login({ email: 'a@example.com', password: 'pw' });
  assert.equal(user.id, 'usr_1');
  assert.equal(gh.authenticated, true);
  const res = await gh.fetch('/cms/content/items/posts');
  assert.equal((await res.json())[0].auth, 'Bearer at_1');
  assert.equal((await gh.me()).email, 'a@example.com');
  assert.equal(gate.calls.filter((c) => c.path === '/auth/refresh').length, 0);
  const loginCall = gate.calls.find((c) => c.path === '/auth/login');
  assert.equal(loginCall.credentials, 'include');
  const cmsCall = gate.calls.find((c) => c.path === '/cms/content/items/posts');
  assert.equal(cmsCall.credentials, 'omit', 'proxied calls carry no cookie');
});

test('refreshes shortly before expiry, with the CSRF token, and once after a 401', async (t) => {
  const gate = fakeGatehouse({ ttl: 60 });
  let clock = 1_000_000;
  const gh = tab(gate, { channel: false, now: () => clock, restore: false });
  t.after(() => gh.close());
  await gh.login({ email: 'a', password: 'b' });
  clock += 50_000; // 10 s left of 60: inside the margin.
  await gh.fetch('/cms/content/items/posts');
  const refreshes = gate.calls.filter((c) => c.path === '/auth/refresh');
  assert.equal(refreshes.length, 1);
  assert.equal(refreshes[0].headers.get('x-csrf-token'), 'csrf_fam1');
  assert.equal(refreshes[0].headers.get('content-type'), 'application/json');

  // The server refuses the current token (e.g. revoked key): one refresh, one retry.
  gate.rejectToken = (await gh.getAccessToken());
  const res = await gh.fetch('/cms/content/items/posts');
  assert.equal(res.status, 200);
  assert.equal(gate.calls.filter((c) => c.path === '/auth/refresh').length, 2);
  assert.equal(gate.calls.filter((c) => c.path === '/cms/content/items/posts').length, 3);
});

test('a 401 that survives the refresh is returned as is: one refresh, one retry, no loop', async (t) => {
  const gate = fakeGatehouse();
  const gh = tab(gate, { channel: false, restore: false });
  t.after(() => gh.close());
  await gh.login({ email: 'a', password: 'b' });
  gate.rejectAll = true; // e.g. the route refuses this user whatever the token
  const res = await gh.fetch('/cms/content/items/posts');
  assert.equal(res.status, 401);
  assert.equal(gate.calls.filter((c) => c.path === '/auth/refresh').length, 1);
  assert.equal(gate.calls.filter((c) => c.path === '/cms/content/items/posts').length, 2);
  assert.equal(gh.authenticated, true, 'the session itself is still live');
});

test('an anonymous visitor asks for the session once, not on every call, until a login', async (t) => {
  const gate = fakeGatehouse();
  const gh = tab(gate, { channel: false });
  t.after(() => gh.close());
  assert.equal(await gh.ready, null);
  for (let i = 0; i < 3; i += 1) {
    const res = await gh.fetch('/cms/content/items/posts');
    assert.equal((await res.json())[0].auth, null, 'anonymous calls carry no token');
  }
  assert.equal(gate.calls.filter((c) => c.path === '/auth/session').length, 1);
  await gh.login({ email: 'a', password: 'b' });
  const res = await gh.fetch('/cms/content/items/posts');
  assert.equal((await res.json())[0].auth, 'Bearer at_1');
});

test('without a broadcast, an anonymous tab sees a login made elsewhere after the recheck delay', async (t) => {
  const gate = fakeGatehouse();
  let clock = 0;
  const anon = tab(gate, { channel: false, now: () => clock });
  const other = tab(gate, { channel: false, now: () => clock, restore: false });
  t.after(() => { anon.close(); other.close(); });
  assert.equal(await anon.ready, null);
  await other.login({ email: 'a', password: 'b' });
  clock += 10_000;
  assert.equal((await (await anon.fetch('/cms/content/items/posts')).json())[0].auth, null, 'still trusted: no session');
  clock += 25_000;
  assert.match((await (await anon.fetch('/cms/content/items/posts')).json())[0].auth, /^Bearer at_/);
  assert.equal(anon.authenticated, true);
});

test('a restore answered "no session" after a login finished keeps the login', async (t) => {
  const gate = fakeGatehouse();
  gate.delays = { '/auth/session': 40 }; // the restore's question is slow to come back
  const gh = tab(gate, { channel: false });
  t.after(() => gh.close());
  const seen = [];
  gh.onChange((s) => seen.push(s.reason));
  const user = await gh.login({ email: 'a', password: 'b' });
  assert.equal(user.id, 'usr_1');
  await gh.ready;
  assert.equal(gh.authenticated, true);
  assert.deepEqual(seen, ['login']);
  assert.equal((await (await gh.fetch('/cms/content/items/posts')).json())[0].auth, 'Bearer at_1');
});

test('a stale CSRF token (the cookie moved to a newer session) is replaced once', async (t) => {
  const gate = fakeGatehouse({ ttl: 60 });
  let clock = 0;
  const a = tab(gate, { channel: false, now: () => clock, restore: false });
  const b = tab(gate, { channel: false, now: () => clock, restore: false });
  t.after(() => { a.close(); b.close(); });
  await a.login({ email: 'a', password: 'b' });
  await b.login({ email: 'a', password: 'b' }); // a new session; the shared cookie is now b's
  clock += 59_000;
  const res = await a.fetch('/cms/content/items/posts');
  assert.equal(res.status, 200);
  assert.equal(a.authenticated, true);
  const refreshes = gate.calls.filter((c) => c.path === '/auth/refresh');
  assert.deepEqual(refreshes.map((c) => c.headers.get('x-csrf-token')), ['csrf_fam1', 'csrf_fam2']);
});

test('concurrent calls in one tab share one refresh', async (t) => {
  const gate = fakeGatehouse({ ttl: 60 });
  let clock = 0;
  const gh = tab(gate, { channel: false, now: () => clock, restore: false });
  t.after(() => gh.close());
  await gh.login({ email: 'a', password: 'b' });
  clock += 59_000;
  await Promise.all([gh.fetch('/cms/content/items/posts'), gh.fetch('/cms/content/items/posts'), gh.me()]);
  assert.equal(gate.calls.filter((c) => c.path === '/auth/refresh').length, 1);
});

test('two tabs: one refresh between them (lock + broadcast), both stay logged in', async (t) => {
  const gate = fakeGatehouse({ ttl: 60 });
  let clock = 0;
  const locks = fakeLocks();
  const a = tab(gate, { locks, now: () => clock, restore: false });
  const b = tab(gate, { locks, now: () => clock, restore: false });
  t.after(() => { a.close(); b.close(); });
  await a.login({ email: 'a', password: 'b' });
  await new Promise((r) => setTimeout(r, 20)); // b adopts a's login
  assert.equal(b.authenticated, true);
  clock += 59_000;
  const [ra, rb] = await Promise.all([a.fetch('/cms/content/items/posts'), b.fetch('/cms/content/items/posts')]);
  assert.equal(ra.status, 200);
  assert.equal(rb.status, 200);
  assert.equal(gate.calls.filter((c) => c.path === '/auth/refresh').length, 1);
  assert.equal(await a.getAccessToken(), await b.getAccessToken());
});

test('restores the session from the cookie: CSRF token from /auth/session, then a refresh', async (t) => {
  const gate = fakeGatehouse();
  const first = tab(gate, { channel: false, restore: false });
  await first.login({ email: 'a', password: 'b' });
  first.close();
  const reloaded = tab(gate, { channel: false });
  t.after(() => reloaded.close());
  const seen = [];
  reloaded.onChange((s) => seen.push(s.reason));
  const user = await reloaded.ready;
  assert.equal(user.id, 'usr_1');
  assert.deepEqual(seen, ['restore']);
  const paths = gate.calls.map((c) => `${c.method} ${c.path}`);
  assert.deepEqual(paths.slice(-2), ['GET /auth/session', 'POST /auth/refresh']);
});

test('logout ends the session in every tab and the cookie stops working', async (t) => {
  const gate = fakeGatehouse();
  const a = tab(gate, { restore: false });
  const b = tab(gate, { restore: false });
  t.after(() => { a.close(); b.close(); });
  await a.login({ email: 'a', password: 'b' });
  await new Promise((r) => setTimeout(r, 20));
  const seen = [];
  b.onChange((s) => seen.push(s));
  await a.logout();
  await new Promise((r) => setTimeout(r, 20));
  assert.equal(a.authenticated, false);
  assert.equal(b.authenticated, false);
  assert.equal(seen.at(-1).user, null);
  assert.equal(gate.calls.find((c) => c.path === '/auth/logout').headers.get('x-csrf-token'), 'csrf_fam1');
  assert.ok(gate.families.get('fam1').revoked);
  const fresh = tab(gate, { channel: false });
  t.after(() => fresh.close());
  assert.equal(await fresh.ready, null);
});

test('logout with a CSRF token that no longer fits the cookie asks for the current one, once, and ends the session', async (t) => {
  const gate = fakeGatehouse();
  const a = tab(gate, { channel: false, restore: false });
  const b = tab(gate, { channel: false, restore: false });
  t.after(() => { a.close(); b.close(); });
  await a.login({ email: 'a', password: 'b' });
  await b.login({ email: 'a', password: 'b' }); // the shared cookie is now fam2's
  await a.logout();
  const logouts = gate.calls.filter((c) => c.path === '/auth/logout');
  assert.deepEqual(logouts.map((c) => c.headers.get('x-csrf-token')), ['csrf_fam1', 'csrf_fam2']);
  assert.ok(gate.families.get('fam2').revoked, 'the cookie\'s session ended');
  assert.equal(a.authenticated, false);
  assert.equal(gate.cookie, null);
});

test('register: logged in at once (201), or after a 202 of a registration that hides accounts by a login', async (t) => {
  const open = fakeGatehouse();
  const a = tab(open, { channel: false });
  t.after(() => a.close());
  assert.equal((await a.register({ email: 'a@example.com', password: 'pw' })).id, 'usr_1');
  assert.deepEqual(open.calls.filter((c) => c.method === 'POST').map((c) => c.path), ['/auth/register']);

  const hiding = fakeGatehouse();
  hiding.hideRegistration = true;
  const b = tab(hiding, { channel: false });
  t.after(() => b.close());
  assert.equal((await b.register({ email: 'a@example.com', password: 'pw' })).id, 'usr_1');
  assert.equal(b.authenticated, true);
  const posts = hiding.calls.filter((c) => c.method === 'POST');
  assert.deepEqual(posts.map((c) => c.path), ['/auth/register', '/auth/login']);
  assert.equal(posts[1].credentials, 'include');

  // A taken email: the login that follows fails like a wrong password, nobody is logged in.
  const taken = fakeGatehouse();
  taken.hideRegistration = true;
  taken.wrongPassword = true;
  const c = tab(taken, { channel: false });
  t.after(() => c.close());
  await assert.rejects(c.register({ email: 'a@example.com', password: 'pw' }), (e) => e instanceof GatehouseError && e.code === 'invalid_credentials');
  assert.equal(c.authenticated, false);
});

test('passkeys: register when signed in, sign in without an email, list and delete', async (t) => {
  const gate = fakeGatehouse();
  const authn = fakeAuthenticator();
  const gh = tab(gate, { channel: false, credentials: authn });
  t.after(() => gh.close());
  await gh.ready;
  await assert.rejects(gh.registerPasskey(), (err) => err instanceof GatehouseError && err.code === 'no_auth');
  assert.equal(authn.seen.create, undefined, 'no ceremony while signed out');
  await gh.login({ email: 'a@example.com', password: 'pw' });
  const passkey = await gh.registerPasskey({ name: 'Laptop' });
  assert.deepEqual(passkey, { id: 'pk_1', name: 'Laptop' });
  // The JSON options became the binary form the browser API takes.
  const pk = authn.seen.create.publicKey;
  assert.deepEqual(new Uint8Array(pk.challenge), new TextEncoder().encode('challenge'));
  assert.deepEqual(new Uint8Array(pk.user.id), new TextEncoder().encode('usr_1'));
  assert.deepEqual(new Uint8Array(pk.excludeCredentials[0].id), new Uint8Array([1, 2, 3]));
  // ... and the credential came back as RegistrationResponseJSON.
  assert.deepEqual(gate.registered, { id: 'AQID', rawId: 'AQID', type: 'public-key', response: { clientDataJSON: 'e30', attestationObject: 'oA', transports: ['internal'] }, clientExtensionResults: {}, name: 'Laptop' });
  gate.passkeyExists = true;
  await assert.rejects(gh.registerPasskey(), (err) => err.code === 'passkey_exists' && err.status === 409);

  await gh.logout();
  assert.equal(gh.authenticated, false);
  const changes = [];
  gh.onChange((s) => changes.push(s.reason));
  const user = await gh.loginWithPasskey();
  assert.equal(user.id, 'usr_1');
  assert.equal(gh.authenticated, true);
  assert.deepEqual(changes, ['login']);
  assert.deepEqual(new Uint8Array(authn.seen.get.publicKey.challenge), new TextEncoder().encode('login'));
  assert.deepEqual(authn.seen.get.publicKey.allowCredentials, []);
  assert.deepEqual(gate.asserted.response, { clientDataJSON: 'e30', authenticatorData: 'CQk', signature: '-_8', userHandle: 'dQ' });
  const verify = gate.calls.find((c) => c.path === '/auth/webauthn/login/verify');
  assert.equal(verify.credentials, 'include', 'the refresh cookie comes back on the sign-in');
  assert.deepEqual(await gh.listPasskeys(), [{ id: 'pk_1' }]);
  await gh.deletePasskey('pk_1');
  await assert.rejects(gh.deletePasskey('pk_2'), (err) => err.code === 'not_found');

  await gh.logout();
  gate.unknownPasskey = true;
  await assert.rejects(gh.loginWithPasskey(), (err) => err.code === 'passkey_unknown' && err.status === 401);
  assert.equal(gh.authenticated, false);
});

test('errors carry the stable code; baseUrl is checked', async (t) => {
  const gate = fakeGatehouse();
  gate.fetch = async () => new Response(JSON.stringify({ error: { code: 'invalid_credentials', message: 'wrong' } }), { status: 401 });
  const gh = tab(gate, { channel: false, restore: false });
  t.after(() => gh.close());
  await assert.rejects(gh.login({ email: 'a', password: 'b' }), (err) => err instanceof GatehouseError && err.code === 'invalid_credentials' && err.status === 401);
  assert.throws(() => createClient({ baseUrl: 'auth.example.com' }), TypeError);
});

test('the module never touches web storage or document.cookie', async () => {
  const { readFile } = await import('node:fs/promises');
  const source = await readFile(new URL('../gatehouse.js', import.meta.url), 'utf8');
  const code = source.replace(/\/\/.*$/gm, '').replace(/\/\*[\s\S]*?\*\//g, '');
  for (const word of ['localStorage', 'sessionStorage', 'document.cookie', 'indexedDB']) {
    assert.ok(!code.includes(word), word);
  }
});

test('mintToken: POST /auth/token with the session\'s Bearer and only the members given', async (t) => {
  const gate = fakeGatehouse();
  const gh = tab(gate, { channel: false, restore: false });
  t.after(() => gh.close());
  await assert.rejects(gh.mintToken({ ttl: 60 }), (err) => err instanceof GatehouseError && err.status === 401 && err.code === 'no_auth');
  await gh.login({ email: 'a@example.com', password: 'pw' });
  const minted = await gh.mintToken({ roles: ['user'], routes: ['cms'], ttl: 60 });
  assert.equal(minted.access_token, 'scoped_at_1');
  assert.equal(minted.expires_in, 60);
  assert.equal(minted.scope, 'role:user route:cms');
  const call = gate.calls.filter((c) => c.path === '/auth/token').at(-1);
  assert.equal(call.method, 'POST');
  assert.equal(call.headers.get('authorization'), 'Bearer at_1');
  assert.equal(call.headers.get('content-type'), 'application/json');
  assert.equal(call.credentials, 'omit', 'no cookie goes with it');
  assert.deepEqual(JSON.parse(call.body), { roles: ['user'], routes: ['cms'], ttl: 60 });
  await gh.mintToken();
  assert.deepEqual(JSON.parse(gate.calls.filter((c) => c.path === '/auth/token').at(-1).body), {}, 'defaults: nothing sent');
  await assert.rejects(gh.mintToken({ roles: ['admin'] }), (err) => err instanceof GatehouseError && err.status === 403 && err.code === 'insufficient_role');
});

/** The fake Gatehouse with TOTP: login needs `otp` once enrolled; the /auth/mfa endpoints. */
function fakeWithTotp() {
  const gate = fakeGatehouse();
  const inner = gate.fetch;
  const json = (status, body) => new Response(body === undefined ? null : JSON.stringify(body), { status, headers: { 'content-type': 'application/json' } });
  const error = (status, code) => json(status, { error: { code, message: code } });
  gate.totp = { enrolled: false, pending: null, used: new Set() };
  gate.fetch = async (url, init = {}) => {
    const u = new URL(url);
    const method = init.method || 'GET';
    const body = init.body ? JSON.parse(init.body) : {};
    const headers = new Headers(init.headers || {});
    const key = `${method} ${u.pathname}`;
    if (key === 'POST /auth/webauthn/login/options') {
      // The challenge names its purpose; a re-authentication's needs the access token.
      gate.optionsAsked = { purpose: body.purpose, authorization: headers.get('authorization') };
      if (body.purpose === 'reauthenticate' && !headers.get('authorization')) return error(401, 'no_auth');
      const allow = body.purpose === 'reauthenticate' ? [{ type: 'public-key', id: 'AQID' }] : [];
      return json(200, { publicKey: { challenge: Buffer.from(body.purpose).toString('base64url'), rpId: 'example.com', userVerification: 'required', allowCredentials: allow } });
    }
    /** The purpose of the challenge an assertion answers (the fake authenticator echoes it). */
    const purposeOf = (assertion) => assertion && gate.challengeSigned;
    if (key === 'POST /auth/login' && gate.totp.enrolled) {
      if (body.password !== 'pw') return error(401, 'invalid_credentials');
      if (body.otp && body.webauthn) return error(400, 'bad_request');
      if (body.webauthn) {
        if (purposeOf(body.webauthn) !== 'second_factor') return error(400, 'webauthn_challenge_invalid');
        if (body.webauthn.id !== gate.ownCredential) return error(401, 'passkey_user_mismatch');
        return inner(url, init);
      }
      if (!body.otp) return error(401, 'mfa_required');
      if (body.otp !== '123456' || gate.totp.used.has(body.otp)) return error(401, 'invalid_otp');
      gate.totp.used.add(body.otp);
      return inner(url, init);
    }
    if (!u.pathname.startsWith('/auth/mfa')) return inner(url, init);
    gate.calls.push({ method, path: u.pathname, headers, credentials: init.credentials, body });
    const auth = headers.get('authorization');
    if (!auth) return error(401, 'no_auth');
    if (gate.rejectToken && auth === `Bearer ${gate.rejectToken}`) return error(401, 'invalid_token');
    switch (key) {
      case 'GET /auth/mfa':
        return json(200, { totp: { available: true, enrolled: gate.totp.enrolled, enrolled_at: gate.totp.enrolled ? 1 : null, pending: !!gate.totp.pending, recovery_codes_left: gate.totp.enrolled ? 10 : 0 } });
      case 'POST /auth/mfa/totp/start':
        if (body.password !== 'pw') return error(401, 'invalid_credentials');
        gate.totp.pending = 'JBSWY3DPEHPK3PXP';
        return json(200, { secret: gate.totp.pending, otpauth_uri: `otpauth://totp/X:a?secret=${gate.totp.pending}`, qr_svg: '<svg xmlns="http://www.w3.org/2000/svg"></svg>', expires_in: 900 });
      case 'POST /auth/mfa/totp/confirm':
        if (!gate.totp.pending) return error(409, 'mfa_not_enrolled');
        if (body.otp !== '654321') return error(401, 'invalid_otp');
        gate.totp = { enrolled: true, pending: null, used: new Set() };
        return json(200, { recovery_codes: Array.from({ length: 10 }, (_, i) => `aaaa${i}-bbbbb`) });
      case 'POST /auth/mfa/recovery-codes':
        return json(200, { recovery_codes: Array.from({ length: 10 }, (_, i) => `cccc${i}-ddddd`) });
      case 'DELETE /auth/mfa/totp':
        if (body.webauthn) {
          if (purposeOf(body.webauthn) !== 'reauthenticate') return error(400, 'webauthn_challenge_invalid');
          if (body.webauthn.id !== gate.ownCredential) return error(401, 'passkey_user_mismatch');
          gate.totp.enrolled = false;
          return json(204);
        }
        if (body.password !== 'pw') return error(401, 'invalid_credentials');
        gate.totp.enrolled = false;
        return json(204);
      default:
        return error(404, 'not_found');
    }
  };
  return gate;
}

test('TOTP: enrollTotp and confirmTotp; login surfaces mfa_required, then logs in with the code', async (t) => {
  const gate = fakeWithTotp();
  const gh = tab(gate, { channel: false });
  t.after(() => gh.close());
  await gh.ready;
  await gh.login({ email: 'a@example.com', password: 'pw' });
  assert.deepEqual(await gh.mfaStatus(), { available: true, enrolled: false, enrolledAt: null, pending: false, recoveryCodesLeft: 0 });
  await assert.rejects(gh.enrollTotp({ password: 'nope' }), (e) => e instanceof GatehouseError && e.code === 'invalid_credentials');
  const started = await gh.enrollTotp({ password: 'pw' });
  assert.deepEqual(Object.keys(started).sort(), ['expiresIn', 'otpauthUri', 'qrSvg', 'secret']);
  assert.equal(started.secret, 'JBSWY3DPEHPK3PXP');
  assert.match(started.qrSvg, /^<svg/);
  // A wrong code is refused once, without a refresh or a retry that would send it again.
  const before = gate.calls.length;
  await assert.rejects(gh.confirmTotp({ otp: '000000' }), (e) => e.code === 'invalid_otp' && e.status === 401);
  assert.deepEqual(gate.calls.slice(before).map((c) => c.path), ['/auth/mfa/totp/confirm']);
  const { recoveryCodes } = await gh.confirmTotp({ otp: '654321' });
  assert.equal(recoveryCodes.length, 10);
  const confirm = gate.calls.filter((c) => c.path === '/auth/mfa/totp/confirm').at(-1);
  assert.match(confirm.headers.get('authorization'), /^Bearer at_/);
  assert.equal(confirm.headers.get('content-type'), 'application/json');
  assert.equal(confirm.credentials, 'omit');
  assert.equal((await gh.regenerateRecoveryCodes({ password: 'pw' })).recoveryCodes.length, 10);

  await gh.logout();
  await assert.rejects(gh.login({ email: 'a@example.com', password: 'wrong' }), (e) => e.code === 'invalid_credentials');
  await assert.rejects(gh.login({ email: 'a@example.com', password: 'pw' }), (e) => e instanceof GatehouseError && e.code === 'mfa_required' && e.status === 401);
  assert.equal(gh.authenticated, false);
  await assert.rejects(gh.login({ email: 'a@example.com', password: 'pw', otp: '999999' }), (e) => e.code === 'invalid_otp');
  const user = await gh.login({ email: 'a@example.com', password: 'pw', otp: '123456' });
  assert.equal(user.id, 'usr_1');
  assert.equal(gh.authenticated, true);
  await gh.removeTotp({ password: 'pw' });
  assert.equal((await gh.mfaStatus()).enrolled, false);
});

test('a passkey as the second factor after mfa_required, and to re-authenticate TOTP removal', async (t) => {
  const gate = fakeWithTotp();
  gate.ownCredential = 'AQID';
  const authn = fakeAuthenticator();
  const get = authn.get;
  // The challenge the browser was asked to sign, as the server would find it in clientDataJSON.
  authn.get = async (opts) => {
    gate.challengeSigned = new TextDecoder().decode(opts.publicKey.challenge);
    return get(opts);
  };
  const gh = tab(gate, { channel: false, credentials: authn });
  t.after(() => gh.close());
  await gh.ready;
  gate.totp.enrolled = true;
  await assert.rejects(gh.login({ email: 'a@example.com', password: 'pw' }), (e) => e.code === 'mfa_required');
  assert.equal(authn.seen.get, undefined, 'no ceremony before it is asked for');
  await assert.rejects(gh.login({ email: 'a@example.com', password: 'pw', otp: '123456', passkey: true }), TypeError);
  const user = await gh.login({ email: 'a@example.com', password: 'pw', passkey: true });
  assert.equal(user.id, 'usr_1');
  assert.equal(gh.authenticated, true);
  assert.deepEqual(gate.optionsAsked, { purpose: 'second_factor', authorization: null });
  const login = JSON.parse(gate.calls.filter((c) => c.path === '/auth/login').at(-1).body);
  assert.deepEqual(Object.keys(login).sort(), ['email', 'password', 'webauthn']);
  assert.deepEqual(login.webauthn.response, { clientDataJSON: 'e30', authenticatorData: 'CQk', signature: '-_8', userHandle: 'dQ' });
  // Another user's passkey: the server's refusal comes through, no session.
  await gh.logout();
  gate.ownCredential = 'BBBB';
  await assert.rejects(gh.login({ email: 'a@example.com', password: 'pw', passkey: true }), (e) => e.code === 'passkey_user_mismatch' && e.status === 401);
  assert.equal(gh.authenticated, false);

  // Re-authentication: a challenge bound to the signed-in user, then {webauthn} in place of {password}.
  gate.ownCredential = 'AQID';
  await gh.login({ email: 'a@example.com', password: 'pw', otp: '123456' });
  await assert.rejects(gh.removeTotp({ password: 'pw', passkey: true }), TypeError);
  await gh.removeTotp({ passkey: true });
  assert.equal(gate.optionsAsked.purpose, 'reauthenticate');
  assert.match(gate.optionsAsked.authorization, /^Bearer at_/);
  assert.deepEqual(new Uint8Array(authn.seen.get.publicKey.allowCredentials[0].id), new Uint8Array([1, 2, 3]));
  const removal = gate.calls.filter((c) => c.path === '/auth/mfa/totp').at(-1);
  assert.deepEqual(Object.keys(removal.body), ['webauthn']);
  assert.equal(gate.totp.enrolled, false);
  gate.totp.enrolled = true;
  gate.ownCredential = 'BBBB';
  await assert.rejects(gh.removeTotp({ passkey: true }), (e) => e.code === 'passkey_user_mismatch');
  assert.equal(gate.totp.enrolled, true);
});

test('TOTP calls refresh once when the access token was refused, then retry', async (t) => {
  const gate = fakeWithTotp();
  const gh = tab(gate, { channel: false });
  t.after(() => gh.close());
  await gh.ready;
  await gh.login({ email: 'a@example.com', password: 'pw' });
  gate.rejectToken = await gh.getAccessToken();
  const status = await gh.mfaStatus();
  assert.equal(status.available, true);
  const paths = gate.calls.map((c) => c.path);
  assert.deepEqual(paths.slice(-3), ['/auth/mfa', '/auth/refresh', '/auth/mfa']);
  const logged = tab(fakeWithTotp(), { channel: false, restore: false });
  t.after(() => logged.close());
  await assert.rejects(logged.enrollTotp({ password: 'pw' }), (e) => e.code === 'no_auth');
});
