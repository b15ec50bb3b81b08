// Types a site gets from @gatehouse/nuxt (referenced from .nuxt/nuxt.d.ts by the module).
import type { Gatehouse, GatehouseAccess } from './state';

declare module '#app' {
  interface NuxtApp {
    $gatehouse: Gatehouse;
  }
  interface PageMeta {
    /** Who may see the page when it uses the `gatehouse-auth` middleware. */
    gatehouse?: GatehouseAccess;
  }
}

declare module 'vue' {
  interface ComponentCustomProperties {
    $gatehouse: Gatehouse;
  }
}

export {};
