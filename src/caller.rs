//! Who is calling: the credential of a request, checked once, as a [`Caller`].
//!
//! The proxy and every endpoint that accepts more than one kind of credential go through
//! [`authenticate`]. Access tokens are checked from their signature and claims alone (no storage
//! read) through the isolate's verify cache, so a token costs one Ed25519 check per isolate.

use crate::app::Services;
use crate::primitives::error::Error;
use crate::primitives::http::Request;
use crate::primitives::platform::Pbkdf2;
use crate::store::Store;

/// How the caller proved who they are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CredentialKind {
    /// An access token (JWT) from login, register or refresh.
    AccessToken,
    /// An API key (`gk_…`).
    ApiKey,
}

impl CredentialKind {
    /// The name sent upstream and written to logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::AccessToken => "access_token",
            Self::ApiKey => "api_key",
        }
    }
}

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The user id (`usr_…`); for an API key, its owner.
    pub user_id: String,
    /// The roles this credential carries.
    pub roles: Vec<String>,
    /// The session (refresh family) an access token belongs to.
    pub session_id: Option<String>,
    /// The proxy routes this credential may use; `None`: every route its roles allow.
    pub scopes: Option<Vec<String>>,
    /// How the caller authenticated.
    pub kind: CredentialKind,
    /// The API key's id (`key_…`) when the credential is a key.
    pub key_id: Option<String>,
}

impl Caller {
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

/// The caller of `req`: `Ok(None)` when no credential was sent, an error when one was sent and
/// is not valid.
pub async fn authenticate<S: Store, H: Pbkdf2>(
    svc: &Services<'_, S, H>,
    req: &Request,
) -> Result<Option<Caller>, Error> {
    let Some(token) = req.bearer()? else {
        return Ok(None);
    };
    if token.starts_with(crate::apikey::PREFIX) {
        return crate::apikey::authenticate(svc, token).await.map(Some);
    }
    let config = svc.config;
    let verified = config.verify_cache.verify(
        &config.keys,
        token,
        svc.clock.now_ms(),
        config.clock_leeway_secs,
        &config.issuer,
        &config.audience,
    )?;
    let claims = verified.claims;
    Ok(Some(Caller {
        user_id: claims.sub,
        roles: claims.roles,
        session_id: claims.sid,
        scopes: None,
        kind: CredentialKind::AccessToken,
        key_id: None,
    }))
}
