//! The storage contract: what Gatehouse needs to remember, and nothing about how.
//!
//! Two implementations: [`memory::MemoryStore`] (the native tests) and [`sql::SqlStore`], whose
//! statements the Workers adapter runs on D1 and the `gatehouse` CLI through wrangler. Both are held to one contract suite (`crate::domain::contract`, compiled for tests and the `selftest` build),
//! run natively against memory by `cargo test` and inside workerd against real D1.
//!
//! Every method that changes more than one row does so atomically (one D1 `batch()`, one lock
//! in memory). Refresh rotation is a single conditional step that only one caller can win; see
//! [`Store::rotate_refresh`] and docs/storage-schema.md.

pub mod memory;
pub mod sql;

use std::fmt;

use crate::primitives::error::Error;

/// Declares a stored hash: a string that is only ever made by hashing (or read back from
/// storage), so a plaintext credential cannot be stored where a hash belongs by mistake.
macro_rules! stored_hash {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, Hash)]
        pub struct $name(String);

        impl $name {
            /// A value read back from storage, where only hashes are written.
            pub fn from_stored(stored: String) -> Self {
                Self(stored)
            }

            /// The stored text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(concat!(stringify!($name), "(…)"))
            }
        }
    };
}

stored_hash!(
    /// A refresh token's stored form: SHA-256 (hex) of the token
    /// (`crate::domain::refresh::hash`).
    TokenHash
);
stored_hash!(
    /// An API key's stored form: HMAC-SHA256 (hex) under the pepper
    /// (`crate::domain::apikey::hash`).
    KeyHash
);
stored_hash!(
    /// A recovery code's stored form: HMAC-SHA256 (hex) of the user's id and the code
    /// (`crate::domain::mfa::recovery_hash`).
    RecoveryCodeHash
);
stored_hash!(
    /// A password's stored form: a PBKDF2 PHC string (`crate::domain::password::hash`).
    PasswordPhc
);

/// A user account.
#[derive(Clone, PartialEq, Eq)]
pub struct User {
    /// `usr_…`.
    pub id: String,
    /// Trimmed, lower-cased; unique.
    pub email: String,
    /// Display name.
    pub name: Option<String>,
    /// PHC string.
    pub password_hash: PasswordPhc,
    /// Role names.
    pub roles: Vec<String>,
    /// A disabled user cannot log in or refresh.
    pub disabled: bool,
    /// Unix ms.
    pub created_at: i64,
    /// Unix ms.
    pub updated_at: i64,
    /// Whether a TOTP second factor is enrolled (read with the user, never written with it).
    pub totp: bool,
}

impl fmt::Debug for User {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("User")
            .field("id", &self.id)
            .field("email", &self.email)
            .field("name", &self.name)
            .field("password_hash", &"<redacted>")
            .field("roles", &self.roles)
            .field("disabled", &self.disabled)
            .field("totp", &self.totp)
            .finish_non_exhaustive()
    }
}

/// A new refresh family with its first token (stored as a hash).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewFamily {
    /// `fam_…`.
    pub id: String,
    /// The owner.
    pub user_id: String,
    /// Unix ms.
    pub created_at: i64,
    /// Absolute end of the family, Unix ms.
    pub expires_at: i64,
    /// The login's `User-Agent`.
    pub user_agent: Option<String>,
    /// SHA-256 (hex) of the first refresh token.
    pub first_token_hash: TokenHash,
    /// Set for an admin console session (its token is never rotated; see docs/console.md).
    pub console: Option<ConsoleVia>,
}

/// How an admin console session (a family whose one token lives in the console cookie) was
/// signed in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConsoleVia {
    /// With the admin's email and password.
    Password,
    /// With an API key (`key_…`): the session lives only as long as the key does.
    ApiKey(String),
}

impl ConsoleVia {
    /// The name shown in session lists and audit events.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Password => "password",
            Self::ApiKey(_) => "api_key",
        }
    }

    /// The key a key-bound session lives on.
    pub fn api_key_id(&self) -> Option<&str> {
        match self {
            Self::Password => None,
            Self::ApiKey(id) => Some(id),
        }
    }
}

