// The `gatehouse-auth` route middleware: a page that lists it is shown to signed-in users only,
// and, when its meta names a role, only to users with that role:
//
//   definePageMeta({ middleware: 'gatehouse-auth', gatehouse: { role: 'editor' } })
//
// Anyone else is sent to `gatehouse.redirectTo` (the page's, else the module's, default `/`).
import { abortNavigation, defineNuxtRouteMiddleware, navigateTo, useNuxtApp, useRuntimeConfig } from '#app';
import { redirectFor } from './state.js';

export default defineNuxtRouteMiddleware(async (to) => {
  // Server rendering and prerendering know no session: the browser decides.
  if (import.meta.server) return;
  const nuxtApp = useNuxtApp();
  const gatehouse = /** @type {import('./state').Gatehouse} */ (/** @type {any} */ (nuxtApp).$gatehouse);
  const { redirectTo } = /** @type {import('./state').GatehouseConfig} */ (useRuntimeConfig().public.gatehouse);
  // The first page of a visit waits for the session of the refresh cookie.
  await gatehouse.whenReady();
  const target = redirectFor(/** @type {any} */ (to.meta).gatehouse, gatehouse.user.value, redirectTo);
  if (!target) return;
  return nuxtApp.runWithContext(() =>
    target === to.path
      ? abortNavigation(`gatehouse-auth: ${to.path} is also the page to redirect to`)
      : navigateTo(target, { replace: true }),
  );
});
