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

/** What `mintToken` asks for; members left out take Gatehouse's defaults. */
export interface MintTokenRequest {
  /** A subset of the caller's roles (default: all of them). */
  roles?: string[];
  /** A subset of the proxy routes (route names) the caller may use (default: the caller's). */
  routes?: string[];
  /** Lifetime in seconds, at most `SCOPED_TOKEN_MAX_TTL_SECONDS` and the caller's own (default: the longest). */
  ttl?: number;
  /** Another service's audience, one of `SCOPED_TOKEN_AUDIENCES` (Gatehouse itself refuses such a token). */
  aud?: string;
}

/** The answer of `POST /auth/token`. */
export interface ScopedToken {
  access_token: string;
  issued_token_type: 'urn:ietf:params:oauth:token-type:jwt';
  token_type: 'Bearer';
  expires_in: number;
  /** Unix seconds. */
  expires_at: number;
  /** `role:<name>` and `route:<name>` entries, space-separated. */
  scope: string;
  roles: string[];
  /** null: no route limit. */
  routes: string[] | null;
  /** null: Gatehouse's own audience. */
  aud: string | null;
}

export declare class GatehouseError extends Error {
  status: number;
  /** The stable error code, e.g. `invalid_credentials`. */
  code: string;
}

/** `GET /auth/mfa`: the signed-in user's second factor. */
export interface MfaStatus {
  /** TOTP is switched on here (`MFA_ENCRYPTION_KEY` is set). */
  available: boolean;
  enrolled: boolean;
  /** Unix ms of the enrollment, or null. */
  enrolledAt: number | null;
  /** An enrollment was started within 15 minutes and not confirmed. */
  pending: boolean;
  recoveryCodesLeft: number;
}

/**
 * The signed-in user shown again before a TOTP change: the password, or `passkey: true` for an
 * assertion of one of the user's own passkeys (the browser asks for it).
 */
export type ShownAgain = { password: string; passkey?: false } | { passkey: true; password?: undefined };

/** A started TOTP enrollment, to show the user until `confirmTotp`. */
export interface TotpEnrollment {
  /** The secret in base32, for typing into an authenticator app. */
  secret: string;
  /** `otpauth://totp/…`: what the QR code holds. */
  otpauthUri: string;
  /** The URI as a QR code: an SVG document (e.g. `img.src = 'data:image/svg+xml,' + encodeURIComponent(qrSvg)`). */
  qrSvg: string;
  /** Seconds left to confirm. */
  expiresIn: number;
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
  /**
   * Logs in. For an account with TOTP enrolled, a call without `otp` throws a GatehouseError
   * with code `mfa_required` once the password is right (a wrong password is
   * `invalid_credentials`): ask for the code and call again with `otp`, a 6-digit code or a
   * recovery code. A wrong or used code throws `invalid_otp`. Or call again with
   * `passkey: true` to show one of the account's passkeys as the second factor
   * (`navigator.credentials.get`); another user's passkey throws `passkey_user_mismatch`.
   */
  login(input: { email: string; password: string; otp?: string | null; passkey?: boolean }): Promise<User>;
  /** The signed-in user's second factor. */
  mfaStatus(): Promise<MfaStatus>;
  /** Starts a TOTP enrollment (the password or a passkey again); an enrolled one stays until confirmed. */
  enrollTotp(input: ShownAgain): Promise<TotpEnrollment>;
  /** Confirms it with a code of the new secret; the 10 recovery codes, shown only now. */
  confirmTotp(input: { otp: string }): Promise<{ recoveryCodes: string[] }>;
  /** Removes TOTP and its recovery codes (the password or a passkey again). */
  removeTotp(input: ShownAgain): Promise<void>;
  /** 10 new recovery codes replacing the old ones (the password or a passkey again). */
  regenerateRecoveryCodes(input: ShownAgain): Promise<{ recoveryCodes: string[] }>;
  /** Ends the session on the server (every tab, the cookie) and in every tab of this site. */
  logout(): Promise<void>;
  /** The current user from `GET /auth/me`, or null when logged out. */
  me(): Promise<User | null>;
  /**
   * A scoped token for less than this session can do (`POST /auth/token`), e.g. a 5-minute
   * token for one route to hand to another service. Throws a GatehouseError when refused.
   */
  mintToken(request?: MintTokenRequest): Promise<ScopedToken>;
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
