// @gatehouse/nuxt: Gatehouse in a Nuxt site, in two lines of nuxt.config:
//
//   modules: ['@gatehouse/nuxt'],
//   gatehouse: { url: 'https://auth.example.com' },
//
// It adds a plugin that creates the browser client (@gatehouse/client) once per app and provides
// it as `$gatehouse`, the auto-imported `useGatehouse()` composable, and the `gatehouse-auth`
// route middleware. Made for static sites (`ssr: false`, `nuxt generate`): the session lives in
// the browser only; during server rendering or prerendering nobody is signed in.
//
// @nuxt/kit and nuxt are peer dependencies: the site's own copies are used.
import { addImports, addPlugin, addRouteMiddleware, createResolver, defineNuxtModule } from '@nuxt/kit';

/** @typedef {import('./module').ModuleOptions} ModuleOptions */

/**
 * Checks and normalises the options (exported for the tests).
 * @param {Partial<ModuleOptions>} options
 * @returns {ModuleOptions}
 */
export function resolveOptions(options) {
  const url = String(options.url || '').trim().replace(/\/+$/, '');
  if (!/^https?:\/\/[^/]/.test(url)) {
    throw new Error(
      '@gatehouse/nuxt: set `gatehouse: { url }` in nuxt.config to the absolute http(s) URL of your Gatehouse ' +
        `(e.g. https://auth.example.com); got ${JSON.stringify(options.url ?? '')}`,
    );
  }
  const redirectTo = String(options.redirectTo || '/');
  if (!redirectTo.startsWith('/')) {
    throw new Error(`@gatehouse/nuxt: \`gatehouse.redirectTo\` must be a path of the site starting with /; got ${JSON.stringify(redirectTo)}`);
  }
  return { url, redirectTo };
}

export default defineNuxtModule({
  meta: {
    name: '@gatehouse/nuxt',
    configKey: 'gatehouse',
    compatibility: { nuxt: '>=3.13.0' },
  },
  /** @type {Partial<ModuleOptions>} */
  defaults: {
    url: '',
    redirectTo: '/',
  },
  setup(options, nuxt) {
    const resolved = resolveOptions(options);
    const { resolve } = createResolver(import.meta.url);

    // Public runtime config (the client reads it in the browser); values the site set under
    // runtimeConfig.public.gatehouse win.
    const pub = /** @type {Record<string, any>} */ (nuxt.options.runtimeConfig.public);
    pub.gatehouse = { ...resolved, ...(pub.gatehouse || {}) };

    nuxt.options.build.transpile.push(resolve('./runtime'));
    addPlugin({ src: resolve('./runtime/plugin.js'), name: 'gatehouse' });
    addImports({ name: 'useGatehouse', from: resolve('./runtime/composables.js') });
    addRouteMiddleware({ name: 'gatehouse-auth', path: resolve('./runtime/middleware.js') });

    // $gatehouse, page meta `gatehouse: { role }` and the runtime config, typed in the site.
    nuxt.hook('prepare:types', ({ references }) => {
      references.push({ path: resolve('./runtime/types.d.ts') });
    });
  },
});
