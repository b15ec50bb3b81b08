import type { GatehouseClient, MfaStatus, Passkey, TotpEnrollment, User } from '@gatehouse/client';
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
  /**
   * Logs in. For an account with TOTP enrolled, a call without `otp` rejects with a
   * GatehouseError whose code is `mfa_required` (only once the password is right): ask for the
   * code and call again with `otp` (a 6-digit code or a recovery code; wrong or used:
   * `invalid_otp`).
   */
  login(input: { email: string; password: string; otp?: string | null }): Promise<User>;
  /** Only when the Gatehouse has `REGISTRATION=open`. */
  register(input: { email: string; password: string; name?: string }): Promise<User>;
  /** Signs in with a passkey, no email typed (the Gatehouse needs `WEBAUTHN_RP_ID`). */
  loginWithPasskey(input?: { mediation?: CredentialMediationRequirement }): Promise<User>;
  /** Creates a passkey for the signed-in user. */
  registerPasskey(input?: { name?: string }): Promise<Passkey>;
  /** The signed-in user's second factor. */
  mfaStatus(): Promise<MfaStatus>;
  /**
   * Starts a TOTP enrollment (the password again): the secret and its QR code (`qrSvg`, an SVG
   * document: show it as an image, never insert it as HTML).
   */
  enrollTotp(input: { password: string }): Promise<TotpEnrollment>;
  /** Confirms it with a code of the new secret; the 10 recovery codes, shown only now. */
  confirmTotp(input: { otp: string }): Promise<{ recoveryCodes: string[] }>;
  /** Removes TOTP and its recovery codes (the password again). */
  removeTotp(input: { password: string }): Promise<void>;
  /** 10 new recovery codes replacing the old ones (the password again). */
  regenerateRecoveryCodes(input: { password: string }): Promise<{ recoveryCodes: string[] }>;
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
