import type { GatehouseClient, Passkey, User } from '@gatehouse/client';
import type { ComputedRef, Ref } from 'vue';

/** The `gatehouse` page meta read by the `gatehouse-auth` middleware. */
export interface GatehouseAccess {
  /** A role the user must have, or a list of roles of which they must have one. */
  role?: string | string[];
  /** Where a visitor who may not see the page goes (a path); default: the module's `redirectTo`. */
  redirectTo?: string;
}

/** The module's options in the public runtime config (`runtimeConfig.public.gatehouse`). */
export interface GatehouseConfig {
  url: string;
  redirectTo: string;
}

/** What `useGatehouse()` and `$gatehouse` give. */
export interface Gatehouse {
  /** The JS client itself (`@gatehouse/client`); null during server rendering. */
  readonly client: GatehouseClient | null;
  /** The signed-in user, or null. */
  readonly user: ComputedRef<User | null>;
  readonly loggedIn: ComputedRef<boolean>;
  /** True once the session of the refresh cookie was restored or found absent. */
  readonly ready: ComputedRef<boolean>;
  /** Resolves when `ready` becomes true: the restored user, or null. */
  whenReady(): Promise<User | null>;
  /** Whether the user holds the role (or one of the roles). */
  hasRole(role: string | string[]): boolean;
  login(input: { email: string; password: string }): Promise<User>;
  /** Only when the Gatehouse has `REGISTRATION=open`. */
  register(input: { email: string; password: string; name?: string }): Promise<User>;
  /** Signs in with a passkey, no email typed (the Gatehouse needs `WEBAUTHN_RP_ID`). */
  loginWithPasskey(input?: { mediation?: CredentialMediationRequirement }): Promise<User>;
  /** Creates a passkey for the signed-in user. */
  registerPasskey(input?: { name?: string }): Promise<Passkey>;
  /** Ends the session on the server and in every tab. */
  logout(): Promise<void>;
  /** Reloads the user from `GET /auth/me` (null when signed out). */
  me(): Promise<User | null>;
  /**
   * `fetch` of a Gatehouse path (`/cms/…`, `/auth/…`) or absolute URL, with the Bearer token
   * added; refreshes before expiry and once after a 401.
   */
  fetch(path: string, init?: RequestInit): Promise<Response>;
}

/** The parts of Vue's reactivity the state is built with. */
export interface Reactivity {
  shallowRef<T>(value: T): Ref<T>;
  computed<T>(getter: () => T): ComputedRef<T>;
}

export declare function createGatehouse(client: GatehouseClient | null, vue: Reactivity): Gatehouse;
export declare function grants(user: User | null, role: string | string[] | undefined): boolean;
export declare function redirectFor(access: GatehouseAccess | undefined, user: User | null, fallback: string): string | null;
/** Whether a route's meta lists the `gatehouse-auth` middleware. */
export declare function usesGuard(meta: unknown): boolean;
