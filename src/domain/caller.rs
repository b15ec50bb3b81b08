//! Who is calling: the credential of a request, checked once, as a [`Caller`].
//!
//! `services::auth::authenticate` makes one from a request's credential. A `Caller` cannot be
//! built outside this crate (it is `non_exhaustive`); inside it, it is made from a verified
//! access token's claims or a checked API key, through the two constructors below, with the
//! roles its user holds now (read at most `REVOCATION_DELAY_SECONDS` ago).

use crate::domain::store::ApiKey;
use crate::domain::token::AccessClaims;

/// How the caller proved who they are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CredentialKind {
    /// An access token (JWT) from login, register or refresh.
    AccessToken,
    /// An API key (`gk_…`).
    ApiKey,
    /// A scoped token (a JWT with `act`, from `POST /auth/token`): the proxy, `/auth/me`,
    /// `/auth/whoami` and minting within its own scope, nothing else.
    ScopedToken,
    /// The admin console's session cookie (only on `/admin/…`).
    ConsoleSession,
    /// A token of a trusted external issuer (`TRUSTED_ISSUERS`; only on proxied routes and
    /// `/auth/me`).
    ExternalToken,
}

impl CredentialKind {
    /// The name sent upstream and written to logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::AccessToken => "access_token",
            Self::ApiKey => "api_key",
            Self::ScopedToken => "scoped_token",
            Self::ConsoleSession => "console_session",
            Self::ExternalToken => "external_token",
        }
    }
}

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Caller {
    /// The user id (`usr_…`); for an API key, its owner.
    pub user_id: String,
    /// The roles this credential carries that its user still holds.
    pub roles: Vec<String>,
    /// The session (refresh family) an access token belongs to.
    pub session_id: Option<String>,
    /// The proxy routes this credential may use; `None`: every route its roles allow.
    pub scopes: Option<Vec<String>>,
    /// How the caller authenticated.
    pub kind: CredentialKind,
    /// The API key's id (`key_…`) when the credential is a key, or a scoped token minted
    /// from one.
    pub key_id: Option<String>,
    /// When the credential ends, Unix ms: an access token's `exp`, an API key's expiry; `None`:
    /// it never expires (a key without expiry, or the console session, which does not mint).
    pub expires_at: Option<i64>,
    /// The trusted issuer's name (its key in `TRUSTED_ISSUERS`) for an external token.
    pub issuer: Option<String>,
}

impl Caller {
    /// Whether this credential may manage its account (sessions, password, second factors):
    /// only a full access token of a login. API keys, scoped tokens and other issuers' tokens
    /// can do less than the user, so every such endpoint answers them 403 `scope_violation`.
    pub fn manages_account(&self) -> bool {
        self.kind == CredentialKind::AccessToken
    }

    /// The caller of an access token whose signature and claims verified and whose session
    /// and user still stand, carrying the token's roles that its user still holds
    /// (`current_roles`): a role removed since the token was issued no longer counts, and one
    /// added since counts only in tokens issued after it. A scoped token (one with `act`)
    /// also carries its `routes` as the caller's scope and the key it was minted from.
    /// `expires_at` is the token's `exp`, Unix ms.
    pub(crate) fn from_access_token(
        claims: AccessClaims,
        current_roles: &[String],
        expires_at: i64,
    ) -> Self {
        let mut roles = claims.roles;
        roles.retain(|r| current_roles.contains(r));
        let (kind, key_id) = match claims.act {
            Some(act) => (CredentialKind::ScopedToken, act.key_id),
            None => (CredentialKind::AccessToken, None),
        };
        Self {
            user_id: claims.sub,
            roles,
            session_id: claims.sid,
            scopes: claims.routes,
            kind,
            key_id,
            expires_at: Some(expires_at),
            issuer: None,
        }
    }

    /// The caller of an API key that was found live, carrying `roles` (its role while the owner
    /// still holds it).
    pub(crate) fn from_api_key(key: &ApiKey, roles: Vec<String>) -> Self {
        Self {
            user_id: key.owner_user_id.clone(),
            roles,
            session_id: None,
            scopes: Some(key.scopes.clone()),
            kind: CredentialKind::ApiKey,
            key_id: Some(key.id.clone()),
            expires_at: key.expires_at,
            issuer: None,
        }
    }

    /// The caller of a live admin console session (`session_id`) of user `user_id`, who holds
    /// `user_roles` now. Signed in with a password, it carries those roles; bound to an API key,
    /// it carries what the key carries: the key's role while the user still holds it, the key's
    /// scope and its id.
    pub(crate) fn from_console_session(
        user_id: &str,
        user_roles: &[String],
        session_id: &str,
        key: Option<&ApiKey>,
    ) -> Self {
        let (roles, scopes, key_id) = match key {
            None => (user_roles.to_vec(), None, None),
            Some(k) => (
                user_roles
                    .iter()
                    .filter(|r| **r == k.role)
                    .cloned()
                    .collect(),
                Some(k.scopes.clone()),
                Some(k.id.clone()),
            ),
        };
        Self {
            user_id: user_id.to_string(),
            roles,
            session_id: Some(session_id.to_string()),
            scopes,
            kind: CredentialKind::ConsoleSession,
            key_id,
            expires_at: None,
            issuer: None,
        }
    }

    /// The caller of a verified token of trusted issuer `issuer`: `user_id` is the local user's
    /// id for an issuer of known users only, else the issuer's name and the token's user claim
    /// (`name:sub`, never a local id); `roles` what the issuer's configuration grants.
    pub(crate) fn from_external_token(issuer: &str, user_id: String, roles: Vec<String>) -> Self {
        Self {
            user_id,
            roles,
            session_id: None,
            scopes: None,
            kind: CredentialKind::ExternalToken,
            key_id: None,
            // Such a caller never mints (only the proxy and `/auth/me` accept it).
            expires_at: None,
            issuer: Some(issuer.to_string()),
        }
    }

    /// Whether the caller holds `role`.
    pub fn has_role(&self, role: &str) -> bool {
        self.roles.iter().any(|r| r == role)
    }

    /// Whether this credential's scope includes proxy route `route`.
    pub fn may_use_route(&self, route: &str) -> bool {
        self.scopes
            .as_ref()
            .is_none_or(|scopes| scopes.iter().any(|s| s == route))
    }
}
