//! Who is calling: the credential of a request, checked once, as a [`Caller`].
//!
//! The proxy and every endpoint that accepts more than one kind of credential go through
//! [`authenticate`]. Access tokens are checked from their signature and claims alone (no storage
//! read) through the isolate's verify cache, so a token costs one Ed25519 check per isolate.

use crate::domain::apikey::{hash, well_formed, TOUCH_INTERVAL_MS};
use crate::domain::caller::Caller;
use crate::domain::store::{Store, User};
use crate::primitives::error::{ConfigError, Error, TokenRejection};
use crate::primitives::http::Request;
use crate::primitives::platform::Pbkdf2;
use crate::primitives::secrets::Pepper;
use crate::services::Services;

/// The caller of `req`: `Ok(None)` when no credential was sent, an error when one was sent and
/// is not valid.
pub async fn authenticate<S: Store, H: Pbkdf2>(
    svc: &Services<'_, S, H>,
    req: &Request,
) -> Result<Option<Caller>, Error> {
    let Some(token) = req.bearer()? else {
        return Ok(None);
    };
    if token.starts_with(crate::domain::apikey::PREFIX) {
        return authenticate_key(svc, token).await.map(Some);
    }
    authenticate_access_token(svc, token).map(Some)
}

/// The caller of an access token, verified through the isolate's verify cache: the one way an
/// access token is checked.
pub fn authenticate_access_token<S, H>(
    svc: &Services<'_, S, H>,
    token: &str,
) -> Result<Caller, Error> {
    let config = svc.config;
    let verified = config.tokens.verify_cache.verify(
        &config.tokens.keys,
        token,
        svc.clock.now_ms(),
        config.tokens.clock_leeway_secs,
        &config.tokens.issuer,
        &config.tokens.audience,
    )?;
    Ok(Caller::from_access_token(verified.claims))
}

/// The stored user `user_id` if it exists and is enabled (`None` otherwise): the one "user
/// enabled" check of a credential's owner.
pub async fn enabled_user<S: Store, H>(
    svc: &Services<'_, S, H>,
    user_id: &str,
) -> Result<Option<User>, Error> {
    Ok(svc.store.user_by_id(user_id).await?.filter(|u| !u.disabled))
}

/// Refuses an access token whose session (`session_id`, its `sid`) was revoked or is not
/// `user_id`'s: sensitive endpoints need the session still standing, not only the token
/// unexpired. A token without a session passes.
pub async fn check_token_session<S: Store, H>(
    svc: &Services<'_, S, H>,
    user_id: &str,
    session_id: Option<&str>,
) -> Result<(), Error> {
    let Some(sid) = session_id else {
        return Ok(());
    };
    let family = svc.store.family(sid).await?;
    if family.is_none_or(|f| f.revoked_at.is_some() || f.user_id != user_id) {
        return Err(Error::InvalidToken(TokenRejection::Claims));
    }
    Ok(())
}

/// The pepper, or `misconfigured` naming it (for minting).
pub fn pepper<'a, S, H>(svc: &'a Services<'_, S, H>) -> Result<&'a Pepper, Error> {
    svc.config.accounts.api_key_pepper.as_ref().ok_or_else(|| {
        Error::Misconfigured(ConfigError::new(
            "API_KEY_PEPPER",
            "missing: API keys need it (`wrangler secret put API_KEY_PEPPER`)",
        ))
    })
}

/// The caller of a `gk_…` bearer. Unknown, revoked, expired, of a disabled owner, or with API
/// keys switched off (no pepper): 401 `invalid_api_key`.
pub async fn authenticate_key<S: Store, H: Pbkdf2>(
    svc: &Services<'_, S, H>,
    key: &str,
) -> Result<Caller, Error> {
    let Some(pepper) = svc.config.accounts.api_key_pepper.as_ref() else {
        return Err(Error::InvalidApiKey(
            "API keys are off: API_KEY_PEPPER is not set",
        ));
    };
    if !well_formed(key) {
        return Err(Error::InvalidApiKey("malformed"));
    }
    let Some(found) = svc.store.api_key_by_hash(&hash(pepper, key)).await? else {
        return Err(Error::InvalidApiKey("unknown"));
    };
    let now = svc.clock.now_ms();
    let k = &found.key;
    if k.revoked_at.is_some() {
        return Err(Error::InvalidApiKey("revoked"));
    }
    if k.expires_at.is_some_and(|e| e <= now) {
        return Err(Error::InvalidApiKey("expired"));
    }
    if found.owner_disabled {
        return Err(Error::InvalidApiKey("owner disabled"));
    }
    if k.last_used_at.is_none_or(|t| t <= now - TOUCH_INTERVAL_MS) {
        svc.store
            .touch_api_key(&k.id, now, TOUCH_INTERVAL_MS)
            .await?;
    }
    // The key's role counts only while its owner still holds it.
    let roles = if found.owner_roles.contains(&k.role) {
        vec![k.role.clone()]
    } else {
        Vec::new()
    };
    Ok(Caller::from_api_key(k, roles))
}
