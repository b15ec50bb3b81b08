// The Gatehouse admin console: one page, hash routing, no dependencies.
//
// Signed in, the browser holds only the HttpOnly console cookie (Path=/admin/, SameSite=Strict).
// The session's CSRF token lives in this module's memory, read from the sign-in answer or from
// GET /admin/session after a reload, and goes out as X-CSRF-Token on every change. Nothing is
// written to localStorage, sessionStorage or a readable cookie. Every value from the server is
// put on the page as text (textContent), never as markup.

const KINDS = [
  'registered', 'login_succeeded', 'login_failed', 'refresh_token_reused', 'logout',
  'session_revoked', 'password_changed', 'password_change_failed', 'role_changed',
  'user_disabled', 'user_enabled', 'api_key_minted', 'api_key_revoked',
  'console_signed_in', 'console_signed_out', 'totp_enrollment_started', 'totp_enrolled',
  'totp_enrollment_failed', 'totp_removed', 'totp_removal_failed', 'recovery_codes_regenerated',
  'recovery_codes_failed',
];
const PAGES = ['overview', 'users', 'keys', 'audit'];

const state = { csrf: null, me: null };

// ---------------------------------------------------------------------------------------------
// DOM helpers

const $ = (sel, root = document) => root.querySelector(sel);

/** An element: attributes (on* as listeners, testid as data-testid), then children as nodes or text. */
function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'testid') el.dataset.testid = v;
    else if (k === 'class') el.className = v;
    else if (v === true) el.setAttribute(k, '');
    else el.setAttribute(k, String(v));
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

function when(ms) {
  if (ms === null || ms === undefined) return '—';
  return new Date(ms).toISOString().replace('T', ' ').replace(/\.\d+Z$/, 'Z');
}

function notice(text, error = false) {
  const n = $('#notice');
  n.textContent = text;
  n.classList.toggle('error', error);
  n.hidden = !text;
}

function formData(form) {
  return Object.fromEntries(new FormData(form).entries());
}

/** Runs an action, showing its failure as a notice rather than losing it. */
async function attempt(fn) {
  try {
    await fn();
  } catch (err) {
    if (err.code !== 'invalid_session') notice(`${err.code ?? 'error'}: ${err.message}`, true);
  }
}

// ---------------------------------------------------------------------------------------------
// The API

class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

async function api(method, path, body) {
  const headers = { accept: 'application/json' };
  if (method !== 'GET' && method !== 'HEAD' && state.csrf) headers['x-csrf-token'] = state.csrf;
  if (body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    credentials: 'same-origin',
    cache: 'no-store',
  });
  const text = await res.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = null;
  }
  if (!res.ok) {
    const err = new ApiError(res.status, data?.error?.code, data?.error?.message ?? `HTTP ${res.status}`);
    // The session ended (signed out elsewhere, revoked, expired, its key revoked, the user
    // disabled or no longer an admin): back to the sign-in form.
    if (path !== '/admin/session' && (err.code === 'invalid_session' || err.code === 'no_auth' || err.code === 'insufficient_role')) {
      showSignIn(`Your console session ended (${err.code}). Sign in again.`);
    }
    throw err;
  }
  return data;
}

const q = (params) => {
  const s = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== '') s.set(k, v);
  const text = s.toString();
  return text ? `?${text}` : '';
};

// ---------------------------------------------------------------------------------------------
// Signing in and out

function showSignIn(reason = '') {
  state.csrf = null;
  state.me = null;
  $('#app').hidden = true;
  $('#app').replaceChildren();
  $('#nav').hidden = true;
  $('#who').hidden = true;
  $('#sign-in').hidden = false;
  $('#sign-in-reason').textContent = reason;
}

function signedIn(answer) {
  state.csrf = answer.csrf_token;
  state.me = answer;
  $('#sign-in').hidden = true;
  $('#sign-in-reason').textContent = '';
  $('#nav').hidden = false;
  $('#who').hidden = false;
  const via = answer.session.via === 'api_key' ? ` (API key ${answer.session.api_key_id})` : '';
  $('[data-testid="signed-in-as"]').textContent = `${answer.user.email}${via}`;
  $('#app').hidden = false;
  route();
}

