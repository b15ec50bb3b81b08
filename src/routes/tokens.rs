//! `POST /auth/token`: a scoped token minted by an authenticated caller (access token, API key
//! or scoped token) for less than it can do itself (see `crate::domain::scoped`).

use serde_json::json;

use crate::domain::scoped::{self, MintRequest, ISSUED_TOKEN_TYPE};
use crate::domain::store::Store;
use crate::primitives::body::json_body;
use crate::primitives::encoding::new_id;
use crate::primitives::error::Error;
use crate::primitives::http::{Request, Response};
use crate::primitives::platform::Pbkdf2;
use crate::services::audit::own_event;
use crate::services::auth::authenticate;
use crate::services::ratelimit::{self, Bucket};
use crate::services::Services;

/// `POST /auth/token {roles?, routes?, ttl?, aud?}` with a Bearer credential: 200 with the
/// scoped token. Counted per credential (`RATE_LIMIT_TOKEN_MINT_PER_CREDENTIAL`) before the
/// request is judged; every token minted is audited (`token_minted`).
pub(super) async fn mint<S: Store, H: Pbkdf2>(
    svc: &Services<'_, S, H>,
    req: &Request,
) -> Result<Response, Error> {
    let caller = authenticate(svc, req).await?.ok_or(Error::NoAuth)?;
    let ask: MintRequest = json_body(req, svc.config.limits.max_body_bytes, true)?;
    // The credential the count belongs to: its session, else its API key, else its user.
    let credential = caller
        .session_id
        .as_deref()
        .or(caller.key_id.as_deref())
        .unwrap_or(&caller.user_id);
    ratelimit::check(svc, Bucket::TokenMint, credential).await?;
    let config = svc.config;
    let now = svc.clock.now_ms();
    let grant = scoped::grant(
        &caller,
        &ask,
        &config.tokens.scoped,
        &config.proxy.routes,
        now,
    )?;
    let jti = new_id(svc.rng, "");
    let claims = grant.claims(
        &caller,
        &config.tokens.issuer,
        &config.tokens.audience,
        jti.clone(),
    );
    let token = config.tokens.keys.sign(claims, now, grant.ttl_secs)?;
    let expires_at = now.div_euclid(1000) + grant.ttl_secs;
    let detail = json!({
        "jti": jti,
        "via": caller.kind.as_str(),
        "key_id": caller.key_id,
        "roles": grant.roles,
        "routes": grant.routes,
        "ttl": grant.ttl_secs,
        "aud": grant.aud,
    });
    let event = own_event(
        req,
        now,
        "token_minted",
        Some(&caller.user_id),
        caller.session_id.as_deref(),
        Some(detail),
    );
    svc.store.record_event(&event).await?;
    Ok(Response::json(
        200,
        &json!({
            "access_token": token,
            "issued_token_type": ISSUED_TOKEN_TYPE,
            "token_type": "Bearer",
            "expires_in": grant.ttl_secs,
            "expires_at": expires_at,
            "scope": grant.scope(),
            "roles": grant.roles,
            "routes": grant.routes,
            "aud": grant.aud,
        }),
    )
    .with_header("cache-control", "no-store"))
}
