//! Admin console sessions: the cookie the console at `/admin/console/` signs in with.
//!
//! A console session is an ordinary session (refresh family) marked `console`, whose one token
//! (generation 0, never rotated) lives in the `gatehouse_console` cookie: HttpOnly, Secure,
//! `SameSite=Strict`, `Path=/admin/`. The token is `ghs_` + 43 base64url characters (256 random
//! bits), stored only as its SHA-256 like every refresh token; its prefix keeps it from ever
//! being accepted by `POST /auth/refresh` (which wants `ghr_`), and a refresh token from ever
//! opening the console. Signed in with an API key, the session is also bound to that key.
//!
//! The session ends when it is signed out, revoked (by the admin, another admin, a password
//! change, disabling the user), when it expires (at most [`CONSOLE_SESSION_MAX_SECS`], never
//! beyond `REFRESH_TOKEN_TTL`, and when idle for `REFRESH_IDLE_TIMEOUT` since sign-in) and,
//! bound to a key, when the key is revoked or expires.

use crate::domain::caller::Caller;
use crate::domain::refresh;
use crate::domain::store::{ApiKey, ConsoleVia, Family, Store, TokenHash, User};
use crate::primitives::encoding::{b64url, b64url_decode};
use crate::primitives::error::Error;
use crate::primitives::http::Request;
use crate::primitives::platform::{random_array, Rng};
use crate::services::auth::enabled_user;
use crate::services::Services;

/// Name of the console's session cookie.
pub const CONSOLE_COOKIE: &str = "gatehouse_console";
/// Path the console cookie is scoped to: only the admin API and the console see it.
pub const CONSOLE_COOKIE_PATH: &str = "/admin/";
/// The longest a console session lasts: 12 hours.
pub const CONSOLE_SESSION_MAX_SECS: i64 = 12 * 3600;
const PREFIX: &str = "ghs_";

/// A new random console session token.
pub fn generate(rng: &dyn Rng) -> String {
    let bytes: [u8; 32] = random_array(rng);
    format!("{PREFIX}{}", b64url(&bytes))
}

/// Whether `token` has the shape of a console session token.
pub fn well_formed(token: &str) -> bool {
    token
        .strip_prefix(PREFIX)
        .and_then(b64url_decode)
        .is_some_and(|bytes| bytes.len() == 32)
}

/// The stored form of a console token: SHA-256 (hex) of its text, as for refresh tokens.
pub fn hash(token: &str) -> TokenHash {
    refresh::hash(token)
}

/// The lifetime of a console session signed in at `now`, Unix ms.
pub fn expires_at<S, H>(svc: &Services<'_, S, H>, now: i64) -> i64 {
    now + svc
        .config
        .tokens
        .refresh_ttl_secs
        .min(CONSOLE_SESSION_MAX_SECS)
        * 1000
}

/// A live console session and who it is.
pub struct ConsoleSession {
    /// The session (refresh family).
    pub family: Family,
    /// Its user, enabled, as stored now.
    pub user: User,
    /// The caller it makes (kind `ConsoleSession`).
    pub caller: Caller,
}

/// The console cookie of `req`: `None` without one; two of them (one planted) are refused.
pub fn cookie(req: &Request) -> Result<Option<&str>, Error> {
    let cookies: Vec<&str> = req
        .cookies(CONSOLE_COOKIE)
        .filter(|v| !v.is_empty())
        .collect();
    match cookies.as_slice() {
        [] => Ok(None),
        [token] => Ok(Some(token)),
        _ => Err(Error::InvalidSession("more than one console cookie")),
    }
}

/// The live console session of `req`'s cookie: `Ok(None)` without a cookie, 401
/// `invalid_session` when the cookie's session is unknown or has ended, when its user is
/// missing or disabled, or when the key it is bound to was revoked or expired. Reads the
/// session, the user and (bound to a key) the key: a revocation takes effect on the next
/// request. Roles are not checked here.
pub async fn authenticate_console<S: Store, H>(
    svc: &Services<'_, S, H>,
    req: &Request,
) -> Result<Option<ConsoleSession>, Error> {
    let Some(token) = cookie(req)? else {
        return Ok(None);
    };
    session_of(svc, token).await.map(Some)
}

/// The live console session of `token`.
pub async fn session_of<S: Store, H>(
    svc: &Services<'_, S, H>,
    token: &str,
) -> Result<ConsoleSession, Error> {
    if !well_formed(token) {
        return Err(Error::InvalidSession("malformed"));
    }
    let Some(state) = svc.store.token_state(&hash(token)).await? else {
        return Err(Error::InvalidSession("unknown"));
    };
    let family = state.family;
    let Some(via) = family.console.clone() else {
        return Err(Error::InvalidSession("not a console session"));
    };
    let now = svc.clock.now_ms();
    if state.rotated_at.is_some()
        || !family.is_live(now, svc.config.tokens.refresh_idle_secs * 1000)
    {
        return Err(Error::InvalidSession("session ended"));
    }
    let Some(user) = enabled_user(svc, &family.user_id).await? else {
        return Err(Error::InvalidSession("user missing or disabled"));
    };
    let key = match via {
        ConsoleVia::Password => None,
        ConsoleVia::ApiKey(id) => Some(live_key(svc, &id, &user.id, now).await?),
    };
    let caller = Caller::from_console_session(&user.id, &user.roles, &family.id, key.as_ref());
    Ok(ConsoleSession {
        family,
        user,
        caller,
    })
}

/// The key a console session is bound to, while it is live and still the user's.
async fn live_key<S: Store, H>(
    svc: &Services<'_, S, H>,
    id: &str,
    user_id: &str,
    now: i64,
) -> Result<ApiKey, Error> {
    let Some(key) = svc.store.api_key(id).await? else {
        return Err(Error::InvalidSession("API key gone"));
    };
    if key.revoked_at.is_some() {
        return Err(Error::InvalidSession("API key revoked"));
    }
    if key.expires_at.is_some_and(|e| e <= now) {
        return Err(Error::InvalidSession("API key expired"));
    }
    if key.owner_user_id != user_id {
        return Err(Error::InvalidSession("API key of another user"));
    }
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::primitives::platform::SystemRng;

    #[test]
    fn console_tokens_are_not_refresh_tokens() {
        let t = generate(&SystemRng);
        assert!(well_formed(&t) && t.starts_with("ghs_") && t.len() == 47);
        assert!(!refresh::well_formed(&t), "never accepted by /auth/refresh");
        let r = refresh::generate(&SystemRng);
        assert!(!well_formed(&r), "a refresh token never opens the console");
        assert!(!well_formed("ghs_short"));
        assert_ne!(generate(&SystemRng), t);
    }
}
