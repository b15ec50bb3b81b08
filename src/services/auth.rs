//! Who is calling: the credential of a request, checked once, as a [`Caller`].
//!
//! The proxy and every endpoint that accepts more than one kind of credential go through
//! [`authenticate`]. An access token's signature and claims are checked through the isolate's
//! verify cache (one Ed25519 check per token and isolate); its session and user, and an API
//! key's row with its owner, through the isolate's liveness cache
//! (`crate::domain::liveness`): one indexed read per session, user or key and isolate at most
//! every `REVOCATION_DELAY_SECONDS`, none in between. A logout, a session revocation, a
//! password change, a disable, a role removal or a key revocation therefore reaches every
//! request within that delay.

use crate::domain::apikey::{hash, well_formed, TOUCH_INTERVAL_MS};
use crate::domain::caller::Caller;
use crate::domain::liveness::{Liveness, LivenessKey, UserLiveness};
use crate::domain::store::{KeyLookup, SessionLiveness, Store, User};
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
    authenticate_access_token(svc, token).await.map(Some)
}

/// The caller of an access token: the one way an access token is checked. Its signature and
/// claims are verified through the isolate's verify cache; then its session (`sid`) must still
/// stand (not revoked, not past its absolute lifetime, its user enabled); for a scoped token
/// minted from an API key (`act.key_id`), that key (not revoked, not expired, its owner the
/// token's user and enabled; the caller's roles at most the key's role while the owner holds
/// it); for a token without either, its user must exist and be enabled, as read at most
/// `REVOCATION_DELAY_SECONDS` ago. The caller carries the token's roles that the user still
/// holds. Anything else: 401 `invalid_token`.
pub async fn authenticate_access_token<S: Store, H>(
    svc: &Services<'_, S, H>,
    token: &str,
) -> Result<Caller, Error> {
    let config = svc.config;
    let now = svc.clock.now_ms();
    let verified = config.tokens.verify_cache.verify(
        &config.tokens.keys,
        token,
        now,
        config.tokens.clock_leeway_secs,
        &config.tokens.issuer,
        &config.tokens.audience,
    )?;
    let claims = verified.claims;
    let key_id = claims.act.as_ref().and_then(|act| act.key_id.as_deref());
    let roles = match (claims.sid.as_deref(), key_id) {
        (Some(sid), _) => match session_liveness(svc, sid, now).await? {
            Some(session) if session.stands_for(&claims.sub, now) => session.user_roles,
            _ => return Err(Error::InvalidToken(TokenRejection::Revoked)),
        },
        // A scoped token minted from an API key lives only as long as the key does.
        (None, Some(key_id)) => match key_liveness(svc, key_id, now).await? {
            Some(found) if found.key.owner_user_id == claims.sub => {
                key_roles(&found, now).map_err(|_| Error::InvalidToken(TokenRejection::Revoked))?
            }
            _ => return Err(Error::InvalidToken(TokenRejection::Revoked)),
        },
        (None, None) => match user_liveness(svc, &claims.sub, now).await? {
            Some(user) if !user.disabled => user.roles,
            _ => return Err(Error::InvalidToken(TokenRejection::Revoked)),
        },
    };
    Ok(Caller::from_access_token(
        claims,
        &roles,
        verified.expires_at.saturating_mul(1000),
    ))
}

/// API key `key_id` with its owner, from the liveness cache or (one read) storage.
async fn key_liveness<S: Store, H>(
    svc: &Services<'_, S, H>,
    key_id: &str,
    now: i64,
) -> Result<Option<KeyLookup>, Error> {
    let (cache, delay) = (
        &svc.config.tokens.liveness_cache,
        svc.config.revocation_delay_ms(),
    );
    let key = LivenessKey::ApiKeyId(key_id.to_string());
    if let Some(Liveness::ApiKeyId(hit)) = cache.get(&key, now, delay) {
        return Ok(hit);
    }
    let read = svc.store.api_key_lookup(key_id).await?;
    cache.put(key, Liveness::ApiKeyId(read.clone()), now, delay);
    Ok(read)
}

