// Gatehouse browser client: a dependency-free ES module.
//
//   import { createClient } from 'https://auth.example.com/client/gatehouse.js';
//   const gh = createClient({ baseUrl: 'https://auth.example.com' });
//   await gh.ready;                       // session restored from the refresh cookie, or none
//   gh.onChange(({ user }) => render(user));
//   const res = await gh.fetch('/cms/content/items/posts');
//
// Tokens live in memory only. The refresh token is an HttpOnly cookie the page never sees; the
// access token and the session's CSRF token are kept in this module's closure and shared with
// the other tabs of the same origin over a BroadcastChannel — never written to localStorage,
// sessionStorage or a cookie. One refresh at a time: within a tab through a shared promise,
// across tabs through a Web Lock (when available), after which the other tabs adopt the result.

/** How long a tab without a session trusts that answer before asking Gatehouse again. */
const NO_SESSION_RECHECK_MS = 30_000;

/** How long a tab that refreshed keeps the cross-tab lock for its broadcast to arrive. */
const BROADCAST_GRACE_MS = 50;

/** Error thrown for a Gatehouse error answer; `code` is the stable error code. */
export class GatehouseError extends Error {
  constructor(status, code, message) {
    super(message || code);
    this.name = 'GatehouseError';
    this.status = status;
    this.code = code;
  }
}

async function errorOf(res) {
  let code = 'http_' + res.status;
  let message = res.statusText || code;
  try {
    const body = await res.json();
    if (body && body.error && typeof body.error.code === 'string') {
      code = body.error.code;
      message = body.error.message || code;
    }
  } catch {
    // Not JSON (or not readable): keep the status-based code.
  }
  return new GatehouseError(res.status, code, message);
}

// ---- Passkeys (WebAuthn): the JSON forms of WebAuthn Level 3, converted where the browser
// lacks PublicKeyCredential.parse*OptionsFromJSON / toJSON.

function bytesOf(b64url) {
  const b64 = b64url.replace(/-/g, '+').replace(/_/g, '/');
  const bin = atob(b64 + '='.repeat((4 - (b64.length % 4)) % 4));
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i += 1) out[i] = bin.charCodeAt(i);
  return out.buffer;
}