/// A refresh family.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Family {
    /// `fam_…`.
    pub id: String,
    /// The owner.
    pub user_id: String,
    /// Unix ms.
    pub created_at: i64,
    /// Unix ms of the last successful refresh (or of creation).
    pub last_used_at: i64,
    /// Unix ms.
    pub expires_at: i64,
    /// Unix ms, if revoked.
    pub revoked_at: Option<i64>,
    /// Why it was revoked.
    pub revoke_reason: Option<String>,
    /// The login's `User-Agent`.
    pub user_agent: Option<String>,
    /// Set for an admin console session.
    pub console: Option<ConsoleVia>,
}

/// Where a session (refresh family) stands at an instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FamilyStatus {
    /// Revoked (logout, reuse, password change, an admin).
    Revoked,
    /// Past its absolute lifetime.
    Expired,
    /// Not refreshed within the idle timeout.
    Idle,
    /// Live: its refresh token still works.
    Active,
}

impl FamilyStatus {
    /// The name shown in session lists.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Revoked => "revoked",
            Self::Expired => "expired",
            Self::Idle => "idle",
            Self::Active => "active",
        }
    }
}

impl Family {
    /// Where this family stands at `now` with an idle timeout of `idle_ms`: the one definition
    /// of a live session.
    pub fn status(&self, now: i64, idle_ms: i64) -> FamilyStatus {
        if self.revoked_at.is_some() {
            FamilyStatus::Revoked
        } else if self.expires_at <= now {
            FamilyStatus::Expired
        } else if self.last_used_at + idle_ms <= now {
            FamilyStatus::Idle
        } else {
            FamilyStatus::Active
        }
    }

    /// Whether the family is live at `now`: not revoked, not expired, not idled out.
    pub fn is_live(&self, now: i64, idle_ms: i64) -> bool {
        self.status(now, idle_ms) == FamilyStatus::Active
    }
}

/// One rotation attempt: replace `token_hash` by `successor_hash` unless already rotated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rotation {
    /// SHA-256 (hex) of the presented token.
    pub token_hash: TokenHash,
    /// SHA-256 (hex) of this caller's freshly made successor.
    pub successor_hash: TokenHash,
    /// The successor sealed under the presented token (see `crate::domain::refresh::seal`).
    pub successor_sealed: String,
    /// Unix ms.
    pub now: i64,
    /// The family must have been used after this instant (idle timeout), Unix ms.
    pub idle_cutoff: i64,
    /// Only a token of this family may rotate (the session a cookie refresh's CSRF token names).
    /// The counter is not touched either for a token of another family.
    pub family: Option<String>,
    /// Count the attempt on the family's refresh counter (`refresh_family:<family id>`) and
    /// rotate only if the count, this attempt included, is within the limit.
    pub limit: Option<RotationLimit>,
}

/// The refresh rate limit a [`Rotation`] counts itself against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RotationLimit {
    /// The fixed window's length, ms.
    pub window_ms: i64,
    /// Attempts allowed per family and window.
    pub max: i64,
}

/// The key prefix of a family's refresh counter among the rate limits.
pub const REFRESH_FAMILY_BUCKET: &str = "refresh_family";

/// What a rotation attempt found, all read in the transaction that made it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RotationOutcome {
    /// The token and its family as they stand after the attempt; `None` for an unknown token.
    pub state: Option<TokenState>,
    /// The family's refresh counter after this attempt, when the rotation had a limit and the
    /// token (of the required family) exists.
    pub counted: Option<RateHit>,
    /// The family's user.
    pub user: Option<User>,
}

/// A refresh token and its family as they stand after a rotation attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenState {
    /// The token's family.
    pub family: Family,
    /// 0 for the login's token.
    pub generation: i64,
    /// When it was rotated, if it was.
    pub rotated_at: Option<i64>,
    /// The hash of the successor that won the rotation.
    pub successor_hash: Option<TokenHash>,
    /// That successor, sealed under this token.
    pub successor_sealed: Option<String>,
}

/// A security event for the audit log. Never holds a secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEvent {
    /// Unix ms.
    pub at: i64,
    /// `login_succeeded`, `refresh_token_reused`, …
    pub kind: String,
    /// Who did it.
    pub actor_user_id: Option<String>,
    /// Whom it concerns.
    pub subject_user_id: Option<String>,
    /// The refresh family concerned.
    pub family_id: Option<String>,
    /// Client IP.
    pub ip: Option<String>,
    /// Client `User-Agent`.
    pub user_agent: Option<String>,
    /// A JSON object with details such as a revocation's cause.
    pub detail: Option<serde_json::Value>,
}