async function signIn(body, form) {
  notice('');
  try {
    const answer = await api('POST', '/admin/session', body);
    form.reset();
    signedIn(answer);
  } catch (err) {
    $('#sign-in-reason').textContent = `Sign-in failed: ${err.code ?? ''} ${err.message}`;
  }
}

async function signOut() {
  await attempt(async () => {
    await api('DELETE', '/admin/session');
    showSignIn('Signed out.');
  });
}

// ---------------------------------------------------------------------------------------------
// Routing

function currentPage() {
  const [, page, arg] = /^#\/([a-z]+)(?:\/(.*))?$/.exec(location.hash) ?? [];
  return { page: PAGES.includes(page) ? page : 'overview', arg: arg ? decodeURIComponent(arg) : null };
}

function route() {
  if (!state.me) return;
  const { page, arg } = currentPage();
  for (const a of document.querySelectorAll('#nav a')) a.classList.toggle('active', a.dataset.page === page);
  notice('');
  const app = $('#app');
  const view = h('div', { testid: `page-${page}` });
  app.replaceChildren(view);
  const render = { overview, users, keys, audit }[page];
  attempt(() => render(view, arg));
}

// ---------------------------------------------------------------------------------------------
// Overview

async function overview(view) {
  view.append(h('h2', {}, 'Overview'));
  const [config, keyList, failed, firstUsers, rate] = await Promise.all([
    api('GET', '/admin/config'),
    api('GET', '/admin/api-keys'),
    api('GET', `/admin/audit${q({ kind: 'login_failed', limit: 10 })}`),
    api('GET', `/admin/users${q({ limit: 200 })}`),
    api('GET', '/admin/rate-limits'),
  ]);
  let userCount = firstUsers.users.length;
  let more = firstUsers.next_cursor;
  for (let i = 0; more && i < 9; i++) {
    const page = await api('GET', `/admin/users${q({ limit: 200, cursor: more })}`);
    userCount += page.users.length;
    more = page.next_cursor;
  }
  const now = Date.now();
  const liveKeys = keyList.api_keys.filter((k) => !k.revoked_at && !(k.expires_at && k.expires_at <= now));
  view.append(
    h('div', { class: 'cards' },
      h('div', { class: 'card' }, h('div', { class: 'stat', testid: 'count-users' }, more ? `${userCount}+` : userCount), 'users'),
      h('div', { class: 'card' }, h('div', { class: 'stat', testid: 'count-keys' }, liveKeys.length), `live API keys (${keyList.api_keys.length} in all)`),
      h('div', { class: 'card' }, h('div', { class: 'stat' }, config.routes.length), 'proxy routes'),
      h('div', { class: 'card' }, h('div', { class: 'stat' }, config.accounts.registration), 'registration'),
    ),
  );

  view.append(
    h('section', { class: 'card', testid: 'failed-logins' },
      h('h3', {}, 'Recent failed logins'),
      failed.events.length === 0
        ? h('p', { class: 'muted' }, 'None.')
        : table(['when', 'user', 'cause', 'ip'], failed.events.map((e) => [
          when(e.at), e.subject_user_id ?? '(unknown email)', e.detail?.cause ?? '', e.ip ?? '',
        ])),
    ),
  );

  view.append(
    h('section', { class: 'card', testid: 'rate-limited' },
      h('h3', {}, 'Rate-limited now'),
      rate.limited.length === 0
        ? h('p', { class: 'muted' }, 'No one is over a limit in the current window.')
        : table(['limit', 'who (as stored)', 'attempts', 'until'], rate.limited.map((r) => [
          r.bucket, r.subject, `${r.count} / ${r.limit}`, when(r.until),
        ])),
    ),
  );

  const c = config;
  view.append(
    h('section', { class: 'card', testid: 'config' },
      h('h3', {}, 'Configuration'),
      table(['setting', 'value'], [
        ['issuer / audience', `${c.tokens.issuer} / ${c.tokens.audience}`],
        ['access token lifetime', `${c.tokens.access_ttl_secs} s`],
        ['session lifetime / idle timeout', `${c.tokens.refresh_ttl_secs} s / ${c.tokens.refresh_idle_secs} s`],
        ['signing keys published', c.tokens.signing_keys],
        ['scoped tokens', `${c.tokens.scoped_max_ttl_secs} s at most; other audiences: ${c.tokens.scoped_audiences.join(', ') || '(none)'}`],
        ['default roles', c.accounts.default_roles.join(', ')],
        ['API keys', c.accounts.api_keys_enabled ? 'enabled' : 'off (API_KEY_PEPPER unset)'],
        ['allowed origins', c.browser.allowed_origins.join(', ') || '(none)'],
        ['refresh cookie SameSite', c.browser.cookie_same_site],
        ['max body', `${c.limits.max_body_bytes} bytes`],
        ['rate limits (per window)', `window ${c.limits.rate.window_secs} s; login ${c.limits.rate.login_per_account}/account, ${c.limits.rate.login_per_ip}/IP; register ${c.limits.rate.register_per_ip}/IP; refresh ${c.limits.rate.refresh_per_family}/session; token mint ${c.limits.rate.token_mint_per_credential}/credential`],
      ]),
      h('h3', {}, 'Proxy routes'),
      c.routes.length === 0
        ? h('p', { class: 'muted' }, 'No routes configured.')
        : table(['name', 'prefix', 'upstream', 'methods', 'endpoints', 'secrets'], c.routes.map((r) => [
          r.name, r.prefix, r.upstream, r.methods,
          r.forward_all ? '(forward_all)' : r.endpoints.join('\n'),
          r.secrets.join(', ') || '—',
        ])),
      h('h3', {}, 'Trusted issuers'),
      c.issuers.length === 0
        ? h('p', { class: 'muted' }, 'No trusted external issuers.')
        : table(['name', 'iss', 'keys', 'algorithms', 'audience', 'token from', 'users'], c.issuers.map((i) => [
          i.name, i.iss, i.jwks_uri, i.algorithms.join(', '), i.audience.join(', '),
          [i.bearer ? 'Bearer' : null, i.cookie ? `cookie ${i.cookie}` : null].filter(Boolean).join(', '),
          i.known_users_only ? 'known users only' : 'any',
        ])),
      h('h3', {}, 'Secrets (names only)'),
      table(['secret', 'set'], c.secrets.map((s) => [s.name, s.set ? 'set' : 'not set'])),
    ),
  );
}

