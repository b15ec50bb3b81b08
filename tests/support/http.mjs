// Small HTTP, cookie and assertion helpers for the end-to-end tests.

import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';

export const COOKIE_NAME = 'gatehouse_refresh';
/** The page origin tests act as; `openVars` lists it in ALLOWED_ORIGINS. */
export const SITE_ORIGIN = 'https://site.example';

/** Parses one Set-Cookie header value: { name, value, attrs } with lower-cased attribute names. */
export function parseSetCookie(header) {
  const [pair, ...rest] = header.split(';');
  const eq = pair.indexOf('=');
  const attrs = {};
  for (const part of rest) {
    const p = part.trim();
    if (!p) continue;
    const i = p.indexOf('=');
    if (i < 0) attrs[p.toLowerCase()] = true;
    else attrs[p.slice(0, i).trim().toLowerCase()] = p.slice(i + 1).trim();
  }
  return { name: pair.slice(0, eq).trim(), value: pair.slice(eq + 1).trim(), attrs };
}

/** Shortens long bodies for assertion messages. */
function preview(text, n = 600) {
  return text.length > n ? `${text.slice(0, n)}… (${text.length} chars)` : text;
}

/**
 * One request. `json` sends a JSON body with Content-Type application/json; `body` sends raw
 * data (with whatever `headers` say); `cookie` is the refresh token to send as a cookie (a POST
 * with a cookie gets Content-Type application/json unless `contentType: null`);
 * `bearer` an access token; with a cookie, `origin` (default SITE_ORIGIN, null for none) and
 * `csrf` (the X-CSRF-Token). Returns { status, headers, text, body, setCookies, cookie(), describe }.
 */
export async function request(base, method, path, opts = {}) {
  const headers = new Headers(opts.headers ?? {});
  let body = opts.body;
  if (opts.json !== undefined) {
    body = JSON.stringify(opts.json);
    if (!headers.has('content-type')) headers.set('content-type', 'application/json');
  }
  if (opts.cookie !== undefined) {
    headers.set('cookie', `${COOKIE_NAME}=${opts.cookie}`);
    // As a page of the site sends it: its Origin (unless `origin: null`), its CSRF token.
    if (opts.origin !== null && !headers.has('origin')) headers.set('origin', opts.origin ?? SITE_ORIGIN);
    // A cookie-driven state change must be sent as JSON (as the browser client does); tests of
    // the refusal pass `contentType: null`.
    if (method === 'POST' && !headers.has('content-type') && opts.contentType !== null) {
      headers.set('content-type', 'application/json');
    }
  }
  if (opts.csrf !== undefined) headers.set('x-csrf-token', opts.csrf);
  if (opts.bearer !== undefined) headers.set('authorization', `Bearer ${opts.bearer}`);
  const init = { method, headers, body, redirect: 'manual' };
  if (body && typeof body.getReader === 'function') init.duplex = 'half';
  const res = await fetch(base + path, init);
  const text = await res.text();
  let parsed;
  try {
    parsed = text ? JSON.parse(text) : undefined;
  } catch {
    parsed = undefined;
  }
  const setCookies = res.headers.getSetCookie();
  const out = {
    status: res.status,
    headers: res.headers,
    text,
    body: parsed,
    setCookies,
    /** The parsed gatehouse_refresh Set-Cookie, or undefined. */
    cookie(name = COOKIE_NAME) {
      const all = setCookies.map(parseSetCookie).filter((c) => c.name === name);
      assert.ok(all.length <= 1, `more than one ${name} Set-Cookie: ${setCookies.join(' | ')}`);
      return all[0];
    },
    describe() {
      const h = [...res.headers].map(([k, v]) => `${k}: ${v}`).join('\n  ');
      return `${method} ${path} → ${res.status}\n  ${h}\n  ${preview(text)}`;
    },
  };
  return out;
}

/** A client bound to a base URL. */
export function client(base) {
  return {
    base,
    request: (method, path, opts) => request(base, method, path, opts),
    get: (path, opts) => request(base, 'GET', path, opts),
    post: (path, json, opts = {}) => request(base, 'POST', path, { ...opts, json }),
    put: (path, json, opts = {}) => request(base, 'PUT', path, { ...opts, json }),
    del: (path, opts) => request(base, 'DELETE', path, opts),
  };
}

/** Asserts a status with the whole response in the failure message. */
export function expectStatus(res, status) {
  assert.equal(res.status, status, `expected ${status}, got:\n${res.describe()}`);
}

