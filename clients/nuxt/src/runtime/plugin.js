// Creates the Gatehouse client once per app, in the browser, and provides `$gatehouse`.
import { createClient } from '@gatehouse/client';
import { defineNuxtPlugin, useRuntimeConfig } from '#app';
import { computed, shallowRef } from 'vue';
import { createGatehouse, redirectFor, usesGuard } from './state.js';

export default defineNuxtPlugin({
  name: 'gatehouse',
  setup(nuxtApp) {
    const config = /** @type {import('./state').GatehouseConfig} */ (useRuntimeConfig().public.gatehouse);
    // The session is the HttpOnly refresh cookie Gatehouse set in the browser: nothing to restore
    // on a server. Creating the client starts the restore.
    const client = import.meta.client ? createClient({ baseUrl: config.url }) : null;
    const gatehouse = createGatehouse(client, { shallowRef, computed });
    if (client) {
      // A page behind gatehouse-auth is left as soon as it may no longer be seen: a logout here
      // or in another tab, an ended session.
      client.onChange(({ user }) => {
        const router = /** @type {ReturnType<typeof import('#app').useRouter>} */ (nuxtApp.$router);
        const route = router.currentRoute.value;
        if (!usesGuard(route.meta)) return;
        const target = redirectFor(/** @type {any} */ (route.meta).gatehouse, user, config.redirectTo);
        if (target && target !== route.path) router.replace(target);
      });
    }
    return { provide: { gatehouse } };
  },
});
