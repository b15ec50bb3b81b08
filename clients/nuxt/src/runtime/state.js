// The Gatehouse state of a Nuxt app, built on @gatehouse/client: what `useGatehouse()` and
// `$gatehouse` return, and the access rule of the `gatehouse-auth` middleware. Free of Nuxt
// imports (Vue's reactivity is handed in), so that it runs in plain Node for the tests.

/** @typedef {import('@gatehouse/client').GatehouseClient} GatehouseClient */
/** @typedef {import('@gatehouse/client').User} User */
/** @typedef {import('./state').Gatehouse} Gatehouse */
/** @typedef {import('./state').GatehouseAccess} GatehouseAccess */
/** @typedef {import('./state').Reactivity} Reactivity */

/**
 * The state of one app around its client. `client` is null where there is no browser (server
 * rendering, prerendering): nobody is signed in there, and the actions reject.
 * @param {GatehouseClient | null} client
 * @param {Reactivity} vue  `shallowRef` and `computed` from Vue
 * @returns {Gatehouse}
 */
export function createGatehouse(client, vue) {
  const current = vue.shallowRef(/** @type {User | null} */ (client ? client.user : null));
  const restored = vue.shallowRef(false);
  /** @param {string} action */
  const need = (action) => {
    if (!client) throw new Error(`useGatehouse().${action}() runs in the browser only: there is no session during server rendering`);
    return client;
  };
  const sync = () => {
    current.value = client ? client.user : null;
  };
  /** @type {Promise<User | null>} */
  let ready = Promise.resolve(null);
  if (client) {
    // Login, logout, restore, expiry, also when they happen in another tab.
    client.onChange((state) => {
      current.value = state.user;
    });
    ready = client.ready.then(() => {
      sync();
      restored.value = true;
      return client.user;
    });
  }
  const user = vue.computed(() => current.value);

  /** @param {string | string[]} role */
  function hasRole(role) {
    return grants(current.value, role);
  }

  return {
    client,
    user,
    loggedIn: vue.computed(() => current.value !== null),
    ready: vue.computed(() => restored.value),
    whenReady: () => ready,
    hasRole,
    async login(input) {
      const user = await need('login').login(input);
      sync();
      return user;
    },
    async register(input) {
      const user = await need('register').register(input);
      sync();
      return user;
    },
    async loginWithPasskey(input) {
      const user = await need('loginWithPasskey').loginWithPasskey(input);
      sync();
      return user;
    },
    async registerPasskey(input) {
      return need('registerPasskey').registerPasskey(input);
    },
    // The signed-in user's TOTP second factor (a login then needs `otp` after `mfa_required`).
    async mfaStatus() {
      return need('mfaStatus').mfaStatus();
    },
    async enrollTotp(input) {
      return need('enrollTotp').enrollTotp(input);
    },
    async confirmTotp(input) {
      return need('confirmTotp').confirmTotp(input);
    },
    async removeTotp(input) {
      return need('removeTotp').removeTotp(input);
    },
    async regenerateRecoveryCodes(input) {
      return need('regenerateRecoveryCodes').regenerateRecoveryCodes(input);
    },
    async logout() {
      try {
        await need('logout').logout();
      } finally {
        sync();
      }
    },
    async me() {
      const user = await need('me').me();
      sync();
      return user;
    },
    // Through Gatehouse (its proxy routes, /auth/…): the Bearer token is added, refreshed before
    // it expires and once more after a 401.
    async fetch(path, init) {
      return need('fetch').fetch(path, init);
    },
  };
}

/**
 * Whether `user` holds `role` (or any of a list of roles; an empty list asks for none).
 * @param {User | null} user
 * @param {string | string[] | undefined} role
 */
export function grants(user, role) {
  if (!user) return false;
  if (role === undefined || role === null) return true;
  const wanted = Array.isArray(role) ? role : [role];
  if (wanted.length === 0) return true;
  const roles = Array.isArray(user.roles) ? user.roles : [];
  return wanted.some((r) => roles.includes(r));
}

/**
 * Where a visitor goes instead of a page guarded by `gatehouse-auth` (a path), or null when they
 * may see it: a signed-in user, with the role when the page's meta names one.
 * @param {GatehouseAccess | undefined} access  the page's `gatehouse` meta
 * @param {User | null} user
 * @param {string} fallback  the module's `redirectTo`
 * @returns {string | null}
 */
export function redirectFor(access, user, fallback) {
  const target = (access && access.redirectTo) || fallback || '/';
  return grants(user, access ? access.role : undefined) ? null : target;
}

/**
 * Whether a route's meta lists the `gatehouse-auth` middleware.
 * @param {unknown} meta  the route's meta
 */
export function usesGuard(meta) {
  const m = meta && /** @type {{ middleware?: unknown }} */ (meta).middleware;
  return Array.isArray(m) ? m.includes('gatehouse-auth') : m === 'gatehouse-auth';
}