/// Why a family was revoked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RevokeReason {
    /// The user logged out.
    Logout,
    /// A rotated token was presented outside the grace window.
    Reuse,
    /// The password changed.
    PasswordChange,
    /// An operator revoked it.
    Admin,
}

impl RevokeReason {
    /// The stored value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Logout => "logout",
            Self::Reuse => "reuse",
            Self::PasswordChange => "password_change",
            Self::Admin => "admin",
        }
    }
}

/// An API key as stored: its hash, never the key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKey {
    /// `key_…`.
    pub id: String,
    /// Hex HMAC-SHA256 of the key under `API_KEY_PEPPER`.
    pub key_hash: KeyHash,
    /// What it is for, as its minter said.
    pub label: String,
    /// The user it acts as.
    pub owner_user_id: String,
    /// The admin who minted it; `None` for the CLI.
    pub created_by: Option<String>,
    /// The one role it carries.
    pub role: String,
    /// Proxy route names it may use.
    pub scopes: Vec<String>,
    /// Unix ms.
    pub created_at: i64,
    /// Unix ms; `None`: never expires.
    pub expires_at: Option<i64>,
    /// Unix ms, written at most once a minute.
    pub last_used_at: Option<i64>,
    /// Unix ms, if revoked.
    pub revoked_at: Option<i64>,
}

/// An API key found by its hash, with what authentication needs of its owner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyLookup {
    /// The key.
    pub key: ApiKey,
    /// The owner's current roles.
    pub owner_roles: Vec<String>,
    /// Whether the owner is disabled.
    pub owner_disabled: bool,
}

/// What authenticating an access token needs to know of its session (refresh family) and
/// the session's user, read in one indexed lookup ([`Store::session_liveness`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionLiveness {
    /// The family's owner.
    pub user_id: String,
    /// Unix ms, if the family was revoked.
    pub revoked_at: Option<i64>,
    /// The family's absolute end, Unix ms.
    pub expires_at: i64,
    /// Whether the owner is disabled.
    pub user_disabled: bool,
    /// The owner's current roles.
    pub user_roles: Vec<String>,
}

impl SessionLiveness {
    /// Whether the session still stands at `now` for a token of `user_id`: not revoked, not
    /// past its absolute lifetime, owned by `user_id`, whose account is enabled. (An idle
    /// session still stands for the access tokens it issued: idleness only ends refreshing.)
    pub fn stands_for(&self, user_id: &str, now: i64) -> bool {
        self.revoked_at.is_none()
            && self.expires_at > now
            && self.user_id == user_id
            && !self.user_disabled
    }
}

/// A page of users: ordered by email, after `after_email`, optionally filtered.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserQuery {
    /// Case-insensitive substring of the email or name.
    pub search: Option<String>,
    /// Only users whose email sorts after this one (the paging cursor).
    pub after_email: Option<String>,
    /// At most this many.
    pub limit: u32,
}

/// A page of audit events, newest first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditQuery {
    /// Only this kind.
    pub kind: Option<String>,
    /// Only events by this actor.
    pub actor_user_id: Option<String>,
    /// Only events about this subject.
    pub subject_user_id: Option<String>,
    /// Only events at or after this instant (Unix ms).
    pub since: Option<i64>,
    /// Only events before this instant (Unix ms).
    pub until: Option<i64>,
    /// Only events with an id below this one (the paging cursor).
    pub before_id: Option<i64>,
    /// At most this many.
    pub limit: u32,
}

/// An audit event with its row id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredEvent {
    /// Increasing row id.
    pub id: i64,
    /// The event.
    pub event: AuditEvent,
}

/// A rate-limit counter after one hit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateHit {
    /// Hits in the current window, this one included.
    pub count: i64,
    /// Start of the current window, Unix ms.
    pub window_start: i64,
}

/// A rate-limit counter to hit, and its limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Counter {
    /// `<bucket>:<subject>`.
    pub key: String,
    /// Hits allowed per window.
    pub limit: i64,
}

/// What [`Store::login_lookup`] counts and reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginLookup<'a> {
    /// The counters, in the order they are checked.
    pub counters: &'a [Counter],
    /// Their window's length, ms.
    pub window_ms: i64,
    /// Unix ms.
    pub now: i64,
    /// The (normalised) email to read the user of; `None` for none.
    pub email: Option<&'a str>,
}