function b64urlOf(buffer) {
  const bytes = new Uint8Array(buffer);
  let bin = '';
  for (let i = 0; i < bytes.length; i += 1) bin += String.fromCharCode(bytes[i]);
  return btoa(bin).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

const PKC = () => globalThis.PublicKeyCredential;

function creationOptions(json) {
  if (PKC() && typeof PKC().parseCreationOptionsFromJSON === 'function') return PKC().parseCreationOptionsFromJSON(json);
  return {
    ...json,
    challenge: bytesOf(json.challenge),
    user: { ...json.user, id: bytesOf(json.user.id) },
    excludeCredentials: (json.excludeCredentials || []).map((c) => ({ ...c, id: bytesOf(c.id) })),
  };
}

function requestOptions(json) {
  if (PKC() && typeof PKC().parseRequestOptionsFromJSON === 'function') return PKC().parseRequestOptionsFromJSON(json);
  return {
    ...json,
    challenge: bytesOf(json.challenge),
    allowCredentials: (json.allowCredentials || []).map((c) => ({ ...c, id: bytesOf(c.id) })),
  };
}

function credentialJSON(cred) {
  if (typeof cred.toJSON === 'function') return cred.toJSON();
  const r = cred.response;
  const response = { clientDataJSON: b64urlOf(r.clientDataJSON) };
  if (r.attestationObject) {
    response.attestationObject = b64urlOf(r.attestationObject);
    response.transports = typeof r.getTransports === 'function' ? r.getTransports() : [];
  } else {
    response.authenticatorData = b64urlOf(r.authenticatorData);
    response.signature = b64urlOf(r.signature);
    response.userHandle = r.userHandle ? b64urlOf(r.userHandle) : null;
  }
  return { id: cred.id, rawId: b64urlOf(cred.rawId), type: cred.type, response, clientExtensionResults: {} };
}

/**
 * Creates a client for the Gatehouse at `baseUrl`.
 * @param {import('./gatehouse').ClientOptions} options
 * @returns {import('./gatehouse').GatehouseClient}
 */
export function createClient(options = {}) {
  const baseUrl = String(options.baseUrl || '').replace(/\/+$/, '');
  if (!/^https?:\/\//.test(baseUrl)) throw new TypeError('createClient: baseUrl must be an absolute http(s) URL');
  const doFetch = options.fetch || ((...a) => globalThis.fetch(...a));
  const now = options.now || (() => Date.now());
  const locks = options.locks !== undefined ? options.locks : globalThis.navigator && globalThis.navigator.locks;
  const Channel = options.BroadcastChannel !== undefined ? options.BroadcastChannel : globalThis.BroadcastChannel;
  const lockName = 'gatehouse-refresh ' + baseUrl;
  const webauthn = () => options.credentials || (globalThis.navigator && globalThis.navigator.credentials);

  // The whole session state, in memory.
  let session = null; // { accessToken, expiresAt (ms), csrfToken, user }
  let refreshing = null; // the in-flight refresh of this tab
  // Until when Gatehouse's word that this browser holds no live refresh cookie is trusted, so
  // an anonymous visitor's calls do not each ask again (a login here or in another tab, or
  // NO_SESSION_RECHECK_MS, ends it: a login in a tab this one hears nothing from is seen then).
  let noSessionUntil = 0;
  const listeners = new Set();

  const channel = Channel ? new Channel('gatehouse ' + baseUrl) : null;
  const tabId = Math.random().toString(36).slice(2);

  function emit(reason) {
    const state = { user: session ? session.user : null, authenticated: !!session, reason };
    for (const fn of listeners) {
      try {
        fn(state);
      } catch (err) {
        setTimeout(() => {
          throw err;
        });
      }
    }
  }

  function set(next, reason, broadcast = true) {
    const before = session;
    session = next;
    if (broadcast && channel) channel.postMessage({ from: tabId, reason, session: next });
    const changed = !before !== !next || (before && next && before.user.id !== next.user.id);
    if (changed || reason === 'logout') emit(reason);
  }

  if (channel) {
    channel.onmessage = (event) => {
      const msg = event.data || {};
      if (msg.from === tabId) return;
      if (msg.reason === 'logout' || !msg.session) {
        noSessionUntil = now() + NO_SESSION_RECHECK_MS;
        if (session) set(null, 'logout', false);
        return;
      }
      // Adopt a newer session from another tab (a refresh it did, a login).
      if (!session || msg.session.expiresAt > session.expiresAt || msg.session.user.id !== session.user.id) {
        noSessionUntil = 0;
        set(msg.session, msg.reason, false);
      }
    };
  }

  function fromAnswer(body) {
    return {
      accessToken: body.access_token,
      expiresAt: now() + body.expires_in * 1000,
      csrfToken: body.csrf_token,
      user: body.user,
    };
  }

  async function post(path, body, extraHeaders = {}) {
    return doFetch(baseUrl + path, {
      method: 'POST',
      credentials: 'include',
      headers: { 'content-type': 'application/json', ...extraHeaders },
      body: JSON.stringify(body || {}),
    });
  }

  /** Seconds before expiry at which a token is refreshed before use. */
  function margin(s) {
    const lifetime = s.expiresAt - (s.issuedAt || s.expiresAt - 60_000);
    return Math.min(60_000, Math.max(5_000, lifetime / 4));
  }
  function fresh(s) {
    return !!s && s.expiresAt - now() > margin(s);
  }

  /** The CSRF token of the refresh cookie's session (a reloaded page holds only the cookie). */
  async function csrfOfCookie() {
    const res = await doFetch(baseUrl + '/auth/session', { credentials: 'include' });
    if (res.status === 401) return null;
    if (!res.ok) throw await errorOf(res);
    return (await res.json()).csrf_token;
  }

  async function refreshNow(staleToken) {
    // Another tab may have refreshed while this one waited for the lock: its broadcast arrived
    // while it still held the lock (see refresh()), so use its result.
    if (session && session.accessToken !== staleToken && fresh(session)) return session;
    const startedWith = session;
    // Gatehouse knows no session for the cookie sent. A login that finished meanwhile (here or
    // in another tab) set a newer one: keep it.
    const ended = () => {
      if (session !== startedWith) return session;
      noSessionUntil = now() + NO_SESSION_RECHECK_MS;
      if (session) set(null, 'expired');
      return null;
    };
    const cached = session && session.csrfToken;
    const csrf = cached || (await csrfOfCookie());
    if (!csrf) return ended();
    let res = await post('/auth/refresh', {}, { 'x-csrf-token': csrf });
    if (res.status === 403 && cached) {
      // The cookie may belong to a newer session than the one this tab knows (a login in a tab
      // whose broadcast never arrived): ask for that session's CSRF token, once.
      const err = await errorOf(res);
      if (err.code !== 'csrf_validation_failed') throw err;
      const current = await csrfOfCookie();
      if (!current) return ended();
      if (current === cached) throw err;
      res = await post('/auth/refresh', {}, { 'x-csrf-token': current });
    }
    if (res.status === 401) return ended();
    if (!res.ok) throw await errorOf(res);
    const next = fromAnswer(await res.json());
    next.issuedAt = now();
    noSessionUntil = 0;
    set(next, session ? 'refresh' : 'restore');
    return next;
  }

  /** One refresh at a time: per tab (shared promise) and across tabs (Web Lock). */
  function refresh() {
    if (!refreshing) {
      const stale = session && session.accessToken;
      let run;
      if (locks && channel) {
        // This tab gets the result at once; the lock is kept a moment longer, so that the
        // broadcast of a new session reaches the tabs waiting for it before they take the lock
        // and find their token still stale.
        run = new Promise((resolve, reject) => {
          locks
            .request(lockName, async () => {
              const before = session;
              await refreshNow(stale).then(resolve, reject);
              if (session !== before) await new Promise((r) => setTimeout(r, BROADCAST_GRACE_MS));
            })
            .catch(reject);
        });
      } else {
        run = locks ? locks.request(lockName, () => refreshNow(stale)) : refreshNow(stale);
      }
      refreshing = run.finally(() => {
        refreshing = null;
      });
    }
    return refreshing;
  }

  async function token() {
    if (fresh(session)) return session.accessToken;
    if (!session && now() < noSessionUntil) return null;
    const s = await refresh();
    return s ? s.accessToken : null;
  }

  async function authFetch(path, init = {}) {
    const url = /^https?:\/\//.test(path) ? path : baseUrl + (path.startsWith('/') ? '' : '/') + path;
    const send = (t) => {
      const headers = new Headers(init.headers || {});
      if (t) headers.set('authorization', 'Bearer ' + t);
      return doFetch(url, { ...init, headers, credentials: init.credentials || 'omit' });
    };
    const t = await token();
    let res = await send(t);
    if (res.status === 401 && t) {
      // Revoked or expired early: one refresh, one retry.
      if (session && session.accessToken === t) {
        const s = await refresh();
        if (s && s.accessToken !== t) res = await send(s.accessToken);
      } else if (session) {
        res = await send(session.accessToken);
      }
    }
    return res;
  }

  /**
   * A JSON call of the signed-in user's own endpoints (`/auth/mfa…`): one refresh and retry
   * when the access token was refused, never for other refusals (a wrong password or code must
   * not be sent twice). Throws a GatehouseError for every error answer.
   */
  async function ownCall(method, path, body) {
    const t = await token();
    if (!t) throw new GatehouseError(401, 'no_auth', 'not logged in');
    const call = (access) => {
      const headers = { authorization: 'Bearer ' + access };
      if (body !== undefined) headers['content-type'] = 'application/json';
      return doFetch(baseUrl + path, {
        method,
        credentials: 'omit',
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    };
    let res = await call(t);
    if (res.status === 401) {
      const err = await errorOf(res);
      if (err.code !== 'invalid_token' && err.code !== 'expired_token') throw err;
      const s = session && session.accessToken === t ? await refresh() : session;
      if (!s || s.accessToken === t) throw err;
      res = await call(s.accessToken);
    }
    if (!res.ok) throw await errorOf(res);
    return res.status === 204 ? null : res.json();
  }

  /** The request options of an unauthenticated assertion for `purpose`. */
  async function publicOptions(purpose) {
    const res = await post('/auth/webauthn/login/options', { purpose });
    if (!res.ok) throw await errorOf(res);
    return (await res.json()).publicKey;
  }

  /** The browser's assertion (JSON form) for request options `publicKey`. */
  async function assertion(publicKey, mediation) {
    const request = { publicKey: requestOptions(publicKey) };
    if (mediation) request.mediation = mediation;
    return credentialJSON(await webauthn().get(request));
  }

  /**
   * The body that shows the signed-in user again before a TOTP change: `{password}`, or with
   * `passkey: true` an assertion of one of the user's passkeys for a challenge bound to them.
   */
  async function shownAgain(password, passkey) {
    if (!passkey) return { password };
    if (password !== undefined && password !== null) throw new TypeError('give password or passkey, not both');
    const { publicKey } = await ownCall('POST', '/auth/webauthn/login/options', { purpose: 'reauthenticate' });
    return { webauthn: await assertion(publicKey) };
  }

  async function enter(path, body) {
    return entered(await post(path, body));
  }

  async function entered(res) {
    if (!res.ok) throw await errorOf(res);
    const next = fromAnswer(await res.json());
    next.issuedAt = now();
    noSessionUntil = 0;
    set(next, 'login');
    return next.user;
  }

  const client = {
    get user() {
      return session ? session.user : null;
    },
    get authenticated() {
      return !!session;
    },
    async register({ email, password, name } = {}) {
      const res = await post('/auth/register', { email, password, name });
      // REGISTRATION_ENUMERATION=hide: 202, no session whether or not the email was taken; the
      // new account logs in next (a taken email fails like a wrong password).
      if (res.status === 202) return enter('/auth/login', { email, password });
      return entered(res);
    },
    // With TOTP enrolled and no `otp`, this throws a GatehouseError whose code is
    // `mfa_required` (only once the password is right): ask for the code and call it again
    // with `otp` (a 6-digit code or a recovery code), or with `passkey: true` to show one of
    // the account's passkeys instead (the browser asks for it).
    async login({ email, password, otp, passkey } = {}) {
      const hasOtp = otp !== undefined && otp !== null;
      if (passkey && hasOtp) throw new TypeError('login: give otp or passkey, not both');
      const body = hasOtp ? { email, password, otp } : { email, password };
      if (passkey) body.webauthn = await assertion(await publicOptions('second_factor'));
      return enter('/auth/login', body);
    },
    async mfaStatus() {
      const { totp } = await ownCall('GET', '/auth/mfa');
      return {
        available: totp.available,
        enrolled: totp.enrolled,
        enrolledAt: totp.enrolled_at,
        pending: totp.pending,
        recoveryCodesLeft: totp.recovery_codes_left,
      };
    },
    async enrollTotp({ password, passkey } = {}) {
      const started = await ownCall('POST', '/auth/mfa/totp/start', await shownAgain(password, passkey));
      return {
        secret: started.secret,
        otpauthUri: started.otpauth_uri,
        qrSvg: started.qr_svg,
        expiresIn: started.expires_in,
      };
    },
    async confirmTotp({ otp } = {}) {
      const { recovery_codes: recoveryCodes } = await ownCall('POST', '/auth/mfa/totp/confirm', { otp });
      return { recoveryCodes };
    },
    async removeTotp({ password, passkey } = {}) {
      await ownCall('DELETE', '/auth/mfa/totp', await shownAgain(password, passkey));
    },
    async regenerateRecoveryCodes({ password, passkey } = {}) {
      const { recovery_codes: recoveryCodes } = await ownCall('POST', '/auth/mfa/recovery-codes', await shownAgain(password, passkey));
      return { recoveryCodes };
    },
    async logout() {
      const cached = session && session.csrfToken;
      let csrf = cached;
      if (!csrf) {
        const res = await doFetch(baseUrl + '/auth/session', { credentials: 'include' });
        csrf = res.ok ? (await res.json()).csrf_token : null;
      }
      let res = null;
      if (csrf) res = await post('/auth/logout', {}, { 'x-csrf-token': csrf });
      if (res && res.status === 403 && cached) {
        // The token this tab holds no longer fits the cookie (a newer session, a rotated
        // signing key): ask for the cookie's own, once, so the session really ends.
        const err = await errorOf(res.clone());
        const current = err.code === 'csrf_validation_failed' ? await csrfOfCookie().catch(() => null) : null;
        if (current && current !== cached) res = await post('/auth/logout', {}, { 'x-csrf-token': current });
      }
      noSessionUntil = now() + NO_SESSION_RECHECK_MS;
      set(null, 'logout');
      if (res && !res.ok) throw await errorOf(res);
    },
    async me() {
      const res = await authFetch('/auth/me');
      if (res.status === 401) return null;
      if (!res.ok) throw await errorOf(res);
      const { user } = await res.json();
      if (session) session.user = user;
      return user;
    },
    /**
     * A scoped token (`POST /auth/token`) for less than this session can do: `roles` and
     * `routes` subsets, `ttl` seconds, another service's `aud`. Members left out take
     * Gatehouse's defaults. Resolves to the answer (`access_token`, `expires_in`, `scope`, …);
     * a refusal throws its GatehouseError (`insufficient_role`, `scope_violation`, `bad_request`).
     */
    async mintToken({ roles, routes, ttl, aud } = {}) {
      const body = {};
      if (roles !== undefined) body.roles = roles;
      if (routes !== undefined) body.routes = routes;
      if (ttl !== undefined) body.ttl = ttl;
      if (aud !== undefined) body.aud = aud;
      const res = await authFetch('/auth/token', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
      if (!res.ok) throw await errorOf(res);
      return res.json();
    },
    /**
     * Creates a passkey for the signed-in user (the authenticator asks the user to confirm)
     * and stores it; returns the stored passkey.
     */
    async registerPasskey({ name } = {}) {
      const call = async (path, body) => {
        const res = await authFetch(path, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
        if (!res.ok) throw await errorOf(res);
        return res.json();
      };
      if (!(await token())) throw new GatehouseError(401, 'no_auth', 'sign in before registering a passkey');
      const { publicKey } = await call('/auth/webauthn/register/options', {});
      const cred = await webauthn().create({ publicKey: creationOptions(publicKey) });
      const body = credentialJSON(cred);
      if (name !== undefined) body.name = name;
      return (await call('/auth/webauthn/register/verify', body)).passkey;
    },
    /**
     * Signs in with a passkey: the browser offers the site's passkeys, no email is typed. The
     * session is the one a password login starts.
     */
    async loginWithPasskey({ mediation } = {}) {
      const publicKey = await publicOptions('login');
      return entered(await post('/auth/webauthn/login/verify', await assertion(publicKey, mediation)));
    },
    /** The signed-in user's passkeys. */
    async listPasskeys() {
      const res = await authFetch('/auth/passkeys');
      if (!res.ok) throw await errorOf(res);
      return (await res.json()).passkeys;
    },
    /** Removes one of the signed-in user's passkeys. */
    async deletePasskey(id) {
      const res = await authFetch('/auth/passkeys/' + encodeURIComponent(id), { method: 'DELETE' });
      if (!res.ok) throw await errorOf(res);
    },
    fetch: authFetch,
    refresh,
    getAccessToken: token,
    onChange(fn) {
      listeners.add(fn);
      return () => listeners.delete(fn);
    },
    close() {
      if (channel) channel.close();
      listeners.clear();
    },
  };

  // Restore the session of the refresh cookie (a reload or a new tab). A failure leaves the
  // client logged out; `ready` never rejects.
  client.ready = options.restore === false ? Promise.resolve(null) : refresh().then(
    (s) => {
      if (!s) emit('restore');
      return s ? s.user : null;
    },
    () => {
      emit('restore');
      return null;
    },
  );
  return client;
}