function table(headers, rows, rowAttrs = () => ({})) {
  return h('div', { class: 'table-wrap' },
    h('table', {},
      h('thead', {}, h('tr', {}, headers.map((x) => h('th', {}, x)))),
      h('tbody', {}, rows.map((r, i) => h('tr', rowAttrs(i), r.map((cell) => h('td', {}, cell))))),
    ));
}

// ---------------------------------------------------------------------------------------------
// Users

// The users page's search and paging survive opening a user (a hash change renders anew).
const listState = { q: '', cursors: [null] };

async function users(view, selected) {
  const list = h('div', { testid: 'user-list' });
  const detail = h('div', { testid: 'user-detail' });
  const search = h('form', { testid: 'user-search', onsubmit: (e) => {
    e.preventDefault();
    listState.q = formData(e.target).q.trim();
    listState.cursors = [null];
    attempt(load);
  } },
  h('label', {}, 'Search email or name', h('input', { name: 'q', type: 'search', value: listState.q })),
  h('button', { type: 'submit' }, 'Search'));

  const create = h('form', { testid: 'create-user', onsubmit: (e) => {
    e.preventDefault();
    const f = formData(e.target);
    const body = { email: f.email, password: f.password, name: f.name || null };
    if (f.roles.trim()) body.roles = f.roles.split(',').map((r) => r.trim()).filter(Boolean);
    attempt(async () => {
      const res = await api('POST', '/admin/users', body);
      e.target.reset();
      notice(`Created ${res.user.email}.`);
      await load();
    });
  } },
  h('label', {}, 'Email', h('input', { name: 'email', type: 'email', required: true })),
  h('label', {}, 'Name', h('input', { name: 'name' })),
  h('label', {}, 'Password', h('input', { name: 'password', type: 'password', minlength: 8, required: true, autocomplete: 'new-password' })),
  h('label', {}, 'Roles (comma-separated; empty: the defaults)', h('input', { name: 'roles' })),
  h('button', { type: 'submit' }, 'Create user'));

  view.append(
    h('h2', {}, 'Users'),
    h('div', { class: 'split' },
      h('div', {}, h('div', { class: 'card' }, search), list),
      h('div', {}, detail, h('section', { class: 'card' }, h('h3', {}, 'New user'), create)),
    ),
  );

  async function load() {
    const cursor = listState.cursors[listState.cursors.length - 1];
    const page = await api('GET', `/admin/users${q({ q: listState.q, cursor, limit: 25 })}`);
    const rows = page.users.map((u) => [
      h('a', { href: `#/users/${encodeURIComponent(u.id)}`, testid: 'user-link' }, u.email),
      u.name ?? '',
      u.roles.join(', '),
      u.disabled ? h('span', { class: 'badge bad' }, 'disabled') : h('span', { class: 'badge good' }, 'enabled'),
      when(u.created_at),
    ]);
    const pager = h('div', { class: 'pager' },
      h('button', { type: 'button', class: 'secondary', disabled: listState.cursors.length === 1, onclick: () => {
        listState.cursors.pop();
        attempt(load);
      } }, 'Previous page'),
      h('button', { type: 'button', class: 'secondary', testid: 'users-next', disabled: !page.next_cursor, onclick: () => {
        listState.cursors.push(page.next_cursor);
        attempt(load);
      } }, 'Next page'),
      h('span', { class: 'muted' }, `page ${listState.cursors.length}`));
    list.replaceChildren(
      page.users.length ? table(['email', 'name', 'roles', 'status', 'created'], rows, (i) => ({
        class: page.users[i].id === selected ? 'selected' : undefined,
        'data-user': page.users[i].email,
      })) : h('p', { class: 'muted' }, 'No users match.'),
      pager,
    );
  }

  await load();
  if (selected) await userDetail(detail, selected, load);
}