/// What [`Store::login_lookup`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginRead {
    /// One per counter: its state after this hit, or `None` when a counter before it was
    /// already over its limit and this one was not counted.
    pub hits: Vec<Option<RateHit>>,
    /// The user with the email.
    pub user: Option<User>,
}

/// A rate-limit counter as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateCounter {
    /// `<bucket>:<subject>`, the subject as stored (a network, a keyed hash, a family id).
    pub key: String,
    /// Hits in the counter's window.
    pub count: i64,
    /// Start of its window, Unix ms.
    pub window_start: i64,
    /// End of its window, Unix ms.
    pub expires_at: i64,
}

/// A user's TOTP second factor as stored: the secrets only sealed (`crate::domain::mfa`).
#[derive(Clone, PartialEq, Eq)]
pub struct TotpRecord {
    /// The enrolled secret, sealed; `None` while only an enrollment is pending.
    pub secret_sealed: Option<String>,
    /// The newest time step whose code was accepted: codes of it and before are refused.
    pub last_step: i64,
    /// Unix ms of the confirmation.
    pub enrolled_at: Option<i64>,
    /// A started, unconfirmed enrollment's secret, sealed.
    pub pending_sealed: Option<String>,
    /// Unix ms the pending enrollment was started.
    pub pending_at: Option<i64>,
    /// Unused recovery codes.
    pub recovery_codes_left: u64,
}

impl fmt::Debug for TotpRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TotpRecord")
            .field("enrolled", &self.secret_sealed.is_some())
            .field("last_step", &self.last_step)
            .field("enrolled_at", &self.enrolled_at)
            .field("pending", &self.pending_sealed.is_some())
            .field("pending_at", &self.pending_at)
            .field("recovery_codes_left", &self.recovery_codes_left)
            .finish()
    }
}

/// The confirmation of a pending TOTP enrollment ([`Store::confirm_totp`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TotpConfirmation {
    /// The user.
    pub user_id: String,
    /// The pending secret the code was checked against, sealed as stored.
    pub pending_sealed: String,
    /// The step of the code that confirmed it (accepted: no later use of it).
    pub step: i64,
    /// A fresh random id of this confirmation (what its later statements check they follow).
    pub enrollment_id: String,
    /// The new recovery codes' hashes (replacing any earlier ones).
    pub recovery_codes: Vec<RecoveryCodeHash>,
    /// Unix ms.
    pub now: i64,
}

/// A registered passkey (WebAuthn credential). Nothing in it is a secret: the private key never
/// leaves the authenticator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Passkey {
    /// `pk_…`.
    pub id: String,
    /// The owner.
    pub user_id: String,
    /// Base64url of the credential id; unique.
    pub credential_id: String,
    /// Base64url of the credential's COSE_Key.
    pub public_key: String,
    /// COSE algorithm (-7 ES256, -8 EdDSA).
    pub algorithm: i64,
    /// The authenticator's signature counter, last seen.
    pub sign_count: i64,
    /// The owner's label.
    pub name: String,
    /// Hex AAGUID of the authenticator model (all zero when not told).
    pub aaguid: String,
    /// May be backed up (synced).
    pub backup_eligible: bool,
    /// Was backed up when last seen.
    pub backed_up: bool,
    /// Transports the browser reported (`internal`, `usb`, `hybrid`…).
    pub transports: Vec<String>,
    /// Unix ms.
    pub created_at: i64,
    /// Unix ms of the last sign-in with it.
    pub last_used_at: Option<i64>,
    /// Unix ms of a signature-counter regression; a flagged passkey is refused.
    pub flagged_at: Option<i64>,
}

/// An open WebAuthn ceremony's challenge, stored as its hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    /// Hex SHA-256 of the challenge.
    pub challenge_hash: String,
    /// `register` or `login`.
    pub ceremony: String,
    /// The signed-in user a registration is for; `None` for a login.
    pub user_id: Option<String>,
    /// Unix ms.
    pub expires_at: i64,
}

/// A sign-in with a passkey: its counter moves from `old_count` to `new_count`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasskeyUse {
    /// `pk_…`.
    pub id: String,
    /// The counter as read before verifying.
    pub old_count: i64,
    /// The counter the assertion carried.
    pub new_count: i64,
    /// The assertion's backup state.
    pub backed_up: bool,
    /// Unix ms.
    pub now: i64,
}