/// Session `sid` joined with its user, from the liveness cache or (one read) storage.
async fn session_liveness<S: Store, H>(
    svc: &Services<'_, S, H>,
    sid: &str,
    now: i64,
) -> Result<Option<SessionLiveness>, Error> {
    let (cache, delay) = (
        &svc.config.tokens.liveness_cache,
        svc.config.revocation_delay_ms(),
    );
    let key = LivenessKey::Session(sid.to_string());
    if let Some(Liveness::Session(hit)) = cache.get(&key, now, delay) {
        return Ok(hit);
    }
    let read = svc.store.session_liveness(sid).await?;
    cache.put(key, Liveness::Session(read.clone()), now, delay);
    Ok(read)
}

/// User `user_id`'s status and roles, from the liveness cache or (one read) storage.
async fn user_liveness<S: Store, H>(
    svc: &Services<'_, S, H>,
    user_id: &str,
    now: i64,
) -> Result<Option<UserLiveness>, Error> {
    let (cache, delay) = (
        &svc.config.tokens.liveness_cache,
        svc.config.revocation_delay_ms(),
    );
    let key = LivenessKey::User(user_id.to_string());
    if let Some(Liveness::User(hit)) = cache.get(&key, now, delay) {
        return Ok(hit);
    }
    let read = svc.store.user_by_id(user_id).await?.map(|u| UserLiveness {
        disabled: u.disabled,
        roles: u.roles,
    });
    cache.put(key, Liveness::User(read.clone()), now, delay);
    Ok(read)
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
/// `user_id`'s, read from storage now: sensitive endpoints (the admin API, password change,
/// session management) do not accept the up to `REVOCATION_DELAY_SECONDS` old answer of the
/// liveness cache. A token without a session passes.
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
        return Err(Error::InvalidToken(TokenRejection::Revoked));
    }
    Ok(())
}

/// Refuses an API key (`key_id`) that was revoked, read from storage now: the admin API does
/// not accept the up to `REVOCATION_DELAY_SECONDS` old answer of the liveness cache.
pub async fn check_key_standing<S: Store, H>(
    svc: &Services<'_, S, H>,
    key_id: &str,
) -> Result<(), Error> {
    let key = svc.store.api_key(key_id).await?;
    if key.is_none_or(|k| k.revoked_at.is_some()) {
        return Err(Error::InvalidApiKey("revoked"));
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
/// keys switched off (no pepper): 401 `invalid_api_key`. The key's row and its owner are read
/// through the liveness cache (a known key is kept, live or not, for at most
/// `REVOCATION_DELAY_SECONDS`; an unknown one never); `last_used_at` is written when the row is
/// read and was last written at least a minute before.
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
    let now = svc.clock.now_ms();
    let (cache, delay) = (
        &svc.config.tokens.liveness_cache,
        svc.config.revocation_delay_ms(),
    );
    let key_hash = hash(pepper, key);
    let cache_key = LivenessKey::ApiKey(key_hash.clone());
    if let Some(Liveness::ApiKey(hit)) = cache.get(&cache_key, now, delay) {
        return key_caller(&hit, now);
    }
    let Some(mut found) = svc.store.api_key_by_hash(&key_hash).await? else {
        return Err(Error::InvalidApiKey("unknown"));
    };
    let verdict = key_caller(&found, now);
    let k = &found.key;
    if verdict.is_ok() && k.last_used_at.is_none_or(|t| t <= now - TOUCH_INTERVAL_MS) {
        svc.store
            .touch_api_key(&k.id, now, TOUCH_INTERVAL_MS)
            .await?;
        found.key.last_used_at = Some(now);
    }
    cache.put(cache_key, Liveness::ApiKey(found), now, delay);
    verdict
}

/// The caller of a key found as `found`, checked at `now`.
fn key_caller(found: &KeyLookup, now: i64) -> Result<Caller, Error> {
    let roles = key_roles(found, now)?;
    Ok(Caller::from_api_key(&found.key, roles))
}

/// The roles a key found as `found` carries at `now`: its role while its owner still holds
/// it. Revoked, expired or of a disabled owner: 401 `invalid_api_key`.
fn key_roles(found: &KeyLookup, now: i64) -> Result<Vec<String>, Error> {
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
    // The key's role counts only while its owner still holds it.
    Ok(if found.owner_roles.contains(&k.role) {
        vec![k.role.clone()]
    } else {
        Vec::new()
    })
}
