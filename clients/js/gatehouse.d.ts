/** Types of the Gatehouse browser client (`gatehouse.js`). */

export interface User {
  id: string;
  email: string;
  name: string | null;
  roles: string[];
}

export interface SessionState {
  user: User | null;
  authenticated: boolean;
  /** What changed it: `login`, `restore`, `refresh`, `logout`, `expired`. */
  reason: string;
}

export interface ClientOptions {
  /** Absolute URL of the Gatehouse, e.g. `https://example.com` or `https://auth.example.com`. */
  baseUrl: string;
  /** Restore the session from the refresh cookie on creation (default true). */
  restore?: boolean;
  /** For tests: a `fetch` implementation. */
  fetch?: typeof fetch;
  /** For tests: the clock in ms. */
  now?: () => number;
  /** For tests: a `LockManager` (default `navigator.locks`; `null` disables cross-tab locking). */
  locks?: LockManager | null;
  /** For tests: a `BroadcastChannel` constructor (`null` disables cross-tab sharing). */
  BroadcastChannel?: typeof BroadcastChannel | null;
  /** For tests: a `CredentialsContainer` (default `navigator.credentials`), for passkeys. */
  credentials?: Pick<CredentialsContainer, 'create' | 'get'>;
}

/** A registered passkey, as `GET /auth/passkeys` lists it. Times are Unix ms. */
export interface Passkey {
  id: string;
  name: string;
  credential_id: string;
  algorithm: 'ES256' | 'EdDSA';
  aaguid: string;
  backup_eligible: boolean;
  backed_up: boolean;
  transports: string[];
  created_at: number;
  last_used_at: number | null;
  /** Set when a signature-counter regression blocked the passkey. */
  flagged_at: number | null;
}

export declare class GatehouseError extends Error {
  status: number;
  /** The stable error code, e.g. `invalid_credentials`. */
  code: string;
}

export interface GatehouseClient {
  /** Resolves once the session of the refresh cookie is restored (the user) or known absent (null). */
  readonly ready: Promise<User | null>;
  readonly user: User | null;
  readonly authenticated: boolean;
  /**
   * Creates the account and logs in. Where registration hides accounts
   * (`REGISTRATION_ENUMERATION=hide`, answered 202 without a session) it logs in right after;
   * a taken email then fails as `invalid_credentials`, like a login with a wrong password.
   */
  register(input: { email: string; password: string; name?: string }): Promise<User>;
  login(input: { email: string; password: string }): Promise<User>;
  /** Ends the session on the server (every tab, the cookie) and in every tab of this site. */
  logout(): Promise<void>;
  /** The current user from `GET /auth/me`, or null when logged out. */
  me(): Promise<User | null>;
  /**
   * Creates a passkey for the signed-in user (`navigator.credentials.create`) and stores it.
   * Throws `GatehouseError` (`no_auth` when signed out, `passkey_exists`, …) or the browser's
   * `DOMException` (`NotAllowedError` when the user cancels).
   */
  registerPasskey(input?: { name?: string }): Promise<Passkey>;
  /**
   * Signs in with a passkey, no email typed (`navigator.credentials.get` with no allowed
   * credentials): the same session as `login`. `mediation: 'conditional'` for autofill UI.
   */
  loginWithPasskey(input?: { mediation?: CredentialMediationRequirement }): Promise<User>;
  /** The signed-in user's passkeys, newest first. */
  listPasskeys(): Promise<Passkey[]>;
  /** Removes one of the signed-in user's passkeys. */
  deletePasskey(id: string): Promise<void>;
  /** `fetch` with the Bearer token added; refreshes before expiry and once on a 401. */
  fetch(path: string, init?: RequestInit): Promise<Response>;
  /** Refreshes now (one refresh at a time across tabs); the session, or null when none. */
  refresh(): Promise<unknown>;
  /** A fresh access token, or null when logged out. */
  getAccessToken(): Promise<string | null>;
  /** Calls `listener` on every session change; returns the unsubscribe function. */
  onChange(listener: (state: SessionState) => void): () => void;
  /** Stops listening to other tabs. */
  close(): void;
}

export declare function createClient(options: ClientOptions): GatehouseClient;