/// What the scheduled prune deletes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PruneCutoffs {
    /// Unix ms.
    pub now: i64,
    /// Families that ended (expired, idled out or were revoked) before this instant go, with
    /// their tokens.
    pub families_ended_before: i64,
    /// The idle timeout, ms (a family idles out at `last_used_at + idle_ms`).
    pub idle_ms: i64,
    /// Audit events before this instant go.
    pub audit_before: i64,
}

/// How many rows a prune deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct PruneCounts {
    /// Refresh families.
    pub families: u64,
    /// Their refresh tokens.
    pub tokens: u64,
    /// Audit events.
    pub audit_events: u64,
    /// Rate-limit counters whose window has passed.
    pub rate_limits: u64,
    /// WebAuthn challenges past their expiry.
    pub challenges: u64,
}

/// What Gatehouse stores. Implementations must keep each method atomic.
#[allow(async_fn_in_trait)] // Workers futures are !Send; nothing here needs Send.
pub trait Store {
    /// Succeeds when the storage answers and has the schema.
    /// Fails with [`Error::Unavailable`] (`/readyz` answers it as it is).
    async fn ping(&self) -> Result<(), Error>;

    /// Inserts a user and, optionally, its first refresh family and an audit event, atomically.
    /// A taken email is [`Error::EmailTaken`] and writes nothing.
    async fn create_user(
        &self,
        user: &User,
        family: Option<&NewFamily>,
        event: Option<&AuditEvent>,
    ) -> Result<(), Error>;

    /// The user with this (normalised) email.
    async fn user_by_email(&self, email: &str) -> Result<Option<User>, Error>;

    /// The user with this id.
    async fn user_by_id(&self, id: &str) -> Result<Option<User>, Error>;

    /// Replaces a password hash without revoking anything (parameter upgrade at login).
    async fn upgrade_password_hash(
        &self,
        user_id: &str,
        phc: &PasswordPhc,
        now: i64,
    ) -> Result<(), Error>;

    /// Sets a new password hash, revokes every live family of the user except `keep` and
    /// records `event` with `revoked_sessions` (how many families were revoked) added to its
    /// detail, atomically. Returns how many families were revoked.
    async fn change_password(
        &self,
        user_id: &str,
        phc: &PasswordPhc,
        keep: Option<&str>,
        now: i64,
        event: &AuditEvent,
    ) -> Result<u64, Error>;

    /// Inserts a family, its first token and optionally an audit event, atomically.
    async fn create_family(
        &self,
        family: &NewFamily,
        event: Option<&AuditEvent>,
    ) -> Result<(), Error>;

    /// The atomic rotation step, one round trip. In one transaction: with a `limit`, count the
    /// attempt on the family's counter (if the token exists and is of `family`, when given). If
    /// the token exists, is of `family` (when given), is not yet rotated, the count is within
    /// the limit, and its family is neither revoked, nor past `expires_at`, nor idle since
    /// before `idle_cutoff`, mark it rotated by this caller's successor, insert the successor as
    /// the family's live token, touch the family, and drop the sealed successor of every other
    /// token of the family (only the newest rotation keeps one). Then, whether or not this
    /// caller won, return the token's state as it stands, the counter and the family's user.
    /// The caller won exactly when the returned `successor_hash` equals its own.
    async fn rotate_refresh(&self, rotation: &Rotation) -> Result<RotationOutcome, Error>;

    /// The state of a token without changing anything.
    async fn token_state(&self, token_hash: &TokenHash) -> Result<Option<TokenState>, Error>;

    /// Revokes a family if it is still live and, only if this call revoked it, records `event`,
    /// atomically. Returns whether this call revoked it.
    async fn revoke_family(
        &self,
        family_id: &str,
        reason: RevokeReason,
        now: i64,
        event: Option<&AuditEvent>,
    ) -> Result<bool, Error>;

    /// A family by id.
    async fn family(&self, family_id: &str) -> Result<Option<Family>, Error>;

    /// The family `family_id` joined with its user, in one indexed read: what an access
    /// token's liveness check needs. `None` when no such family exists.
    async fn session_liveness(&self, family_id: &str) -> Result<Option<SessionLiveness>, Error>;

