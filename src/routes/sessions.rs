//! Self-service sessions: `GET /auth/sessions` lists the caller's live sessions (refresh
//! families), `DELETE /auth/sessions/{id}` revokes one of them. Another user's session id
//! answers 404 `not_found`, exactly like an unknown one.

use serde_json::{json, Value};

use crate::domain::store::{RevokeReason, Store};
use crate::primitives::error::{Error, TokenRejection};
use crate::primitives::http::{Request, Response};
use crate::primitives::platform::Pbkdf2;
use crate::routes::views::family_json;
use crate::services::audit::audit_event;
use crate::services::auth::{authenticate, check_token_session, enabled_user};
use crate::services::Services;

/// `GET /auth/sessions`: the caller's live sessions, the current one marked.
pub async fn list<S: Store, H: Pbkdf2>(
    svc: &Services<'_, S, H>,
    req: &Request,
) -> Result<Response, Error> {
    let (user_id, current) = caller_session(svc, req).await?;
    let now = svc.clock.now_ms();
    let idle_ms = svc.config.tokens.refresh_idle_secs * 1000;
    let families = svc.store.user_families(&user_id).await?;
    let list: Vec<Value> = families
        .iter()
        .filter(|f| f.is_live(now, idle_ms))
        .map(|f| {
            let mut v = family_json(f, now, idle_ms);
            v["current"] = json!(current.as_deref() == Some(f.id.as_str()));
            v
        })
        .collect();
    Ok(Response::json(200, &json!({ "sessions": list })))
}

/// `DELETE /auth/sessions/{id}`: revokes one of the caller's sessions.
pub async fn revoke<S: Store, H: Pbkdf2>(
    svc: &Services<'_, S, H>,
    req: &Request,
    id: &str,
) -> Result<Response, Error> {
    let (user_id, _) = caller_session(svc, req).await?;
    let now = svc.clock.now_ms();
    let family = svc.store.family(id).await?;
    let Some(family) = family.filter(|f| f.user_id == user_id) else {
        return Err(Error::NotFound);
    };
    let ev = audit_event(
        req,
        now,
        "session_revoked",
        Some(&user_id),
        Some(&user_id),
        Some(&family.id),
        Some(json!({ "by": "self" })),
    );
    svc.store
        .revoke_family(&family.id, RevokeReason::Logout, now, Some(&ev))
        .await?;
    Ok(Response::empty(204))
}

/// The caller's user id and session: an access token of an enabled user whose session is
/// still live. API keys and scoped tokens do not manage sessions (403 `scope_violation`).
pub(super) async fn caller_session<S: Store, H: Pbkdf2>(
    svc: &Services<'_, S, H>,
    req: &Request,
) -> Result<(String, Option<String>), Error> {
    let caller = authenticate(svc, req).await?.ok_or(Error::NoAuth)?;
    if !caller.manages_account() {
        return Err(Error::ScopeViolation);
    }
    if enabled_user(svc, &caller.user_id).await?.is_none() {
        return Err(Error::InvalidToken(TokenRejection::Revoked));
    }
    check_token_session(svc, &caller.user_id, caller.session_id.as_deref()).await?;
    Ok((caller.user_id, caller.session_id))
}
