// A fake `#app` for the unit tests: just what the module's runtime files use.

let current = null;

/** A Nuxt app with the runtime config and a router that records where it was sent. */
export function createNuxtApp({ config, route = { path: '/', meta: {} } } = {}) {
  const replaced = [];
  const app = {
    $config: { public: { gatehouse: config } },
    $router: {
      currentRoute: { value: route },
      replaced,
      replace(to) {
        replaced.push(to);
        app.$router.currentRoute.value = { path: to, meta: {} };
        return Promise.resolve();
      },
    },
    inContext: 0,
    runWithContext(fn) {
      const before = current;
      current = app;
      app.inContext += 1;
      try {
        return fn();
      } finally {
        current = before;
      }
    },
  };
  return app;
}

/** Makes `app` the current app (as Nuxt does while it runs plugins, middleware, setup). */
export function setNuxtApp(app) {
  current = app;
}

export function useNuxtApp() {
  if (!current) throw new Error('[nuxt] instance unavailable (fake #app)');
  return current;
}
export const useRuntimeConfig = () => useNuxtApp().$config;
export const defineNuxtPlugin = (plugin) => plugin;
export const defineNuxtRouteMiddleware = (middleware) => middleware;

export function navigateTo(to, options = {}) {
  useNuxtApp(); // like Nuxt's, it needs the app's context
  return { navigateTo: to, ...options };
}
export function abortNavigation(message) {
  useNuxtApp();
  return { abortNavigation: message };
}