    /// How many live (unrotated) tokens a family holds.
    async fn live_tokens(&self, family_id: &str) -> Result<u64, Error>;

    /// Appends an audit event.
    async fn record_event(&self, event: &AuditEvent) -> Result<(), Error>;

    /// The newest audit events first, at most `limit`, optionally of one subject.
    async fn audit_events(
        &self,
        subject_user_id: Option<&str>,
        limit: u32,
    ) -> Result<Vec<AuditEvent>, Error>;

    // ----- users (admin)

    /// A page of users ordered by email.
    async fn list_users(&self, query: &UserQuery) -> Result<Vec<User>, Error>;

    /// Replaces a user's roles and records `event`, atomically. `false`: no such user.
    async fn set_roles(
        &self,
        user_id: &str,
        roles: &[String],
        now: i64,
        event: &AuditEvent,
    ) -> Result<bool, Error>;

    /// Disables or enables a user and records `event`, atomically; disabling also revokes every
    /// live family of the user (reason `admin`). `None`: no such user; otherwise how many
    /// families were revoked.
    async fn set_disabled(
        &self,
        user_id: &str,
        disabled: bool,
        now: i64,
        event: &AuditEvent,
    ) -> Result<Option<u64>, Error>;

    /// Every family of a user, newest first.
    async fn user_families(&self, user_id: &str) -> Result<Vec<Family>, Error>;

    /// Revokes every live family of a user and, only if one was revoked, records `event`,
    /// atomically. Returns how many were revoked.
    async fn revoke_user_families(
        &self,
        user_id: &str,
        reason: RevokeReason,
        now: i64,
        event: &AuditEvent,
    ) -> Result<u64, Error>;

    // ----- API keys

    /// Inserts a key and records `event`, atomically.
    async fn create_api_key(&self, key: &ApiKey, event: &AuditEvent) -> Result<(), Error>;

    /// The key with this hash, with its owner's roles and status.
    async fn api_key_by_hash(&self, key_hash: &KeyHash) -> Result<Option<KeyLookup>, Error>;

    /// A key by id.
    async fn api_key(&self, id: &str) -> Result<Option<ApiKey>, Error>;

    /// The key with this id, with its owner's roles and status, in one indexed read: what a
    /// scoped token minted from the key needs.
    async fn api_key_lookup(&self, id: &str) -> Result<Option<KeyLookup>, Error>;

    /// Keys, newest first, optionally of one owner.
    async fn list_api_keys(&self, owner_user_id: Option<&str>) -> Result<Vec<ApiKey>, Error>;

    /// Revokes a key if not yet revoked and, only then, records `event`, atomically. Returns
    /// whether this call revoked it.
    async fn revoke_api_key(&self, id: &str, now: i64, event: &AuditEvent) -> Result<bool, Error>;

    /// Sets `last_used_at = now` unless it was set less than `min_interval_ms` ago. Returns
    /// whether it wrote.
    async fn touch_api_key(&self, id: &str, now: i64, min_interval_ms: i64) -> Result<bool, Error>;

    // ----- the TOTP second factor

    /// The user's TOTP record (enrolled or pending), with the count of unused recovery codes.
    async fn totp(&self, user_id: &str) -> Result<Option<TotpRecord>, Error>;

    /// Stores a started enrollment's sealed secret, replacing an earlier pending one and
    /// keeping an enrolled one, and records `event`, atomically. `false`: no such user.
    async fn start_totp(
        &self,
        user_id: &str,
        pending_sealed: &str,
        now: i64,
        event: &AuditEvent,
    ) -> Result<bool, Error>;

    /// Compare-and-set: only if the pending secret is still `pending_sealed`, makes it the
    /// enrolled one (replacing an earlier one) with `last_step = step`, clears the pending one,
    /// replaces the user's recovery codes and records `event`, atomically. Returns whether this
    /// call confirmed it.
    async fn confirm_totp(
        &self,
        confirmation: &TotpConfirmation,
        event: &AuditEvent,
    ) -> Result<bool, Error>;

    /// Compare-and-set: accepts time step `step` of the enrolled secret `secret_sealed` only if
    /// it is still the enrolled one and no code of `step` or later was accepted. Returns whether
    /// this call accepted it.
    async fn use_totp_step(
        &self,
        user_id: &str,
        secret_sealed: &str,
        step: i64,
    ) -> Result<bool, Error>;