/** Asserts a JSON body (Content-Type application/json). */
export function expectJson(res) {
  const ct = res.headers.get('content-type') ?? '';
  assert.match(ct, /^application\/json\b/i, `not JSON:\n${res.describe()}`);
  assert.notEqual(res.body, undefined, `body does not parse as JSON:\n${res.describe()}`);
}

/**
 * Asserts an error answer: exact status, `{ error: { code, message } }` with exactly these
 * members, JSON content type, and `WWW-Authenticate: Bearer` on 401s from bearer-protected
 * endpoints (`bearer: true`). Every code a test asserts must go through this function with a
 * literal code (tests/e2e/zz-error-codes.test.mjs checks that each documented code appears).
 */
export function expectError(res, status, code, { bearer = false } = {}) {
  assert.equal(res.status, status, `expected ${status} ${code}, got:\n${res.describe()}`);
  expectJson(res);
  assert.deepEqual(Object.keys(res.body), ['error'], `error shape:\n${res.describe()}`);
  const err = res.body.error;
  assert.equal(typeof err, 'object', res.describe());
  assert.deepEqual(Object.keys(err).sort(), ['code', 'message'], `error shape:\n${res.describe()}`);
  assert.equal(err.code, code, `expected code ${code}, got:\n${res.describe()}`);
  assert.equal(typeof err.message, 'string', res.describe());
  assert.ok(err.message.length > 0, `empty message:\n${res.describe()}`);
  if (bearer) {
    assert.match(
      res.headers.get('www-authenticate') ?? '',
      /^Bearer\b/,
      `401 without WWW-Authenticate: Bearer:\n${res.describe()}`,
    );
  }
  return err;
}

export function sha256hex(text) {
  return createHash('sha256').update(text, 'utf8').digest('hex');
}

let counter = 0;
/** A unique e-mail address for this test process. */
export function uniqueEmail(prefix = 'user') {
  counter += 1;
  return `${prefix}.${process.pid}.${counter}.${randomBytes(3).toString('hex')}@example.com`;
}

export const PASSWORD = 'correct horse battery staple';

/** Default vars for a worker with open registration and a cheap password hash. */
export function openVars(key, extra = {}) {
  // Every test request comes from 127.0.0.1: per-IP limits high enough for a whole test file
  // (tests/e2e/rate-limits.test.mjs sets its own).
  return {
    REGISTRATION: 'open',
    JWT_SIGNING_KEY: key.d,
    PBKDF2_ITERATIONS: '10000',
    ALLOWED_ORIGINS: SITE_ORIGIN,
    RATE_LIMIT_REGISTER_PER_IP: '100000',
    RATE_LIMIT_LOGIN_PER_IP: '100000',
    ...extra,
  };
}

/**
 * Registers a fresh user (body mode by default) and returns { email, password, res, body,
 * access, refresh }. Asserts 201.
 */
export async function registerUser(c, { email = uniqueEmail(), password = PASSWORD, name, inBody = true } = {}) {
  const json = { email, password };
  if (name !== undefined) json.name = name;
  if (inBody) json.refresh_token_in_body = true;
  const res = await c.post('/auth/register', json);
  expectStatus(res, 201);
  return {
    email,
    password,
    res,
    body: res.body,
    user: res.body.user,
    access: res.body.access_token,
    csrf: res.body.csrf_token,
    refresh: inBody ? res.body.refresh_token : res.cookie()?.value,
  };
}

/** Logs in (body mode by default); asserts 200. */
export async function loginUser(c, email, password = PASSWORD, { inBody = true } = {}) {
  const json = { email, password };
  if (inBody) json.refresh_token_in_body = true;
  const res = await c.post('/auth/login', json);
  expectStatus(res, 200);
  return {
    res,
    body: res.body,
    access: res.body.access_token,
    csrf: res.body.csrf_token,
    refresh: inBody ? res.body.refresh_token : res.cookie()?.value,
  };
}

/** Refreshes with a token in the body; returns the raw response. */
export function refreshBody(c, token) {
  return c.post('/auth/refresh', { refresh_token: token });
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * Waits for the next fixed rate-limit window of `windowS` seconds when less than `marginS`
 * seconds are left of the current one (the worker's windows start at multiples of their length
 * since the epoch, on this machine's clock): a burst that must be counted in one window then
 * is, instead of being split by a window's end.
 */
export async function awayFromWindowEdge(windowS, marginS = 15) {
  const ms = windowS * 1000;
  const left = ms - (Date.now() % ms);
  if (left < marginS * 1000) await sleep(left + 50);
}
