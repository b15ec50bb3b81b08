import type { NuxtModule } from 'nuxt/schema';

export interface ModuleOptions {
  /** Absolute URL of the site's Gatehouse, e.g. `https://auth.example.com`. Required. */
  url: string;
  /**
   * Where `gatehouse-auth` sends a visitor who may not see a page (not signed in, or without the
   * role): a path of the site. Default `/`. A page can override it with
   * `definePageMeta({ gatehouse: { redirectTo } })`.
   */
  redirectTo?: string;
}

export declare function resolveOptions(options: Partial<ModuleOptions>): Required<ModuleOptions>;

declare const module: NuxtModule<ModuleOptions>;
export default module;

export type { Gatehouse, GatehouseAccess } from './runtime/state';
export type { GatehouseClient, GatehouseError, User } from '@gatehouse/client';