async function userDetail(box, id, reloadList) {
  const [{ user }, { sessions }, { passkeys }] = await Promise.all([
    api('GET', `/admin/users/${encodeURIComponent(id)}`),
    api('GET', `/admin/users/${encodeURIComponent(id)}/sessions`),
    api('GET', `/admin/users/${encodeURIComponent(id)}/passkeys`),
  ]);
  const refresh = async () => {
    await userDetail(box, id, reloadList);
    await reloadList();
  };
  const self = state.me && state.me.user.id === user.id;
  const act = (method, path, body, done) => attempt(async () => {
    const res = await api(method, path, body);
    notice(done(res));
    await refresh();
  });
  const base = `/admin/users/${encodeURIComponent(id)}`;
  const live = sessions.filter((s) => s.status === 'active');
  box.replaceChildren(
    h('section', { class: 'card', testid: 'user-card', 'data-email': user.email, 'data-disabled': String(user.disabled) },
      h('h3', {}, user.email, ' ', user.disabled ? h('span', { class: 'badge bad', testid: 'user-status' }, 'disabled') : h('span', { class: 'badge good', testid: 'user-status' }, 'enabled')),
      h('p', { class: 'mono' }, user.id),
      h('p', {}, `Name: ${user.name ?? '—'} · created ${when(user.created_at)} · updated ${when(user.updated_at)}`),
      h('p', { testid: 'user-mfa' }, 'Second factor: ',
        user.mfa && user.mfa.totp ? h('span', { class: 'badge good' }, 'TOTP') : h('span', { class: 'badge' }, 'none'),
        user.mfa && user.mfa.totp
          ? h('button', { type: 'button', class: 'secondary', testid: 'reset-mfa', onclick: () => act('DELETE', `${base}/mfa`, undefined, () => `Second factor of ${user.email} removed.`) }, 'Reset second factor')
          : null),
      h('div', { class: 'row' },
        user.disabled
          ? h('button', { type: 'button', testid: 'enable-user', onclick: () => act('POST', `${base}/enable`, {}, () => `Enabled ${user.email}.`) }, 'Enable')
          : h('button', { type: 'button', class: 'danger', testid: 'disable-user', disabled: self, onclick: () => act('POST', `${base}/disable`, {}, (r) => `Disabled ${user.email}; ${r.revoked_sessions} session(s) revoked.`) }, 'Disable (ends all sessions)'),
      ),
      h('form', { testid: 'roles-form', onsubmit: (e) => {
        e.preventDefault();
        const roles = formData(e.target).roles.split(',').map((r) => r.trim()).filter(Boolean);
        act('PUT', `${base}/roles`, { roles }, () => `Roles of ${user.email}: ${roles.join(', ') || '(none)'}.`);
      } },
      h('label', {}, 'Roles (comma-separated)', h('input', { name: 'roles', value: user.roles.join(', ') })),
      h('button', { type: 'submit' }, 'Save roles')),
      h('form', { testid: 'password-reset', onsubmit: (e) => {
        e.preventDefault();
        const { new_password } = formData(e.target);
        act('POST', `${base}/password`, { new_password }, (r) => `Password of ${user.email} reset; ${r.revoked_sessions} session(s) revoked.`);
      } },
      h('label', {}, 'New password', h('input', { name: 'new_password', type: 'password', minlength: 8, required: true, autocomplete: 'new-password' })),
      h('button', { type: 'submit', class: 'secondary' }, 'Reset password')),
    ),
    h('section', { class: 'card', testid: 'user-sessions' },
      h('h3', {}, `Sessions (${live.length} active)`),
      sessions.length === 0 ? h('p', { class: 'muted' }, 'No sessions.') : table(
        ['session', 'status', 'created', 'expires', 'agent', ''],
        sessions.map((s) => [
          h('span', { class: 'mono' }, s.id, s.console ? ` (console, ${s.console.via})` : ''),
          h('span', { class: `badge ${s.status === 'active' ? 'good' : 'bad'}`, testid: 'session-status' }, s.status),
          when(s.created_at),
          when(s.expires_at),
          s.user_agent ?? '',
          s.status === 'active'
            ? h('button', { type: 'button', class: 'secondary', testid: 'revoke-session', onclick: () => act('DELETE', `${base}/sessions/${encodeURIComponent(s.id)}`, undefined, () => `Session ${s.id} revoked.`) }, 'Revoke')
            : '',
        ]),
        (i) => ({ 'data-session': sessions[i].id }),
      ),
      live.length > 0
        ? h('button', { type: 'button', class: 'danger', testid: 'revoke-all', onclick: () => act('DELETE', `${base}/sessions`, undefined, (r) => `${r.revoked_sessions} session(s) revoked.`) }, 'Revoke all sessions')
        : '',
    ),
    h('section', { class: 'card', testid: 'user-passkeys' },
      h('h3', {}, `Passkeys (${passkeys.length})`),
      passkeys.length === 0 ? h('p', { class: 'muted' }, 'No passkeys.') : table(
        ['passkey', 'algorithm', 'created', 'last used', ''],
        passkeys.map((p) => [
          h('span', {}, p.name, ' ', p.flagged_at ? h('span', { class: 'badge bad', testid: 'passkey-blocked' }, 'blocked (counter regression)') : ''),
          p.algorithm,
          when(p.created_at),
          when(p.last_used_at),
          h('button', { type: 'button', class: 'secondary', testid: 'remove-passkey', onclick: () => act('DELETE', `${base}/passkeys/${encodeURIComponent(p.id)}`, undefined, () => `Passkey ${p.name} of ${user.email} removed.`) }, 'Remove'),
        ]),
        (i) => ({ 'data-passkey': passkeys[i].id }),
      ),
    ),
  );
}