    /// Uses up one recovery code of the user: deletes it if it is there. Returns whether this
    /// call used it.
    async fn use_recovery_code(
        &self,
        user_id: &str,
        code: &RecoveryCodeHash,
    ) -> Result<bool, Error>;

    /// Replaces the recovery codes of a user with TOTP enrolled and records `event`,
    /// atomically. `false` (nothing written): TOTP is not enrolled.
    async fn replace_recovery_codes(
        &self,
        user_id: &str,
        codes: &[RecoveryCodeHash],
        now: i64,
        event: &AuditEvent,
    ) -> Result<bool, Error>;

    /// Removes the user's TOTP (enrolled and pending) and recovery codes and, only if one was
    /// enrolled, records `event`, atomically. Returns whether one was enrolled.
    async fn remove_totp(&self, user_id: &str, event: &AuditEvent) -> Result<bool, Error>;

    // ----- rate limits, audit, pruning

    /// Counts one hit on `key` in the fixed window of `window_ms` that holds `now`, in one
    /// atomic step (a newer window starts the count at 1). Windows only move forward: a hit
    /// whose `now` falls in an older window than the stored one (a request that arrived late)
    /// counts against the stored window, whose start is returned.
    async fn hit_rate_limit(&self, key: &str, window_ms: i64, now: i64) -> Result<RateHit, Error>;

    /// A sign-in's storage work before its password check, in one round trip: counts one hit on
    /// each of `lookup.counters` in order (as [`Store::hit_rate_limit`] does), each only while
    /// every counter before it is within its limit, then reads the user with `lookup.email`.
    async fn login_lookup(&self, lookup: &LoginLookup<'_>) -> Result<LoginRead, Error>;

    /// Counters whose window has not ended at `now` and that hold at least `min_count` hits,
    /// the most hit first, at most `limit`.
    async fn busy_rate_limits(
        &self,
        now: i64,
        min_count: i64,
        limit: u32,
    ) -> Result<Vec<RateCounter>, Error>;

    /// Audit events matching `query`, newest first.
    async fn query_audit(&self, query: &AuditQuery) -> Result<Vec<StoredEvent>, Error>;

    /// Deletes what `cutoffs` says, atomically. Live families, their tokens, recent events,
    /// current counters and unexpired challenges stay.
    async fn prune(&self, cutoffs: &PruneCutoffs) -> Result<PruneCounts, Error>;

    // ----- passkeys (WebAuthn)

    /// Stores a ceremony's challenge.
    async fn create_challenge(&self, challenge: &Challenge) -> Result<(), Error>;

    /// Uses up the challenge with this hash if it belongs to `ceremony`: deletes it and returns
    /// it, in one compare-and-set step that only one caller can win (expired or not: the caller
    /// checks `expires_at`). `None`: never issued, already used, or another ceremony's.
    async fn take_challenge(
        &self,
        challenge_hash: &str,
        ceremony: &str,
    ) -> Result<Option<Challenge>, Error>;

    /// Inserts a passkey for an existing user and records `event`, atomically. `false` (and
    /// nothing written): its credential id is already registered.
    async fn create_passkey(&self, passkey: &Passkey, event: &AuditEvent) -> Result<bool, Error>;

    /// The passkey with this (base64url) credential id.
    async fn passkey_by_credential(&self, credential_id: &str) -> Result<Option<Passkey>, Error>;

    /// A user's passkeys, newest first.
    async fn user_passkeys(&self, user_id: &str) -> Result<Vec<Passkey>, Error>;

    /// Records a sign-in: sets the counter to `new_count`, the backup state and
    /// `last_used_at`, only if the counter still is `old_count` and the passkey is not flagged
    /// (compare-and-set). Whether it wrote.
    async fn use_passkey(&self, used: &PasskeyUse) -> Result<bool, Error>;

    /// Flags a passkey (counter regression) unless already flagged and, only then, records
    /// `event`, atomically. Whether this call flagged it.
    async fn flag_passkey(&self, id: &str, now: i64, event: &AuditEvent) -> Result<bool, Error>;

    /// Deletes passkey `id` of `user_id` and, only if it existed, records `event`, atomically.
    /// Whether it was deleted.
    async fn delete_passkey(
        &self,
        user_id: &str,
        id: &str,
        event: &AuditEvent,
    ) -> Result<bool, Error>;
}