// ---------------------------------------------------------------------------------------------
// API keys

async function keys(view) {
  const shown = h('div', { testid: 'key-once-box' });
  const list = h('div', { testid: 'key-list' });
  const mint = h('form', { testid: 'mint-key', onsubmit: (e) => {
    e.preventDefault();
    const f = formData(e.target);
    const body = {
      label: f.label,
      role: f.role.trim(),
      scopes: f.scopes.split(',').map((s) => s.trim()).filter(Boolean),
    };
    if (f.owner_user_id.trim()) body.owner_user_id = f.owner_user_id.trim();
    if (f.expires_days.trim()) body.expires_at = Date.now() + Number(f.expires_days) * 86_400_000;
    attempt(async () => {
      const res = await api('POST', '/admin/api-keys', body);
      e.target.reset();
      showOnce(res);
      await load();
    });
  } },
  h('label', {}, 'Label', h('input', { name: 'label', required: true, maxlength: 100 })),
  h('label', {}, 'Role (one you and the owner hold)', h('input', { name: 'role', required: true, placeholder: 'e.g. editor' })),
  h('label', {}, 'Scopes (route names, comma-separated)', h('input', { name: 'scopes' })),
  h('label', {}, 'Owner user id (empty: you)', h('input', { name: 'owner_user_id' })),
  h('label', {}, 'Expires in days (empty: never)', h('input', { name: 'expires_days', type: 'number', min: 1, max: 3650 })),
  h('button', { type: 'submit' }, 'Mint key'));

  /** The key, shown this once: it is nowhere else, not even in this page's memory afterwards. */
  function showOnce(res) {
    const out = h('output', { testid: 'key-once' }, res.key);
    const copy = h('button', { type: 'button', testid: 'copy-key', onclick: async () => {
      try {
        await navigator.clipboard.writeText(res.key);
        copy.textContent = 'Copied';
      } catch {
        const range = document.createRange();
        range.selectNodeContents(out);
        getSelection().removeAllRanges();
        getSelection().addRange(range);
        copy.textContent = 'Selected: press Ctrl+C';
      }
    } }, 'Copy');
    shown.replaceChildren(h('div', { class: 'secret-once' },
      h('strong', {}, `New key "${res.api_key.label}" (${res.api_key.id}). Copy it now: it is shown only this once.`),
      out,
      h('div', { class: 'row' }, copy, h('button', { type: 'button', class: 'secondary', testid: 'dismiss-key', onclick: () => shown.replaceChildren() }, 'Done')),
    ));
  }

  async function load() {
    const { api_keys } = await api('GET', '/admin/api-keys');
    const now = Date.now();
    const status = (k) => (k.revoked_at ? 'revoked' : k.expires_at && k.expires_at <= now ? 'expired' : 'active');
    list.replaceChildren(api_keys.length === 0 ? h('p', { class: 'muted' }, 'No API keys.') : table(
      ['key', 'label', 'owner', 'role', 'scopes', 'created', 'expires', 'last used', 'status', ''],
      api_keys.map((k) => [
        h('span', { class: 'mono' }, k.id),
        k.label,
        h('span', { class: 'mono' }, k.owner_user_id),
        k.role,
        k.scopes.join(', ') || '—',
        when(k.created_at),
        k.expires_at ? when(k.expires_at) : 'never',
        when(k.last_used_at),
        h('span', { class: `badge ${status(k) === 'active' ? 'good' : 'bad'}`, testid: 'key-status' }, status(k)),
        status(k) === 'active'
          ? h('button', { type: 'button', class: 'danger', testid: 'revoke-key', onclick: () => attempt(async () => {
            await api('DELETE', `/admin/api-keys/${encodeURIComponent(k.id)}`);
            notice(`Key ${k.id} revoked.`);
            await load();
          }) }, 'Revoke')
          : '',
      ]),
      (i) => ({ 'data-key': api_keys[i].id, 'data-label': api_keys[i].label }),
    ));
  }

  view.append(
    h('h2', {}, 'API keys'),
    h('section', { class: 'card' }, h('h3', {}, 'Mint a key'), mint, h('p', { class: 'muted' },
      'The role must be held by you and by the owner. The key is shown once; Gatehouse keeps only a keyed hash.')),
    shown,
    list,
  );
  await load();
}

// ---------------------------------------------------------------------------------------------
// Audit log

async function audit(view) {
  const filters = { kind: '', user: '', since: '', until: '' };
  const cursors = [null];
  const out = h('div', { testid: 'audit-list' });
  const toMs = (local) => (local ? String(new Date(local).getTime()) : '');
  const form = h('form', { testid: 'audit-filters', onsubmit: (e) => {
    e.preventDefault();
    const f = formData(e.target);
    filters.kind = f.kind;
    filters.user = f.user.trim();
    filters.since = toMs(f.since);
    filters.until = toMs(f.until);
    cursors.splice(0, cursors.length, null);
    attempt(load);
  } },
  h('label', {}, 'Kind', h('select', { name: 'kind' }, h('option', { value: '' }, 'any'), KINDS.map((k) => h('option', { value: k }, k)))),
  h('label', {}, 'User id (subject)', h('input', { name: 'user', placeholder: 'usr_…' })),
  h('label', {}, 'Since', h('input', { name: 'since', type: 'datetime-local' })),
  h('label', {}, 'Until', h('input', { name: 'until', type: 'datetime-local' })),
  h('button', { type: 'submit' }, 'Apply'));

  async function load() {
    const cursor = cursors[cursors.length - 1];
    const page = await api('GET', `/admin/audit${q({ ...filters, cursor, limit: 50 })}`);
    const rows = page.events.map((e) => {
      const detail = h('pre', { class: 'detail', hidden: true, testid: 'event-detail' }, JSON.stringify(e, null, 2));
      return [
        when(e.at),
        h('span', { testid: 'event-kind' }, e.kind),
        h('span', { class: 'mono' }, e.actor_user_id ?? '—'),
        h('span', { class: 'mono' }, e.subject_user_id ?? '—'),
        e.ip ?? '',
        h('div', {},
          h('button', { type: 'button', class: 'secondary', testid: 'event-toggle', onclick: () => { detail.hidden = !detail.hidden; } }, 'Details'),
          detail),
      ];
    });
    out.replaceChildren(
      page.events.length ? table(['when', 'kind', 'actor', 'subject', 'ip', ''], rows, (i) => ({ 'data-event': page.events[i].id })) : h('p', { class: 'muted', testid: 'audit-empty' }, 'No events match.'),
      h('div', { class: 'pager' },
        h('button', { type: 'button', class: 'secondary', disabled: cursors.length === 1, onclick: () => {
          cursors.pop();
          attempt(load);
        } }, 'Newer'),
        h('button', { type: 'button', class: 'secondary', testid: 'audit-next', disabled: !page.next_cursor, onclick: () => {
          cursors.push(page.next_cursor);
          attempt(load);
        } }, 'Older'),
        h('span', { class: 'muted' }, `page ${cursors.length}`)),
    );
    out.dataset.loaded = JSON.stringify(filters);
  }

  view.append(h('h2', {}, 'Audit log'), h('div', { class: 'card' }, form), out);
  await load();
}

// ---------------------------------------------------------------------------------------------
// Start

function start() {
  $('#password-form').addEventListener('submit', (e) => {
    e.preventDefault();
    const { email, password, otp } = formData(e.target);
    signIn(otp ? { email, password, otp: otp.trim() } : { email, password }, e.target);
  });
  $('#key-form').addEventListener('submit', (e) => {
    e.preventDefault();
    signIn({ api_key: formData(e.target).api_key.trim() }, e.target);
  });
  $('#sign-out').addEventListener('click', signOut);
  addEventListener('hashchange', route);
  // A reloaded page holds only the cookie: ask who is signed in (and the CSRF token).
  api('GET', '/admin/session').then(signedIn, () => showSignIn());
}

start();
